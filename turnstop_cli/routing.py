"""Which dialect an id belongs to, from its shape (docs/cli.md, *Ids*).

| id | dialect |
|---|---|
| ``msg_…`` with ``--session sess_…``, or ``sess_…/msg_…`` | sessions (a session turn) |
| ``resp_…`` | llm or a stateless sessions turn: both use the prefix; the API is asked (llm first) |
| ``task_…`` | tasks |
| a UUID | omni (a response) |
| ``thread_…`` | chat (a thread) |
| ``bulk_…``, ``sqs-…`` | a bulk cancel's report (``status`` only) |
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from turnstop_cli.errors import usage

BULK = "bulk"
_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def known() -> tuple[str, ...]:
    """The dialects the command line speaks: those of ``turnstop_cli.dialects.DIALECT``, its one list
    (a test keeps it within the service's registry of dialects)."""
    from turnstop_cli.dialects import DIALECT  # that module imports this one

    return tuple(DIALECT)


@dataclass(frozen=True)
class TurnRef:
    id: str
    dialect: str | None  # None: a ``resp_`` id, llm or sessions: the API decides (see resolve)
    session_id: str | None = None
    account_id: int = 1

    @property
    def label(self) -> str:
        return f"{self.session_id}/{self.id}" if self.session_id else self.id

    def as_dialect(self, dialect: str) -> TurnRef:
        return replace(self, dialect=dialect)


def guess(turn_id: str) -> str | None:
    """The dialect an id's shape names, or None where the API must be asked (``resp_``)."""
    if turn_id.startswith("msg_"):
        return "sessions"
    if turn_id.startswith("resp_"):
        return None
    if turn_id.startswith("task_"):
        return "tasks"
    if turn_id.startswith("thread_"):
        return "chat"
    if turn_id.startswith(("bulk_", "sqs-")):
        return BULK
    if _UUID.fullmatch(turn_id):
        return "omni"
    raise usage(
        f"cannot tell the dialect of {turn_id!r} from its shape",
        hint="ids look like msg_…, resp_…, task_…, thread_…, an omni UUID, or bulk_…; or pass --dialect",
    )


def classify(text: str, *, dialect: str | None = None, session: str | None = None, account: int = 1) -> TurnRef:
    """Parse an id as typed on the command line (``--dialect`` forces the dialect)."""
    text = text.strip()
    if "/" in text:  # sess_…/msg_…: a session turn, named the way its URL names it
        session_part, _, text = text.partition("/")
        if session and session != session_part:
            raise usage(f"{session_part}/… and --session {session} name two sessions")
        session = session_part
    if not _ID.fullmatch(text):
        raise usage(f"{text!r} is not an id: 1 to 128 letters, digits, '_' or '-'")
    if session is not None and not (session.startswith("sess_") and _ID.fullmatch(session)):
        raise usage(f"{session!r} is not a session id (sess_…)")
    if dialect is not None:
        dialect = dialect.lower()
        if dialect not in known():
            raise usage(f"unknown dialect {dialect!r}: one of {', '.join(known())}")
        found: str | None = dialect
    else:
        found = guess(text)
        if session is not None and found is None:
            found = "sessions"  # resp_ with a session: the API would 404 it, but say so clearly below
    if account < 0:
        raise usage("--account must be a non-negative account id")
    if session is not None and found != "sessions":
        raise usage(f"--session names a session turn; {text} is a {found or 'llm or stateless'} id")
    if found == "sessions" and text.startswith("msg_") and session is None:
        raise usage(
            f"{text} is a session turn: name its session too",
            hint=f"turnstop … sess_…/{text}  or  --session sess_…",
        )
    return TurnRef(text, found, session, account)


def check_bulk(ref: TurnRef) -> None:
    if ref.dialect == BULK:
        raise usage(f"{ref.id} is a bulk cancel's report, not a turn: `turnstop status {ref.id}` shows it")
