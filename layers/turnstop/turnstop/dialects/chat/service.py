"""The chat dialect's operations on the shared core: messages (a reply turn, and the action it
plans), confirm, and the thread's history. The cancel is ``cancel.py`` (its own, lean function).

A planned action is a turn (kind ``chat_action``, scope ``chat:<thread>``) that waits in
``queued`` until confirm claims it; it is never swept or queued, so only a confirmation starts
it. A cancel is the core's conditional write with ``only_queued``: it stops an action only
before its confirmation, and a confirmation (a claim) refuses a flagged one, so of a confirm
and a cancel racing exactly one wins.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from turnstop.core import errors, scopes
from turnstop.core.errors import CommitRejected
from turnstop.core.events import Event
from turnstop.core.ids import new_id
from turnstop.core.records import NewTurn
from turnstop.core.tokens import count_tokens
from turnstop.core.turn import Status, Turn
from turnstop.dialects.chat import agent, wire
from turnstop.dialects.chat.approvals import carry_out
from turnstop.dialects.chat.models import SendMessage
from turnstop.dialects.chat.renderer import (
    ACTION_KIND,
    REPLY_KIND,
    action_executed,
    action_planned,
    reply_created,
)
from turnstop.dialects.chat.threads import THREAD_NOT_FOUND, THREAD_PREFIX, check_thread_id, owned_thread
from turnstop.dialects.chat.web import ChatUser
from turnstop.dialects.service import DialectService
from turnstop.providers.config import routes_for
from turnstop.runtime.active import DETACHED, END
from turnstop.runtime.live import LiveTurn
from turnstop.runtime.runner import TurnRunner
from turnstop.store.chat import (
    PENDING_ACTION,
    PREVIOUS_REPLY,
    THREAD,
    ActionRecord,
    ChatMessage,
    ChatThread,
    PlannedAction,
    message_item,
    thread_from_item,
)
from turnstop.store.finish import Closing, LostLease, MyLease

log = logging.getLogger(__name__)

REPLY_PREFIX = "reply_"
ACTION_PREFIX = "act_"
# How long a confirm holds its action while it carries it out; a confirm whose request died
# after its claim is finished by the next confirm once this has lapsed.
CONFIRM_LEASE_MS = 10_000
MIN_GRACE_MS = 60_000
WAIT_STEP_S = 0.25
NOTHING_TO_CONFIRM = "Nothing to confirm: no action on this thread is waiting for confirmation"


def action_status(head: Turn) -> str:
    """An action's status as the thread shows it: ``pending`` until decided; ``cancelled``;
    ``confirmed`` once claimed, ``executed`` once carried out."""
    status = head.status
    if status is Status.QUEUED:
        return "pending"
    if status is Status.CANCELLED:
        return "cancelled"
    return "executed" if status is Status.COMPLETED else "confirmed"


def decided_at(head: Turn) -> int | None:
    if head.status is Status.QUEUED:
        return None
    return head.completed_at if head.status is Status.CANCELLED else head.started_at


@dataclass(frozen=True)
class Sent:
    """A message accepted: its reply turn (running under this request's runner), its thread
    and the action it planned."""

    turn: Turn
    thread_id: str
    action: agent.Action | None


class Chat(DialectService):
    # ------------------------------------------------------------------ messages

    def send(
        self, user: ChatUser, body: SendMessage, runner: TurnRunner, *, max_duration_ms: int | None = None
    ) -> Sent:
        """Accept a message: its thread (new, or the caller's), its reply turn running under
        ``runner`` (stopped at ``max_duration_ms``, Turnstop-Max-Duration, if given) and, when the
        agent plans one, its action waiting for confirmation (for a person: no deadline): one
        transaction. Raises NotFound (not the caller's thread) or Conflict (an action still
        waits for an answer, a reply is still being written, or another message won)."""
        now = self.store.now()
        if body.thread_id is None:
            retention_ms = int(self.settings.chat_thread_retention_days * 86_400_000)
            thread = ChatThread(new_id(THREAD_PREFIX), user.tenant, user.user, now, now + retention_ms)
        else:
            thread = self._thread(user, body.thread_id)
        agent_asks = self.agent_route()  # the route's own agent plans, and may ask for approval
        plan = agent.Plan(None) if agent_asks else agent.plan(body.message)
        grace_ms = max(MIN_GRACE_MS, thread.expires_at - now)  # its turns stay readable as long as it
        planned: PlannedAction | None = None
        asks: dict[str, Any] | None = None
        if plan.action is not None:
            planned = self._action_turn(plan.action, user, thread, grace_ms, now)
            asks = {"id": planned.new.id, "confirmation": plan.action.confirmation}
        reply_id = new_id(REPLY_PREFIX)
        slot = ACTION_PREFIX + reply_id.removeprefix(REPLY_PREFIX) if agent_asks else None
        reply = self._reply_turn(reply_id, user, body.message, thread, grace_ms, max_duration_ms, asks=asks, slot=slot)
        try:
            turn, _ = self.store.chat.send(
                thread,
                is_new=body.thread_id is None,
                text=body.message,
                reply=reply,
                reply_created=reply_created,
                action=planned,
                run_as=runner.owner,
                lease_ms=runner.lease_ms,
                asks_slot=slot,
            )
        except errors.ExtraItemsRejected as rejected:
            raise self._refused(rejected, thread, body.thread_id is None, user, now) from None
        return Sent(turn, thread.id, plan.action)

    @staticmethod
    def _action_turn(
        action: agent.Action, user: ChatUser, thread: ChatThread, grace_ms: int, now: int
    ) -> PlannedAction:
        """The turn of an action a message plans, never swept (only a confirmation starts it),
        and its record in the thread; its outcome takes the message's third seq."""
        seq = thread.next_seq
        action_id = new_id(ACTION_PREFIX)
        details = {
            "type": action.type,
            "summary": action.summary,
            "confirmation": action.confirmation,
            "result": action.result,
            "params": action.params,
        }
        new_action = NewTurn(
            id=action_id,
            kind=ACTION_KIND,
            tenant=user.tenant,
            scope=scopes.chat(thread.id),
            grace_ms=grace_ms,
            end_user=user.user,
            input={"action": details, "outcome_seq": seq + 2, "expires_at": thread.expires_at},
            swept=False,
        )
        return PlannedAction(
            new_action, action_planned, ActionRecord(action_id, seq + 2, action.type, action.summary, now)
        )

    @staticmethod
    def _reply_turn(
        reply_id: str,
        user: ChatUser,
        message: str,
        thread: ChatThread,
        grace_ms: int,
        max_duration_ms: int | None,
        *,
        asks: dict[str, Any] | None,
        slot: str | None,
    ) -> NewTurn:
        """The reply turn of a message; its answer takes the message's second seq. ``asks``: the
        action the message planned; ``slot``: the action its agent may ask for, and its seq."""
        seq = thread.next_seq
        return NewTurn(
            id=reply_id,
            kind=REPLY_KIND,
            tenant=user.tenant,
            scope=scopes.chat(thread.id),
            grace_ms=grace_ms,
            end_user=user.user,
            input_tokens=count_tokens(message),
            max_duration_ms=max_duration_ms,
            input={
                "prompt": message,
                "assistant_seq": seq + 1,
                "expires_at": thread.expires_at,
                "action": asks,
                **({"asks_slot": {"id": slot, "outcome_seq": seq + 2}} if slot else {}),
            },
        )

    @staticmethod
    def _refused(
        rejected: errors.ExtraItemsRejected, thread: ChatThread, is_new: bool, user: ChatUser, now: int
    ) -> errors.TurnstopError:
        if PENDING_ACTION in rejected.failed:
            return errors.Conflict(
                "An action on this thread is waiting for confirmation: confirm it or cancel it first",
                code="action_pending",
            )
        if PREVIOUS_REPLY in rejected.failed:
            return errors.Conflict(
                "A reply is still being written on this thread: wait for it or cancel it first",
                code="reply_in_progress",
            )
        if is_new:
            return errors.Retryable("thread id collision; send the message again")
        old = thread_from_item(rejected.failed.get(THREAD))
        if old is None or not old.visible_to(user.tenant, user.user, now):
            return errors.NotFound(THREAD_NOT_FOUND)
        return errors.Conflict("Another message was sent on this thread at the same time; send it again")

    def reply(self, sent: Sent, runner: TurnRunner, remaining_ms: Callable[[], int] | None) -> dict[str, Any]:
        """Run the reply in this request and answer with it whole (``POST /chat``). A reply
        cancelled meanwhile answers with what it had said; a failed one is an error."""
        channel, running = runner.start(sent.turn, remaining_ms)
        text: list[str] = []
        question: str | None = None
        last: Event | None = None
        try:
            while True:
                item = channel.get(timeout=WAIT_STEP_S)
                if item is END or item is DETACHED:
                    break
                for ev in item or []:
                    if ev.type == "token.delta":
                        text.append(str(ev.data["delta"]))
                    elif ev.type == "confirmation_required":
                        question = str(ev.data["message"])
                    last = ev
        finally:
            running.join()
        if last is None or last.type not in ("done", "cancelled"):
            data = last.data if last is not None and last.type == "error" else {}
            raise errors.TurnstopError(
                str(data.get("message", "The reply was interrupted")), code=str(data.get("error", "reply_failed"))
            )
        return wire.chat_answer(sent.thread_id, "".join(text), question if last.type == "done" else None)

    def stream(self, sent: Sent, runner: TurnRunner, remaining_ms: Callable[[], int] | None) -> LiveTurn:
        """Run the reply in this request; its reader gets each event as it comes (``POST /chat/stream``)."""
        channel, running = runner.start(sent.turn, remaining_ms)
        return LiveTurn(sent.turn, channel, running)

    # ------------------------------------------------------------------ confirm

    def confirm(self, user: ChatUser, thread_id: str, runner: TurnRunner) -> dict[str, Any]:
        """Carry out the action waiting for confirmation: claim it (refused once a cancel has
        flagged it, or another confirm has claimed it), then record its outcome with its end.
        An action an agent asked for is carried out by that agent (``approvals.carry_out``,
        through ``runner``'s model for it)."""
        thread = self._thread(user, thread_id)
        if not thread.action:
            raise errors.Conflict(NOTHING_TO_CONFIRM, code="nothing_to_confirm")
        owner = f"confirm-{uuid.uuid4().hex[:12]}"
        try:
            turn = self.store.turns.claim(thread.action, owner, CONFIRM_LEASE_MS)
            mode: MyLease | LostLease = MyLease(owner)
        except CommitRejected as refused:
            old = refused.old
            lapsed = (
                old is not None
                and old.stored_status is Status.RUNNING
                and not old.cancel_requested
                and old.lease_expires_at is not None
                and old.lease_expired(self.store.now())
            )
            if not lapsed or old is None or old.lease_expires_at is None:
                raise errors.Conflict(self._why_not(old), code="nothing_to_confirm") from None
            # a confirm that won and then died before carrying it out: finish its work
            turn, mode = self.store.turns.with_input(old), LostLease(old.lease_expires_at)
        if turn.kind != ACTION_KIND or not turn.visible_to(user.tenant, scopes.chat(thread.id), user.user):
            raise errors.NotFound(THREAD_NOT_FOUND)
        details = turn.input["action"]
        result = carry_out(runner.model_factory, turn) if details.get("agent") else str(details["result"])
        executed = action_executed(turn, result)
        outcome = ChatMessage(int(turn.input["outcome_seq"]), "assistant", result, self.store.now())
        closing = Closing(
            [Event(turn.seq + 1, executed.type, executed.data)],
            [],
            [message_item(thread.id, int(turn.input["expires_at"]), outcome, turn.id)],
        )
        try:
            self.store.turns.finish(turn, Status.COMPLETED, closing, usage=turn.usage, mode=mode, writer=owner)
        except CommitRejected as refused:
            raise errors.Conflict(self._why_not(refused.old), code="nothing_to_confirm") from None
        return wire.confirm_answer(thread.id, result)

    def agent_route(self) -> bool:
        """Whether the chat's route is an agent of the platform's own (an external route): it
        plans for itself, and may ask a person to approve an action (``request_approval``)."""
        return routes_for(self.settings.models).default_route.provider == "external"

    @staticmethod
    def _why_not(old: Turn | None) -> str:
        if old is not None and old.status is Status.CANCELLED:
            return "Nothing to confirm: the action was cancelled"
        if old is not None and old.stored_status in (Status.RUNNING, Status.COMPLETED):
            return "Nothing to confirm: the action was already confirmed"
        return NOTHING_TO_CONFIRM

    # ------------------------------------------------------------------ reads

    def thread(self, user: ChatUser, thread_id: str) -> dict[str, Any]:
        """The thread's messages and actions (each action's status from its turn)."""
        check_thread_id(thread_id)
        thread, messages, records = self.store.chat.history(thread_id)
        if thread is None or not thread.visible_to(user.tenant, user.user, self.store.now()):
            raise errors.NotFound(THREAD_NOT_FOUND)
        heads = self.store.chat.action_heads([r.id for r in records])
        actions = [
            wire.action_body(r.id, r.type, r.summary, action_status(heads[r.id]), r.created_at, decided_at(heads[r.id]))
            for r in records
            if r.id in heads
        ]
        return wire.thread_body(
            thread.id, [wire.message_body(m.role, m.content, m.created_at) for m in messages], actions
        )

    def _thread(self, user: ChatUser, thread_id: str) -> ChatThread:
        return owned_thread(self.store, user, thread_id)
