"""The model interface and the default deterministic scripted model (offline, no weights)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

DEFAULT_WORDS = 64
MAX_WORDS = 100_000
_WORD_COUNT = re.compile(r"(\d[\d,]*)\s*-?\s*words?\b", re.IGNORECASE)
# "think for 30 seconds": the model says nothing that long before its first word
_THINK = re.compile(r"\bthink(?:s|ing)?\s+for\s+(\d{1,3}(?:\.\d{1,3})?)\s*(?:s|secs?|seconds?)\b", re.IGNORECASE)
_VOCAB = (
    "the cipher key turns plaintext into ciphertext and back again while every round mixes bits "
    "so that an observer learns nothing useful about the message or the secret"
).split()


@dataclass(frozen=True)
class Chunk:
    text: str
    kind: str = "text"  # or "thinking"


class Model(Protocol):
    def stream(self, prompt: str) -> Iterator[Chunk]: ...


def requested_words(prompt: str) -> int:
    """The number written before "word"/"words"/"-word" ("a 5000-word essay" → 5000), else 64."""
    m = _WORD_COUNT.search(prompt)
    if not m:
        return DEFAULT_WORDS
    return max(1, min(int(m.group(1).replace(",", "")), MAX_WORDS))


def silent_seconds(prompt: str) -> float:
    """How long the prompt asks the model to think, silently, before its first word."""
    m = _THINK.search(prompt)
    return float(m.group(1)) if m else 0.0


class ScriptedModel:
    """Streams one word per step, ``step_ms`` apart: deterministic, so tests can count words.
    A prompt that asks it to "think for N seconds" gets N seconds of silence first."""

    def __init__(self, step_ms: int, sleep: Callable[[float], None] = time.sleep) -> None:
        self.step_ms = step_ms
        self.sleep = sleep

    def stream(self, prompt: str) -> Iterator[Chunk]:
        n = requested_words(prompt)
        if silent := silent_seconds(prompt):
            self.sleep(silent)
        for i in range(n):
            if i and self.step_ms:
                self.sleep(self.step_ms / 1000)
            word = _VOCAB[i % len(_VOCAB)]
            yield Chunk(word if i == n - 1 else word + " ")
