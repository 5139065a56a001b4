"""Omni threads and their immutable messages (the omni dialect's conversation history).

Items live next to the turns in the one table:

- thread head ``THREAD#<id>`` / ``META``: owner (tenant, linked account), title, times, the
  message counter ``next_seq`` and ``last_response`` (the turn of the latest message);
  listed per owner through ``gsi1`` (``OMNI#<tenant>#<account>``, newest activity last).
- message ``THREAD#<id>`` / ``MSG#<seq>``: one item per message, written once, never changed.

A turn reserves two seqs when it is accepted: its USER message (``n``, written with the turn)
and its ASSISTANT message (``n + 1``, written in the turn's terminal transaction). Every
state change is one transaction built on ``Turns.start``; nothing here reads before it writes
except ``add_message``, whose write is conditioned on exactly what it read (the counter).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from turnstop.core import errors
from turnstop.core.events import PendingEvent
from turnstop.core.records import NewTurn
from turnstop.core.turn import TERMINAL_STATUSES, Status, Turn
from turnstop.idempotency.bindings import KeyBinding
from turnstop.store import codec
from turnstop.store.codec import META_SK, TURN_SK, turn_pk
from turnstop.store.db import TTL_SLACK_S, Dynamo
from turnstop.store.transaction import Transaction
from turnstop.store.turns import Turns

MSG_WIDTH = 12
THREAD_KIND = "omni_thread"
MESSAGE_KIND = "omni_message"


def thread_pk(thread_id: str) -> str:
    return f"THREAD#{thread_id}"


def msg_sk(seq: int) -> str:
    return f"MSG#{seq:0{MSG_WIDTH}d}"


def owner_key(tenant: str, account_id: int) -> str:
    return f"OMNI#{tenant}#{account_id}"


@dataclass(frozen=True)
class OmniThread:
    id: str
    tenant: str
    account_id: int
    title: str
    created_at: int
    updated_at: int
    next_seq: int
    expires_at: int
    last_response: str | None = None
    end_user: str | None = None  # the X-On-Behalf-Of user who created it, if any

    def visible_to(self, tenant: str, account_id: int, now_ms: int, end_user: str | None = None) -> bool:
        """Its tenant and account see it within retention; a call naming an end user sees only
        that end user's threads (a call without one, the tenant's own, sees them all)."""
        mine = end_user is None or self.end_user == end_user
        return self.tenant == tenant and self.account_id == account_id and self.expires_at > now_ms and mine

    @property
    def last_seq(self) -> int:
        return self.next_seq - 1


@dataclass(frozen=True)
class OmniMessage:
    id: str
    thread_id: str
    seq: int
    role: str  # USER | ASSISTANT
    parts: list[dict[str, Any]]
    outcome: str  # completed | errored | canceled
    created_at: int
    response_id: str
    context: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


# Content longer than this (characters of compact JSON; at most 4 bytes each in UTF-8) spills
# into continuation items, so a long answer never meets DynamoDB's 400 KB item limit.
CONTENT_SLICE_CHARS = 75_000
MESSAGE_PART_KIND = "omni_message_part"


def message_items(msg: OmniMessage, *, tenant: str, account_id: int, expires_at: int) -> list[dict[str, Any]]:
    """The plain items of a message (``codec.dump`` turns them into DynamoDB's form): the
    message, and when its content is long, continuation items ``MSG#<seq>#<n>``."""
    content = codec.compact_json({"parts": msg.parts})
    slices = [content[i : i + CONTENT_SLICE_CHARS] for i in range(0, len(content), CONTENT_SLICE_CHARS)] or [""]
    ttl = expires_at // 1000 + TTL_SLACK_S
    head = {
        "pk": thread_pk(msg.thread_id),
        "sk": msg_sk(msg.seq),
        "kind": MESSAGE_KIND,
        "id": msg.id,
        "thread_id": msg.thread_id,
        "seq": msg.seq,
        "role": msg.role,
        "content": slices[0],
        "content_slices": len(slices) if len(slices) > 1 else None,
        "outcome": msg.outcome,
        "created_at": msg.created_at,
        "response_id": msg.response_id,
        "context": None if msg.context is None else codec.compact_json(msg.context),
        "error": None if msg.error is None else codec.compact_json(msg.error),
        "tenant": tenant,
        "account_id": account_id,
        "ttl": ttl,
    }
    rest = [
        {
            "pk": thread_pk(msg.thread_id),
            "sk": f"{msg_sk(msg.seq)}#{n}",
            "kind": MESSAGE_PART_KIND,
            "content": part,
            "ttl": ttl,
        }
        for n, part in enumerate(slices[1:], start=1)
    ]
    return [head, *rest]


def messages_from_items(raws: list[dict[str, Any]]) -> list[OmniMessage]:
    """Messages from their items in key order (a message's continuations follow it)."""
    out: list[OmniMessage] = []
    pending: dict[str, Any] | None = None
    content: list[str] = []

    def close() -> None:
        if pending is not None:
            out.append(_message(pending, "".join(content)))

    for raw in raws:
        if raw.get("kind") == MESSAGE_KIND:
            close()
            pending, content = raw, [str(raw["content"])]
        elif raw.get("kind") == MESSAGE_PART_KIND and pending is not None:
            content.append(str(raw["content"]))
    close()
    return out


def _message(raw: dict[str, Any], content: str) -> OmniMessage:
    return OmniMessage(
        id=raw["id"],
        thread_id=raw["thread_id"],
        seq=int(raw["seq"]),
        role=raw["role"],
        parts=json.loads(content)["parts"],
        outcome=raw["outcome"],
        created_at=int(raw["created_at"]),
        response_id=raw["response_id"],
        context=json.loads(raw["context"]) if raw.get("context") else None,
        error=json.loads(raw["error"]) if raw.get("error") else None,
    )


def thread_from_item(raw: dict[str, Any] | None) -> OmniThread | None:
    if not raw or raw.get("kind") != THREAD_KIND:
        return None
    return OmniThread(
        id=raw["id"],
        tenant=raw["tenant"],
        account_id=int(raw["account_id"]),
        title=raw.get("title", ""),
        created_at=int(raw["created_at"]),
        updated_at=int(raw["updated_at"]),
        next_seq=int(raw["next_seq"]),
        expires_at=int(raw["expires_at"]),
        last_response=raw.get("last_response"),
        end_user=raw.get("end_user"),
    )


THREAD = "thread"
USER_MESSAGE = "user_message"
PREVIOUS_TURN = "previous_turn"


def thread_item(thread: OmniThread) -> dict[str, Any]:
    return {
        "pk": thread_pk(thread.id),
        "sk": META_SK,
        "kind": THREAD_KIND,
        "id": thread.id,
        "tenant": thread.tenant,
        "account_id": thread.account_id,
        "title": thread.title,
        "created_at": thread.created_at,
        "updated_at": thread.updated_at,
        "next_seq": thread.next_seq,
        "last_response": thread.last_response,
        "end_user": thread.end_user,
        "expires_at": thread.expires_at,
        "ttl": thread.expires_at // 1000 + TTL_SLACK_S,
        "gsi1pk": owner_key(thread.tenant, thread.account_id),
        "gsi1sk": f"{thread.updated_at:015d}#{thread.id}",
    }


class OmniThreads:
    def __init__(self, db: Dynamo, turns: Turns) -> None:
        self.db = db
        self.turns = turns

    # ------------------------------------------------------------------ writes

    def create_thread(
        self,
        thread: OmniThread,
        user: OmniMessage,
        new: NewTurn,
        created: Callable[[Turn], PendingEvent],
        idempotency: KeyBinding | None = None,
    ) -> Turn:
        """Thread, its first USER message, the turn head and its first event: one transaction."""

        def extra(tx: Transaction) -> None:
            tx.put(THREAD, thread_item(thread), condition="attribute_not_exists(pk)")
            self._put_message(tx, user, thread)

        try:
            return self.turns.start(new, created, idempotency=idempotency, extra=extra)
        except errors.ExtraItemsRejected:
            raise errors.Retryable() from None

    def add_message(
        self,
        thread: OmniThread,
        user: OmniMessage,
        new: NewTurn,
        created: Callable[[Turn], PendingEvent],
        idempotency: KeyBinding | None = None,
    ) -> Turn:
        """A USER message and its turn, if the thread is still the one read (same counter, same
        owner, not expired) and its previous turn has ended: one transaction.

        Raises NotFound when the thread is gone, Conflict when another turn is active (or
        another message was accepted in between)."""
        now = self.db.now()

        def extra(tx: Transaction) -> None:
            tx.update(
                THREAD,
                thread_pk(thread.id),
                META_SK,
                "SET next_seq = :nxt, last_response = :rid, updated_at = :now, gsi1sk = :sk",
                condition=(
                    "attribute_exists(pk) AND tenant = :tenant AND account_id = :account"
                    " AND next_seq = :seq AND expires_at > :now"
                ),
                values={
                    "nxt": thread.next_seq + 2,
                    "rid": new.id,
                    "now": now,
                    "sk": f"{now:015d}#{thread.id}",
                    "tenant": thread.tenant,
                    "account": thread.account_id,
                    "seq": thread.next_seq,
                },
            )
            self._put_message(tx, user, thread)
            if thread.last_response:
                self._previous_turn_ended(tx, thread.last_response)

        try:
            return self.turns.start(new, created, idempotency=idempotency, extra=extra)
        except errors.ExtraItemsRejected as rejected:
            if THREAD in rejected.failed:
                old = thread_from_item(rejected.failed[THREAD])
                if old is None or not old.visible_to(thread.tenant, thread.account_id, now):
                    raise errors.NotFound("Thread not found") from None
                raise errors.Conflict(
                    "Another message was accepted for this thread; wait for its response to finish"
                ) from None
            raise errors.Conflict(
                "This thread already has an active response; wait for it to reach a terminal status",
                active_response=thread.last_response,
            ) from None

    @staticmethod
    def _previous_turn_ended(tx: Transaction, turn_id: str) -> None:
        """Ended (or cancelled while queued, which no worker may start)."""
        names = {f"s{i}": s.value for i, s in enumerate(TERMINAL_STATUSES)}
        tx.check(
            PREVIOUS_TURN,
            turn_pk(turn_id),
            TURN_SK,
            f"attribute_not_exists(pk) OR status IN ({', '.join(':' + n for n in names)})"
            " OR (status = :queued AND attribute_exists(cancel_requested_at))",
            values={**names, "queued": Status.QUEUED.value},
        )

    def _put_message(self, tx: Transaction, msg: OmniMessage, thread: OmniThread) -> None:
        items = message_items(msg, tenant=thread.tenant, account_id=thread.account_id, expires_at=thread.expires_at)
        for n, item in enumerate(items):
            tx.put(USER_MESSAGE if n == 0 else f"{USER_MESSAGE}:{n}", item, condition="attribute_not_exists(pk)")

    # ------------------------------------------------------------------ reads

    def get_thread(self, thread_id: str) -> OmniThread | None:
        return thread_from_item(self.db.get(thread_pk(thread_id), META_SK))

    def list_threads(
        self,
        tenant: str,
        account_id: int,
        limit: int,
        after: tuple[str, str] | None = None,
        end_user: str | None = None,
    ) -> tuple[list[OmniThread], tuple[str, str] | None]:
        """Threads of an owner (of one end user, when named), most recently active first.
        ``after`` / the returned cursor is (gsi1sk, thread id) where the previous page stopped;
        filtered by end user, a page may hold fewer than ``limit`` threads and still have a next."""
        kw: dict[str, Any] = {
            "TableName": self.db.table,
            "IndexName": "gsi1",
            "KeyConditionExpression": "gsi1pk = :pk",
            "ExpressionAttributeValues": codec.values(pk=owner_key(tenant, account_id)),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if end_user is not None:
            kw["FilterExpression"] = "end_user = :eu"
            kw["ExpressionAttributeValues"] = codec.values(pk=owner_key(tenant, account_id), eu=end_user)
        if after is not None:
            kw["ExclusiveStartKey"] = {
                "gsi1pk": {"S": owner_key(tenant, account_id)},
                "gsi1sk": {"S": after[0]},
                "pk": {"S": thread_pk(after[1])},
                "sk": {"S": META_SK},
            }
        page = self.db.call("query", **kw)
        items = [codec.load(i) or {} for i in page.get("Items", [])]
        threads = [t for t in (thread_from_item(i) for i in items) if t is not None]
        cursor = None
        if "LastEvaluatedKey" in page:
            last = codec.load(page["LastEvaluatedKey"]) or {}
            cursor = (str(last["gsi1sk"]), str(last["pk"]).removeprefix("THREAD#"))
        return threads, cursor

    def messages(self, thread_id: str, after: int, upto: int) -> list[OmniMessage]:
        """Stored messages with after < seq <= upto, in order (continuations joined)."""
        if upto <= after:
            return []
        items = self.db.query_all(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
            ExpressionAttributeValues=codec.values(
                pk=thread_pk(thread_id), lo=msg_sk(after + 1), hi=msg_sk(upto) + "#~"
            ),
            ConsistentRead=True,
        )
        return messages_from_items([codec.load(i) or {} for i in items])

    def get_message(self, thread_id: str, seq: int) -> OmniMessage | None:
        found = self.messages(thread_id, seq - 1, seq)
        return found[0] if found else None
