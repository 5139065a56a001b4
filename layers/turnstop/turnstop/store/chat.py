"""Chat threads (the chat dialect's conversations): their messages, their actions, and the
turns in flight on them.

Items, next to the turns in the one table:

- thread head ``THREAD#<id>`` / ``META`` (kind ``chat_thread``): owner (tenant, user), times,
  the message counter ``next_seq``, and the turns the last message started: ``reply`` (the
  reply turn, until it ends unless cancelled) and ``action`` (the action it planned, if any) — what
  ``POST /chat/cancel`` cancels. A thread lives a fixed retention from its creation; so does everything in it.
- message ``THREAD#<id>`` / ``MSG#<seq>``: one per message, written once, never changed.
- action ``THREAD#<id>`` / ``ACTION#<seq>``: what an action is (type, summary, its turn id),
  written once with it. Its status is its turn's: a turn that waits in ``queued`` until
  confirm claims it.

A message reserves its seqs when it is accepted: the user's message (``n``, written with the
turns), the reply (``n + 1``, written when the reply ends) and, with an action, the action's
outcome (``n + 2``, written when it is executed). The thread, the user's message, the reply
turn, the action turn and its record are one transaction (``send``); nothing here reads
before it writes except ``send`` on an existing thread, whose write is conditioned on exactly
what it read (the counter).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from turnstop.core.events import PendingEvent
from turnstop.core.records import NewTurn
from turnstop.core.turn import Status, Turn
from turnstop.store import codec
from turnstop.store.chat_cancels import ChatCancels
from turnstop.store.codec import META_SK, TURN_SK, turn_pk
from turnstop.store.db import TTL_SLACK_S
from turnstop.store.transaction import Transaction

THREAD_KIND = "chat_thread"
MESSAGE_KIND = "chat_message"
ACTION_KIND = "chat_action_record"
SEQ_WIDTH = 12

# names of the items a message adds to its reply's start transaction
THREAD = "thread"
USER_MESSAGE = "user_message"
PREVIOUS_REPLY = "previous_reply"
PENDING_ACTION = "pending_action"
ACTION_PREFIX = "action_"
ACTION_RECORD = "action_record"


def thread_pk(thread_id: str) -> str:
    return f"THREAD#{thread_id}"


def msg_sk(seq: int) -> str:
    return f"MSG#{seq:0{SEQ_WIDTH}d}"


def action_sk(seq: int) -> str:
    return f"ACTION#{seq:0{SEQ_WIDTH}d}"


@dataclass(frozen=True)
class ChatThread:
    id: str
    tenant: str
    user: str
    created_at: int
    expires_at: int
    next_seq: int = 1
    reply: str | None = None  # the reply turn of the last message
    action: str | None = None  # the action the last message planned

    def visible_to(self, tenant: str, user: str, now_ms: int) -> bool:
        return self.tenant == tenant and self.user == user and self.expires_at > now_ms


@dataclass(frozen=True)
class ChatMessage:
    seq: int
    role: str  # user | assistant
    content: str
    created_at: int


@dataclass(frozen=True)
class ActionRecord:
    """What an action is; its status is its turn's (``Chat.action_heads``)."""

    id: str  # the action's turn id
    seq: int
    type: str
    summary: str
    created_at: int


def thread_from_item(raw: dict[str, Any] | None) -> ChatThread | None:
    if not raw or raw.get("kind") != THREAD_KIND:
        return None
    return ChatThread(
        id=raw["id"],
        tenant=raw["tenant"],
        user=raw["end_user"],
        created_at=int(raw["created_at"]),
        expires_at=int(raw["expires_at"]),
        next_seq=int(raw["next_seq"]),
        reply=raw.get("reply"),
        action=raw.get("action"),
    )


def message_item(thread_id: str, expires_at: int, msg: ChatMessage, turn_id: str) -> dict[str, Any]:
    """The plain item of a message, kept as long as its thread (``expires_at``); a reply's
    renderer writes the assistant's with the reply's end."""
    return {
        "pk": thread_pk(thread_id),
        "sk": msg_sk(msg.seq),
        "kind": MESSAGE_KIND,
        "seq": msg.seq,
        "role": msg.role,
        "content": msg.content,
        "created_at": msg.created_at,
        "turn_id": turn_id,
        "ttl": expires_at // 1000 + TTL_SLACK_S,
    }


def _thread_item(thread: ChatThread, now: int) -> dict[str, Any]:
    return {
        "pk": thread_pk(thread.id),
        "sk": META_SK,
        "kind": THREAD_KIND,
        "id": thread.id,
        "tenant": thread.tenant,
        "end_user": thread.user,
        "created_at": thread.created_at,
        "updated_at": now,
        "next_seq": thread.next_seq,
        "reply": thread.reply,
        "action": thread.action,
        "expires_at": thread.expires_at,
        "ttl": thread.expires_at // 1000 + TTL_SLACK_S,
    }


def action_record_item(thread_id: str, expires_at: int, record: ActionRecord) -> dict[str, Any]:
    """The plain item that lists an action in its thread."""
    return {
        "pk": thread_pk(thread_id),
        "sk": action_sk(record.seq),
        "kind": ACTION_KIND,
        "id": record.id,
        "seq": record.seq,
        "type": record.type,
        "summary": record.summary,
        "created_at": record.created_at,
        "ttl": expires_at // 1000 + TTL_SLACK_S,
    }


@dataclass(frozen=True)
class PlannedAction:
    """A new action turn and the record that lists it in its thread."""

    new: NewTurn
    created: Callable[[Turn], PendingEvent]
    record: ActionRecord


class Chat(ChatCancels):
    """A chat thread's writes and reads (its cancel in ``ChatCancels``)."""

    # ------------------------------------------------------------------ writes

    def send(
        self,
        thread: ChatThread,
        *,
        is_new: bool,
        text: str,
        reply: NewTurn,
        reply_created: Callable[[Turn], PendingEvent],
        action: PlannedAction | None,
        run_as: str,
        lease_ms: int,
        asks_slot: str | None = None,
    ) -> tuple[Turn, Turn | None]:
        """The user's message, its reply turn (running under ``run_as``: the request runs it)
        and the action it plans, in one transaction with the thread: a new thread, or the one
        read (same counter, owner, not expired) whose previous reply has ended or been
        cancelled and whose previous action is no longer pending.

        ``asks_slot``: the id of the action the reply's agent may ask a person to approve (its
        finish writes it, ``renderer.closing_items``): the thread names it, and reserves its
        outcome's seq, from now on, so no other message comes between.

        Raises ExtraItemsRejected naming the items that refused (``THREAD``,
        ``PREVIOUS_REPLY``, ``PENDING_ACTION``); nothing was written then."""
        now = self.db.now()
        seq = thread.next_seq
        staged: list[Turn] = []

        def extra(tx: Transaction) -> None:
            planned = action.new.id if action else asks_slot
            after = dataclasses.replace(thread, next_seq=seq + (3 if planned else 2), reply=reply.id, action=planned)
            if is_new:
                tx.put(THREAD, _thread_item(after, now), condition="attribute_not_exists(pk)")
            else:
                self._advance(tx, thread, now, after)
                self._previous_ended(tx, thread)
            user = ChatMessage(seq, "user", text, now)
            item = message_item(thread.id, thread.expires_at, user, reply.id)
            tx.put(USER_MESSAGE, item, condition="attribute_not_exists(pk)")
            if action is not None:
                staged.append(self.turns.stage(tx, action.new, action.created, prefix=ACTION_PREFIX))
                item = action_record_item(thread.id, thread.expires_at, action.record)
                tx.put(ACTION_RECORD, item, condition="attribute_not_exists(pk)")

        turn = self.turns.start(reply, reply_created, extra=extra, run_as=run_as, lease_ms=lease_ms)
        return turn, (staged[-1] if staged else None)

    def _advance(self, tx: Transaction, thread: ChatThread, now: int, after: ChatThread) -> None:
        """The thread as read becomes ``after``, if it still is as read."""
        sets = "next_seq = :nxt, updated_at = :now, reply = :reply"
        values: dict[str, Any] = {
            "nxt": after.next_seq,
            "now": now,
            "reply": after.reply,
            "kind": THREAD_KIND,
            "tenant": thread.tenant,
            "user": thread.user,
            "seq": thread.next_seq,
        }
        if after.action:
            sets += ", action = :action"
            values["action"] = after.action
            update = f"SET {sets}"
        else:
            update = f"SET {sets} REMOVE action"
        tx.update(
            THREAD,
            thread_pk(thread.id),
            META_SK,
            update,
            condition=(
                "attribute_exists(pk) AND kind = :kind AND tenant = :tenant AND end_user = :user"
                " AND next_seq = :seq AND expires_at > :now"
            ),
            values=values,
        )

    def _previous_ended(self, tx: Transaction, thread: ChatThread) -> None:
        """Checks that the turns of the thread's previous message are out of the way: its reply
        ended or cancelled, its action no longer waiting for confirmation."""
        if thread.reply:
            tx.check(
                PREVIOUS_REPLY,
                turn_pk(thread.reply),
                TURN_SK,
                "attribute_not_exists(pk) OR attribute_exists(cancel_requested_at)"
                " OR NOT status IN (:queued, :running)",
                values={"queued": Status.QUEUED.value, "running": Status.RUNNING.value},
            )
        if thread.action:
            tx.check(
                PENDING_ACTION,
                turn_pk(thread.action),
                TURN_SK,
                "attribute_not_exists(pk) OR attribute_exists(cancel_requested_at) OR status <> :queued",
                values={"queued": Status.QUEUED.value},
            )

    def reply_ended(self, thread_id: str, reply_id: str) -> bool:
        """The thread forgets a reply that has ended (if it is still its latest), so a cancel
        no longer writes to it: then a cancel of the action it planned is one UpdateItem. One
        conditional write after the reply's finish; if it never lands, a cancel still finds
        the reply ended (its condition refuses) and goes on without it."""
        new, _ = self.db.conditional(
            "update_item",
            Key=codec.key(thread_pk(thread_id), META_SK),
            UpdateExpression="REMOVE reply",
            ConditionExpression="reply = :rid",
            ExpressionAttributeValues=codec.values(rid=reply_id),
        )
        return new is not None

    # ------------------------------------------------------------------ reads

    def get_thread(self, thread_id: str) -> ChatThread | None:
        return thread_from_item(self.db.get(thread_pk(thread_id), META_SK))

    def messages_before(self, thread_id: str, seq: int, at_most: int) -> list[ChatMessage]:
        """The thread's messages before ``seq`` (the newest ``at_most`` seqs of them), in order: one
        bounded Query (an action's seq counts too, so this reads at most ``at_most`` items)."""
        if seq <= 1:
            return []
        items = self.db.query_all(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
            ExpressionAttributeValues=codec.values(
                pk=thread_pk(thread_id), lo=msg_sk(max(1, seq - at_most)), hi=msg_sk(seq - 1)
            ),
            ConsistentRead=True,
        )
        raws = [codec.load(item) or {} for item in items]
        found = [
            ChatMessage(int(r["seq"]), r["role"], r["content"], int(r["created_at"]))
            for r in raws
            if r.get("kind") == MESSAGE_KIND
        ]
        return sorted(found, key=lambda m: m.seq)

    def history(self, thread_id: str) -> tuple[ChatThread | None, list[ChatMessage], list[ActionRecord]]:
        """The thread, its messages and its actions, in order: one Query of its partition."""
        items = self.db.query_all(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=codec.values(pk=thread_pk(thread_id)),
            ConsistentRead=True,
        )
        thread: ChatThread | None = None
        messages: list[ChatMessage] = []
        actions: list[ActionRecord] = []
        for item in items:
            raw = codec.load(item) or {}
            kind = raw.get("kind")
            if kind == THREAD_KIND:
                thread = thread_from_item(raw)
            elif kind == MESSAGE_KIND:
                messages.append(ChatMessage(int(raw["seq"]), raw["role"], raw["content"], int(raw["created_at"])))
            elif kind == ACTION_KIND:
                actions.append(
                    ActionRecord(raw["id"], int(raw["seq"]), raw["type"], raw["summary"], int(raw["created_at"]))
                )
        return thread, sorted(messages, key=lambda m: m.seq), sorted(actions, key=lambda a: a.seq)

    def action_heads(self, action_ids: list[str]) -> dict[str, Turn]:
        """The heads of these actions' turns, by id (one BatchGetItem per hundred)."""
        if not action_ids:
            return {}
        raws = self.db.batch_get([(turn_pk(a), TURN_SK) for a in action_ids])
        heads = [codec.turn_from_item(r) for r in raws]
        return {t.id: t for t in heads if t is not None}
