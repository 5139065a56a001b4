"""The scripted chat agent: deterministic and offline, like the scripted model.

It recognises two kinds of request anywhere in a message (case-insensitive) and plans an
action for each, which waits for the user's confirmation:

- ``Schedule a meeting titled '<title>' on <date> at <time>`` (also "called"/"named", any
  quotes) → a ``create_meeting`` action;
- ``Send an email to <recipient> about <subject>`` (also "e-mail") → a ``send_email`` action.

Anything else goes to the model of the chat's route (``TURNSTOP_MODELS``' default): offline,
the scripted model's reply, as many words as the message asks for ("Write a 300-word summary"
→ 300), else 64 (``runtime.model.requested_words``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from turnstop.providers.base import Chunk, ModelCall, ModelProvider, ModelRequest
from turnstop.runtime.model import Model, ScriptedModel, WordsCall, open_call

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
                "create_meeting",
                f"Create {what}",
                f"Should I create {what}?",
                f"Created {what}.",
                {"title": title, "date": date, "time": time},
            ),
        )
    m = EMAIL.search(message)
    if m:
        to, subject = (" ".join(m.group(g).split()) for g in ("to", "subject"))
        what = f"an email to {to} about {subject}"
        return Plan(
            "I can send that email for you.",
            Action(
                "send_email", f"Send {what}", f"Should I send {what}?", f"Sent {what}.", {"to": to, "subject": subject}
            ),
        )
    return Plan(None)


class AgentModel:
    """The agent in front of a model: a planned action's reply, one word per step; anything
    else goes to ``inner`` (a provider, or with a step in ms, the scripted model)."""

    def __init__(self, inner: int | ModelProvider | Model, step_ms: int | None = None) -> None:
        if isinstance(inner, int):
            step_ms, inner = inner, ScriptedModel(inner)
        self.inner = inner
        self.step_ms = step_ms if step_ms is not None else int(getattr(inner, "step_ms", 0))

    def open(self, request: ModelRequest) -> ModelCall:
        text = plan(request.input).reply
        if text is None:
            return open_call(self.inner, request)
        return WordsCall(text, self.step_ms, request)

    def stream(self, prompt: str) -> Iterator[Chunk]:
        """The same, as a plain iterator (no cap, no abort)."""
        yield from self.open(ModelRequest(input=prompt))
