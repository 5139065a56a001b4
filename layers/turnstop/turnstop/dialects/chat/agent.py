"""The scripted chat agent: deterministic and offline, like the scripted model.

It recognises two kinds of request anywhere in a message (case-insensitive) and plans an
action for each, which waits for the user's confirmation:

- ``Schedule a meeting titled '<title>' on <date> at <time>`` (also "called"/"named", any
  quotes) → a ``create_meeting`` action;
- ``Send an email to <recipient> about <subject>`` (also "e-mail") → a ``send_email`` action.

Anything else gets the scripted model's reply: as many words as the message asks for
("Write a 300-word summary" → 300), else 64 (``runtime.model.requested_words``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from turnstop.runtime.model import Chunk, ScriptedModel

_END = r"\s*[.!?]*\s*$"
MEETING = re.compile(
    r"\bschedule\s+(?:a\s+|an\s+|the\s+)?meeting\s+(?:titled|called|named)\s+"
    r"['\"\u2018\u201c](?P<title>[^'\"\u2019\u201d]+)['\"\u2019\u201d]\s+on\s+(?P<date>.+?)\s+at\s+(?P<time>.+?)"
    + _END,
    re.IGNORECASE | re.DOTALL,
)
EMAIL = re.compile(
    r"\bsend\s+(?:an\s+|a\s+)?e-?mail\s+to\s+(?P<to>.+?)\s+about\s+(?P<subject>.+?)" + _END,
    re.IGNORECASE | re.DOTALL,
)


@dataclass(frozen=True)
class Action:
    """An action the agent plans: what it asks, and what it reports once it has done it."""

    type: str
    summary: str
    confirmation: str
    result: str
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    reply: str | None  # the reply's text; None: the scripted model's word-count reply
    action: Action | None = None


def plan(message: str) -> Plan:
    """What the agent does with a message."""
    m = MEETING.search(message)
    if m:
        title, date, time = (" ".join(m.group(g).split()) for g in ("title", "date", "time"))
        what = f"a meeting titled '{title}' on {date} at {time}"
        return Plan(
            "I can schedule that meeting for you.",
            Action(
                "create_meeting", f"Create {what}", f"Should I create {what}?",
                f"Created {what}.", {"title": title, "date": date, "time": time},
            ),
        )  # fmt: skip
    m = EMAIL.search(message)
    if m:
        to, subject = (" ".join(m.group(g).split()) for g in ("to", "subject"))
        what = f"an email to {to} about {subject}"
        return Plan(
            "I can send that email for you.",
            Action("send_email", f"Send {what}", f"Should I send {what}?", f"Sent {what}.",
                   {"to": to, "subject": subject}),
        )  # fmt: skip
    return Plan(None)


class AgentModel:
    """The agent as a streaming model: the planned reply one word per step, else the
    scripted model's words."""

    def __init__(self, step_ms: int) -> None:
        self.scripted = ScriptedModel(step_ms)

    def stream(self, prompt: str) -> Iterator[Chunk]:
        text = plan(prompt).reply
        if text is None:
            yield from self.scripted.stream(prompt)
            return
        words = text.split(" ")
        for i, word in enumerate(words):
            if i and self.scripted.step_ms:
                self.scripted.sleep(self.scripted.step_ms / 1000)
            yield Chunk(word if i == len(words) - 1 else word + " ")
