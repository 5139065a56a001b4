"""Sessions (the sessions dialect's conversations): one item each, ``SESSION#<id>`` / ``META``,
holding the tenant, the expiry and ``active_turn`` — the one-turn-at-a-time slot a session
turn takes when it starts and gives back when it ends."""

from __future__ import annotations

from typing import Any

from turnstop.core import errors
from turnstop.core.records import Session
from turnstop.core.turn import Turn
from turnstop.store import codec
from turnstop.store.codec import META_SK
from turnstop.store.db import Dynamo
from turnstop.store.transaction import Transaction

SLOT = "session"  # the name of the session's item in a turn's transactions


def session_pk(session_id: str) -> str:
    return f"SESSION#{session_id}"


def session_from(raw: dict[str, Any] | None) -> Session | None:
    if not raw or raw.get("sk") != META_SK or not str(raw.get("pk", "")).startswith("SESSION#"):
        return None
    return Session(
        id=raw["id"],
        tenant=raw["tenant"],
        persistent=bool(raw.get("persistent")),
        created_at=raw["created_at"],
        expires_at=raw["expires_at"],
        active_turn=raw.get("active_turn"),
        deleted=raw.get("deleted_at") is not None,
    )


def take_slot(tx: Transaction, session_id: str, turn_id: str, tenant: str, now: int) -> None:
    """The start transaction's item that gives the session's slot to a new turn: the session
    must be live, the tenant's, and idle."""
    tx.update(
        SLOT,
        session_pk(session_id),
        META_SK,
        "SET active_turn = :tid, last_turn = :tid, last_active = :now",
        condition=(
            "attribute_exists(pk) AND tenant = :tenant AND attribute_not_exists(deleted_at)"
            " AND expires_at > :now AND attribute_not_exists(active_turn)"
        ),
        values={"tid": turn_id, "now": now, "tenant": tenant},
    )


def release_slot(tx: Transaction, turn: Turn) -> bool:
    """The item that gives a session turn's slot back (if it still holds it); False when the
    turn holds no session slot."""
    session_id = turn.scope.session_id
    if session_id is None:
        return False
    tx.update(
        SLOT,
        session_pk(session_id),
        META_SK,
        "REMOVE active_turn",
        condition="active_turn = :tid",
        values={"tid": turn.id},
    )
    return True


def explain_refused_slot(old: dict[str, Any] | None, tenant: str, now: int) -> errors.TurnstopError:
    """Why a session refused a new turn, from the session item the condition failed against."""
    session = session_from(old)
    if session is None or not session.live(tenant, now):
        return errors.NotFound("Session not found")
    return errors.Conflict("A turn is already running in this session", active_turn=session.active_turn)


class Sessions:
    def __init__(self, db: Dynamo) -> None:
        self.db = db

    def create(self, session_id: str, tenant: str, persistent: bool, lifetime_ms: int) -> Session:
        now = self.db.now()
        item = {
            "pk": session_pk(session_id),
            "sk": META_SK,
            "id": session_id,
            "tenant": tenant,
            "persistent": persistent,
            "created_at": now,
            "expires_at": now + lifetime_ms,
            "ttl": self.db.ttl(now + lifetime_ms),
        }
        self.db.call(
            "put_item", TableName=self.db.table, Item=codec.dump(item), ConditionExpression="attribute_not_exists(pk)"
        )
        session = session_from(item)
        assert session is not None
        return session

    def get(self, session_id: str) -> Session | None:
        return session_from(self.db.get(session_pk(session_id), META_SK))

    def destroy(self, session_id: str, tenant: str) -> Session:
        """Mark the session deleted and wipe its workspace in one write; returns it as it was.
        The caller cancels its in-flight turn."""
        now = self.db.now()
        new, _ = self.db.conditional(
            "update_item",
            Key=codec.key(session_pk(session_id), META_SK),
            UpdateExpression="SET deleted_at = :now, ttl = :ttl REMOVE workspace",
            ConditionExpression=(
                "attribute_exists(pk) AND tenant = :tenant AND attribute_not_exists(deleted_at) AND expires_at > :now"
            ),
            ExpressionAttributeValues=codec.values(now=now, tenant=tenant, ttl=self.db.ttl(now)),
            ReturnValues="ALL_OLD",
        )
        if new is None:
            raise errors.NotFound("Session not found")
        session = session_from(codec.load(new))
        assert session is not None
        return session
