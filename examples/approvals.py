"""The examples' tool that needs a person's approval: sending an email (docs/agents.md#human-approval-a-tool-call-that-needs-a-persons-yes).

Each example's ``send_email`` tool asks (``ask_to_send``) and returns; its local model then says
it will send once confirmed. Behind the chat dialect the reply asks ``Should I send ...?``; a
confirm runs the example's handler again with ``turn.approval`` set, and ``send_approved`` sends.
"""

from __future__ import annotations

import re

from turnstop.worker import WorkerTurn

EMAIL = re.compile(r"send an e-?mail to (?P<to>.+?) about (?P<subject>.+?)[.!?]*$", re.IGNORECASE)
WAITING = "Waiting for the user's approval."
ASKED = "I'll send that email once you confirm."


def ask_to_send(turn: WorkerTurn, to: str, subject: str) -> str:
    """The tool's body: ask a person to approve the email; the tool's result."""
    what = f"an email to {to} about {subject}"
    turn.request_approval("send_email", f"Send {what}", f"Should I send {what}?", {"to": to, "subject": subject})
    return WAITING


def send_approved(turn: WorkerTurn) -> bool:
    """In a handler: carry out the email a person approved (False: this turn carries out nothing)."""
    if turn.approval is None:
        return False
    params = turn.approval["params"]
    turn.text(f"Sent an email to {params['to']} about {params['subject']}.")  # a real agent sends it here
    turn.finish(input_tokens=0, output_tokens=10)
    return True
