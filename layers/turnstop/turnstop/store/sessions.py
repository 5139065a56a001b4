"""Sessions (the sessions dialect's conversations): one item each, ``SESSION#<id>`` / ``META``,
holding the tenant, the expiry and ``active_turn`` — the one-turn-at-a-time slot a session
turn takes when it starts and gives back when it ends."""

from __future__ import annotations

import dataclasses
from typing import Any

from turnstop.core import errors
from turnstop.core.records import NewTurn, Session
from turnstop.core.turn import Status, Turn
from turnstop.store import codec
from turnstop.store.codec import META_SK, TURN_SK, turn_pk
from turnstop.store.db import Dynamo
from turnstop.store.transaction import Transaction

SLOT = "session"  # the name of the session's item in a turn's transactions
PREVIOUS = "previous_session_turn"  # the cancelled turn a new one takes the slot from


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
        end_user=raw.get("end_user"),
        last_turn=raw.get("last_turn"),
    )


def _live(end_user: str | None) -> str:
    own = " AND end_user = :end_user" if end_user is not None else ""
    return "attribute_exists(pk) AND tenant = :tenant AND attribute_not_exists(deleted_at) AND expires_at > :now" + own


NO_PREVIOUS = ""  # a new turn's ``previous_turn`` when the session has had none


def take_slot(
    tx: Transaction,
    session_id: str,
    turn_id: str,
    tenant: str,
    end_user: str | None,
    now: int,
    after: str | None = None,
    previous: str | None = None,
) -> None:
    """The start transaction's item that gives the session's slot to a new turn: the session
    must be live and the caller's, and idle — or (``after``) held by a turn that has been
    cancelled, which the new turn replaces at once (``PREVIOUS`` checks that turn). With
    ``previous`` (the turn the new one follows, ``NO_PREVIOUS`` for none) the session's latest
    turn must still be that one, so the conversation the new turn records is the whole one."""
    values: dict[str, Any] = {"tid": turn_id, "now": now, "tenant": tenant}
    order = ""
    if previous == NO_PREVIOUS:
        order = " AND attribute_not_exists(last_turn)"
    elif previous is not None:
        order, values["prev"] = " AND last_turn = :prev", previous
    if end_user is not None:
        values["end_user"] = end_user
    if after is None:
        idle = "attribute_not_exists(active_turn)"
    else:
        idle, values["after"] = "active_turn = :after", after
        tx.check(
            PREVIOUS,
            turn_pk(after),
            TURN_SK,
            "attribute_not_exists(pk) OR attribute_exists(cancel_requested_at) OR NOT status IN (:queued, :running)",
            values={"queued": Status.QUEUED.value, "running": Status.RUNNING.value},
        )
    tx.update(
        SLOT,
        session_pk(session_id),
        META_SK,
        "SET active_turn = :tid, last_turn = :tid, last_active = :now",
        condition=f"{_live(end_user)} AND {idle}{order}",
        values=values,
    )


def check_live(tx: Transaction, session_id: str, tenant: str, end_user: str | None, now: int) -> None:
    """The start transaction's item for a turn that takes no slot (one born cancelled): the
    session must be live and the caller's, busy or not."""
    values = {"now": now, "tenant": tenant}
    if end_user is not None:
        values["end_user"] = end_user
    tx.check(SLOT, session_pk(session_id), META_SK, _live(end_user), values=values)


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


def refused_slot(old: dict[str, Any] | None, tenant: str, end_user: str | None, now: int) -> errors.TurnstopError:
    """Why a session refused a new turn, from the session item the condition failed against.
    A Conflict names the turn holding the slot (``active_turn``, None when idle by now)."""
    session = session_from(old)
    if session is None or not session.live(tenant, now, end_user):
        return errors.NotFound("Session not found")
    return errors.Conflict(
        "A turn is already running in this session", active_turn=session.active_turn, last_turn=session.last_turn
    )


def follow_latest(new: NewTurn, refused: errors.TurnstopError) -> NewTurn | None:
    """A session turn refused because another turn started since its caller read the session
    (it came and went, or was cancelled and holds the slot still): the same turn, following the
    session's latest turn instead (a running holder still refuses it, by the slot's condition)."""
    if not isinstance(refused, errors.Conflict) or "previous_turn" not in new.input:
        return None
    latest = refused.details.get("last_turn") or NO_PREVIOUS
    if latest == new.input["previous_turn"]:
        return None
    return dataclasses.replace(new, input={**new.input, "previous_turn": latest})


class Sessions:
    def __init__(self, db: Dynamo) -> None:
        self.db = db

    def create(
        self, session_id: str, tenant: str, persistent: bool, lifetime_ms: int, end_user: str | None = None
    ) -> Session:
        now = self.db.now()
        item = {
            "pk": session_pk(session_id),
            "sk": META_SK,
            "id": session_id,
            "tenant": tenant,
            "end_user": end_user,
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

    def destroy(self, session_id: str, tenant: str, end_user: str | None = None) -> Session:
        """Mark the session deleted and wipe its workspace in one write; returns it as it was.
        The caller cancels its in-flight turn."""
        now = self.db.now()
        values = {"now": now, "tenant": tenant, "ttl": self.db.ttl(now)}
        if end_user is not None:
            values["end_user"] = end_user
        new, _ = self.db.conditional(
            "update_item",
            Key=codec.key(session_pk(session_id), META_SK),
            UpdateExpression="SET deleted_at = :now, ttl = :ttl REMOVE workspace",
            ConditionExpression=_live(end_user),
            ExpressionAttributeValues=codec.values(**values),
            ReturnValues="ALL_OLD",
        )
        if new is None:
            raise errors.NotFound("Session not found")
        session = session_from(codec.load(new))
        assert session is not None
        return session
