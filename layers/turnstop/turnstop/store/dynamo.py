"""DynamoDB/SQS adapter: turns, events, sessions, idempotency keys, credentials, ledger.

Reads compare ``expires_at`` with the clock themselves; the table's ``ttl`` attribute only
lets DynamoDB garbage-collect, days later.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from turnstop.core import errors
from turnstop.core.clock import SYSTEM_CLOCK, Clock
from turnstop.core.events import Event, PendingEvent
from turnstop.core.turn import (
    CancelOutcome,
    CancelRequest,
    Status,
    Turn,
    Usage,
    outcome_from_conflict,
    outcome_from_success,
)
from turnstop.store import codec
from turnstop.store.codec import TURN_SK, dump, ev_sk, key, turn_pk, values

log = logging.getLogger(__name__)

# How long DynamoDB keeps an item after its logical expiry before TTL may remove it.
TTL_SLACK_S = 86_400
# Upper bound on a turn's life, for the cleanup TTL of items written while it runs.
MAX_TURN_LIFE_S = 2 * 86_400
IDEMPOTENCY_WINDOW_MS = 24 * 3600 * 1000
_THROTTLE = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TransactionConflictException",
    "InternalServerError",
}
# A transaction holds at most 100 items; leave room for the head and ledger items.
MAX_EVENTS_PER_COMMIT = 90
TRANSACTION_ATTEMPTS = 8

_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def _client(service: str) -> Any:
    """One boto3 client per service per container, created on first use (lean cold start)."""
    with _clients_lock:
        if service not in _clients:
            import boto3
            from botocore.config import Config

            cfg = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=10)
            _clients[service] = boto3.client(service, config=cfg)
        return _clients[service]


@dataclass
class NewTurn:
    id: str
    kind: str
    tenant: str
    scope: str
    grace_ms: int
    input: dict[str, Any] = field(default_factory=dict)
    end_user: str | None = None
    account_id: int | None = None
    input_tokens: int = 0  # known when the turn is created (the prompt); output tokens come from the worker


@dataclass(frozen=True)
class IdempotencyClaim:
    tenant: str
    key: str
    fingerprint: str  # hash of method, route and body

    @staticmethod
    def fingerprint_of(*parts: str | bytes) -> str:
        h = hashlib.sha256()
        for p in parts:
            h.update(p.encode() if isinstance(p, str) else p)
            h.update(b"\x00")
        return h.hexdigest()


class IdempotentReplay(Exception):
    """The Idempotency-Key was used before with the same request: here is that turn."""

    def __init__(self, turn_id: str) -> None:
        super().__init__(turn_id)
        self.turn_id = turn_id


class ExtraItemsRejected(Exception):
    """A caller-supplied item of ``start_turn`` failed its condition; nothing was written.
    ``reasons`` holds each extra item's ``{"code", "item"}`` (old item, raw), in order."""

    def __init__(self, reasons: list[dict[str, Any]]) -> None:
        super().__init__("extra item condition failed")
        self.reasons = reasons


class CommitRejected(Exception):
    """A commit or claim's condition failed; ``old`` is the head it failed against."""

    def __init__(self, old: Turn | None) -> None:
        super().__init__(old.id if old else "missing")
        self.old = old


@dataclass(frozen=True)
class LedgerEntry:
    kind: str  # "usage" or "debit"
    data: dict[str, Any]


@dataclass(frozen=True)
class Session:
    id: str
    tenant: str
    persistent: bool
    created_at: int
    expires_at: int
    active_turn: str | None
    deleted: bool

    def live(self, tenant: str, now_ms: int) -> bool:
        return self.tenant == tenant and not self.deleted and self.expires_at > now_ms


@dataclass(frozen=True)
class Credential:
    tenant: str
    account_ids: tuple[int, ...]
    key_id: str
    name: str = ""


class Store:
    def __init__(
        self,
        table: str,
        *,
        clock: Clock = SYSTEM_CLOCK,
        queue_url: str | None = None,
        dynamodb: Any = None,
        sqs: Any = None,
    ) -> None:
        self.table = table
        self.clock = clock
        self.queue_url = queue_url
        self._ddb = dynamodb
        self._sqs = sqs

    @property
    def ddb(self) -> Any:
        if self._ddb is None:
            self._ddb = _client("dynamodb")
        return self._ddb

    @property
    def sqs(self) -> Any:
        if self._sqs is None:
            self._sqs = _client("sqs")
        return self._sqs

    def now(self) -> int:
        return self.clock.now_ms()

    # ------------------------------------------------------------------ calls and errors

    def _call(self, op: str, **kw: Any) -> Any:
        from botocore.exceptions import ClientError

        try:
            return getattr(self.ddb, op)(**codec.alias_names(kw))
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code in _THROTTLE:
                raise errors.Retryable(f"DynamoDB {op} throttled: {code}") from e
            raise

    def query_all(self, **kw: Any) -> list[dict[str, Any]]:
        """Every item of a Query, following LastEvaluatedKey."""
        items: list[dict[str, Any]] = []
        while True:
            page = self._call("query", **kw)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kw = {**kw, "ExclusiveStartKey": page["LastEvaluatedKey"]}

    def _conditional(self, op: str, **kw: Any) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """Run a conditional write. Returns (attributes, None) or (None, old item) on a failed condition."""
        from botocore.exceptions import ClientError

        try:
            out = self._call(op, ReturnValuesOnConditionCheckFailure="ALL_OLD", **kw)
            return out.get("Attributes", {}), None
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return None, e.response.get("Item") or {}
            raise

    def _transact(self, items: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """One TransactWriteItems. Returns None on success, else each item's (code, old item)."""
        from botocore.exceptions import ClientError

        for it in items:
            kind, body = next(iter(it.items()))
            body = it[kind] = codec.alias_names(body)
            if "ConditionExpression" in body:
                body.setdefault("ReturnValuesOnConditionCheckFailure", "ALL_OLD")
        for attempt in range(TRANSACTION_ATTEMPTS):
            try:
                self._call("transact_write_items", TransactItems=items)
                return None
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                reasons = e.response.get("CancellationReasons") or []
                if any(r.get("Code") == "ConditionalCheckFailed" for r in reasons):
                    return [{"code": r.get("Code"), "item": r.get("Item")} for r in reasons]
                # A concurrent write touched one of the items (e.g. a cancel racing a commit):
                # nothing was written, and the conditions make a retry safe.
                if attempt + 1 == TRANSACTION_ATTEMPTS:
                    raise errors.Retryable("transaction kept conflicting with concurrent writes") from e
                time.sleep(random.uniform(0.005, 0.02) * (attempt + 1))
        return None

    # ------------------------------------------------------------------ turns

    def _ttl(self, at_ms: int, slack_s: int = TTL_SLACK_S) -> int:
        return at_ms // 1000 + slack_s

    def start_turn(
        self,
        new: NewTurn,
        created: Callable[[Turn], PendingEvent],
        *,
        session_id: str | None = None,
        idempotency: IdempotencyClaim | None = None,
        extra_items: list[dict[str, Any]] | None = None,
    ) -> Turn:
        """Create the head and its first event in one transaction, with the session's
        one-turn-at-a-time guard and the Idempotency-Key binding when given. ``created``
        renders the first event from the head being written, so both carry the same times.

        ``extra_items`` are raw TransactItems (Put/Update/ConditionCheck) a dialect needs in
        the same transaction (e.g. a thread's counter and its user message); a failed
        condition among them raises ``ExtraItemsRejected``."""
        now = self.now()
        cleanup = self._ttl(now, MAX_TURN_LIFE_S)
        head = {
            "pk": turn_pk(new.id),
            "sk": TURN_SK,
            "id": new.id,
            "kind": new.kind,
            "tenant": new.tenant,
            "scope": new.scope,
            "end_user": new.end_user,
            "account_id": new.account_id,
            "status": Status.QUEUED.value,
            "created_at": now,
            "seq": 1,
            "grace_ms": new.grace_ms,
            "input": json.dumps(new.input, separators=(",", ":")),
            "usage": Usage(new.input_tokens, 0).to_item(),
            "ttl": cleanup,
            "gsi1pk": f"SCOPE#{new.scope}",
            "gsi1sk": f"{now:015d}#{new.id}",
            # in the sparse in-flight index until finalize removes it (see stale_turns)
            "gsi2pk": inflight_pk(new.id),
            "gsi2sk": f"{now:015d}#{new.id}",
        }
        items: list[dict[str, Any]] = []
        if idempotency is not None:
            items.append(
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": dump(
                            {
                                "pk": f"IDEM#{idempotency.tenant}#{idempotency.key}",
                                "sk": "IDEM",
                                "turn_id": new.id,
                                "fingerprint": idempotency.fingerprint,
                                "expires_at": now + IDEMPOTENCY_WINDOW_MS,
                                "ttl": self._ttl(now + IDEMPOTENCY_WINDOW_MS),
                            }
                        ),
                        "ConditionExpression": "attribute_not_exists(pk) OR expires_at <= :now",
                        "ExpressionAttributeValues": values(now=now),
                    }
                }
            )
        if session_id is not None:
            items.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": key(f"SESSION#{session_id}", codec.META_SK),
                        "UpdateExpression": "SET active_turn = :tid, last_turn = :tid, last_active = :now",
                        "ConditionExpression": (
                            "attribute_exists(pk) AND tenant = :tenant AND attribute_not_exists(deleted_at)"
                            " AND expires_at > :now AND attribute_not_exists(active_turn)"
                        ),
                        "ExpressionAttributeValues": values(tid=new.id, now=now, tenant=new.tenant),
                    }
                }
            )
        items.append(
            {
                "Put": {
                    "TableName": self.table,
                    "Item": dump(head),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        )
        turn = codec.turn_from_item(head)
        assert turn is not None
        first = created(turn)
        items.append({"Put": {"TableName": self.table, "Item": codec.event_item(new.id, 1, first.type, first.data, cleanup)}})
        extra = list(extra_items or [])
        items.extend(extra)
        failed = self._transact(items)
        if failed is not None:
            self._explain_start_failure(failed, idempotency, session_id, new.tenant, now, len(extra))
        return turn

    def _explain_start_failure(
        self,
        failed: list[dict[str, Any]],
        idempotency: IdempotencyClaim | None,
        session_id: str | None,
        tenant: str,
        now: int,
        extra_count: int = 0,
    ) -> None:
        i = 0
        if idempotency is not None:
            if failed[i]["code"] == "ConditionalCheckFailed":
                old = codec.load(failed[i]["item"]) or {}
                if old.get("fingerprint") == idempotency.fingerprint:
                    raise IdempotentReplay(old["turn_id"])
                raise errors.IdempotencyMismatch(
                    "Idempotency-Key was already used with a different request body",
                    turn_id=old.get("turn_id"),
                )
            i += 1
        if session_id is not None and failed[i]["code"] == "ConditionalCheckFailed":
            session = _session_from(codec.load(failed[i]["item"]))
            if session is None or not session.live(tenant, now):
                raise errors.NotFound("Session not found")
            raise errors.Conflict(
                "A turn is already running in this session", active_turn=session.active_turn
            )
        if extra_count and any(f["code"] == "ConditionalCheckFailed" for f in failed[-extra_count:]):
            raise ExtraItemsRejected(failed[-extra_count:])
        raise errors.Retryable("turn id collision")

    def get_turn(self, turn_id: str) -> Turn | None:
        out = self._call(
            "get_item", TableName=self.table, Key=key(turn_pk(turn_id), TURN_SK), ConsistentRead=True
        )
        return codec.turn_from_item(out.get("Item"))

    def get_visible_turn(
        self,
        turn_id: str,
        *,
        tenant: str,
        kinds: tuple[str, ...] | None = None,
        scope: str | None = None,
        end_user: str | None = None,
    ) -> Turn | None:
        """The turn if this caller may see it now: its kind, tenant, scope and end user match
        and it is inside its grace window. Anything else is None, so callers answer not found
        without telling unknown, foreign and expired ids apart."""
        turn = self.get_turn(turn_id)
        if (
            turn is None
            or (kinds is not None and turn.kind not in kinds)
            or not turn.visible_to(tenant, scope, end_user)
            or turn.expired(self.now())
        ):
            return None
        return turn

    def request_cancel(
        self,
        turn_id: str,
        *,
        tenant: str,
        req: CancelRequest,
        scope: str | None = None,
        end_user: str | None = None,
        with_old: bool = False,
    ) -> tuple[CancelOutcome, Turn | None]:
        """One conditional UpdateItem, never a read first. Returns the outcome and the head
        after the write (success) or the head the write failed against. ``not_found`` comes
        with no head unless ``with_old`` and the head is the caller's own live turn in another
        scope (a dialect that explains why, e.g. a scope that is not cancellable)."""
        now = self.now()
        cond = [
            "tenant = :tenant",
            "status IN (:queued, :running)",
            "attribute_not_exists(cancel_requested_at)",
        ]
        vals: dict[str, Any] = {
            "tenant": tenant,
            "queued": Status.QUEUED.value,
            "running": Status.RUNNING.value,
            "now": now,
            "source": req.source,
        }
        sets = ["cancel_requested_at = :now", "cancel_source = :source"]
        if scope is not None:
            cond.append("scope = :scope")
            vals["scope"] = scope
        if end_user is not None:
            cond.append("end_user = :end_user")
            vals["end_user"] = end_user
        if req.reason is not None:
            sets.append("cancel_reason = :reason")
            vals["reason"] = req.reason
        if req.actor is not None:
            sets.append("cancel_actor = :actor")
            vals["actor"] = req.actor
        new, old = self._conditional(
            "update_item",
            TableName=self.table,
            Key=key(turn_pk(turn_id), TURN_SK),
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression=" AND ".join(cond),
            ExpressionAttributeValues=values(**vals),
            ReturnValues="ALL_NEW",
        )
        if new is not None:
            turn = codec.turn_from_item(new)
            assert turn is not None
            return outcome_from_success(turn.stored_status), turn
        old_turn = codec.turn_from_item(old)
        outcome = outcome_from_conflict(old_turn, now, tenant, scope, end_user)
        if outcome is CancelOutcome.NOT_FOUND:
            # Only a scope mismatch on the caller's own live turn is explained; anything
            # else (another tenant's or end user's, expired, unknown) stays bare not_found.
            mine = old_turn is not None and old_turn.visible_to(tenant, None, end_user) and not old_turn.expired(now)
            return outcome, (old_turn if with_old and mine else None)
        return outcome, old_turn

    def claim(self, turn_id: str, owner: str, lease_ms: int) -> Turn:
        """queued → running with a lease. Raises CommitRejected with the head otherwise."""
        now = self.now()
        new, old = self._conditional(
            "update_item",
            TableName=self.table,
            Key=key(turn_pk(turn_id), TURN_SK),
            UpdateExpression=(
                "SET status = :running, started_at = :now, lease_owner = :owner, lease_expires_at = :lease"
            ),
            ConditionExpression="status = :queued AND attribute_not_exists(cancel_requested_at)",
            ExpressionAttributeValues=values(
                running=Status.RUNNING.value, queued=Status.QUEUED.value, now=now, owner=owner, lease=now + lease_ms
            ),
            ReturnValues="ALL_NEW",
        )
        if new is None:
            raise CommitRejected(codec.turn_from_item(old))
        turn = codec.turn_from_item(new)
        assert turn is not None
        return turn

    def commit(
        self, turn: Turn, owner: str, events: list[PendingEvent], usage: Usage, lease_ms: int
    ) -> int:
        """Publish events by moving the head's committed seq over them.

        The head's condition is the cancel check: ``running``, my lease, no cancel flag, and
        the seq I last committed. One write, no read. Returns the new committed seq.
        """
        now = self.now()
        base = turn.seq
        new_seq = base + len(events)
        update = {
            "TableName": self.table,
            "Key": key(turn_pk(turn.id), TURN_SK),
            "UpdateExpression": "SET seq = :seq, usage = :usage, lease_expires_at = :lease",
            "ConditionExpression": (
                "status = :running AND lease_owner = :owner AND attribute_not_exists(cancel_requested_at)"
                " AND seq = :base"
            ),
            "ExpressionAttributeValues": values(
                seq=new_seq,
                usage=usage.to_item(),
                lease=now + lease_ms,
                running=Status.RUNNING.value,
                owner=owner,
                base=base,
            ),
        }
        if not events:
            new, old = self._conditional("update_item", **update)
            if new is None:
                raise CommitRejected(codec.turn_from_item(old))
            return new_seq
        cleanup = self._ttl(now, MAX_TURN_LIFE_S)
        items: list[dict[str, Any]] = [
            {"Put": {"TableName": self.table, "Item": codec.event_item(turn.id, base + i + 1, e.type, e.data, cleanup)}}
            for i, e in enumerate(events)
        ]
        items.append({"Update": update})
        failed = self._transact(items)
        if failed is not None:
            raise CommitRejected(codec.turn_from_item(failed[-1]["item"]))
        return new_seq

    def finalize(
        self,
        turn: Turn,
        status: Status,
        events: list[PendingEvent],
        *,
        usage: Usage,
        owner: str | None = None,
        lost_lease_expires_at: int | None = None,
        error: dict[str, Any] | None = None,
        ledger: list[LedgerEntry] | None = None,
        extra_items: list[dict[str, Any]] | None = None,
        release_session: bool = True,
        at: int | None = None,
    ) -> Turn:
        """Write the closing events (the last is the terminal one) and the terminal state
        together, with ledger entries.

        Exactly one finalize wins per turn: the condition names the state it leaves —
        my running lease (``owner``), an expired lease seen by a redelivered message
        (``lost_lease_expires_at``), or a queued turn whose cancel flag is set.
        Completion also requires the cancel flag to be absent, so a cancel accepted with
        202 always ends as ``cancelled``.
        """
        now = self.now() if at is None else at
        done_at = turn.completed_at if turn.status is Status.CANCELLED and turn.stored_status is Status.QUEUED else now
        assert done_at is not None
        expires = done_at + turn.grace_ms
        seq = turn.seq + len(events)
        vals: dict[str, Any] = {
            "status": status.value,
            "done": done_at,
            "exp": expires,
            "ttl": self._ttl(expires),
            "seq": seq,
            "usage": usage.to_item(),
            "base": turn.seq,
        }
        sets = ["status = :status", "finished_at = :done", "expires_at = :exp", "ttl = :ttl", "seq = :seq", "usage = :usage"]
        if error is not None:
            sets.append("error = :error")
            vals["error"] = json.dumps(error, separators=(",", ":"))
        if owner is not None:
            vals.update(running=Status.RUNNING.value, owner=owner)
            cond = "status = :running AND lease_owner = :owner AND seq = :base"
            if status is not Status.CANCELLED:
                cond += " AND attribute_not_exists(cancel_requested_at)"
        elif lost_lease_expires_at is not None:
            vals.update(running=Status.RUNNING.value, lease=lost_lease_expires_at, now=now)
            cond = "status = :running AND lease_expires_at = :lease AND lease_expires_at <= :now AND seq = :base"
            if status is not Status.CANCELLED:
                cond += " AND attribute_not_exists(cancel_requested_at)"
        else:
            vals.update(queued=Status.QUEUED.value)
            cond = "status = :queued AND attribute_exists(cancel_requested_at) AND seq = :base"
        head_update = {
            "Update": {
                "TableName": self.table,
                "Key": key(turn_pk(turn.id), TURN_SK),
                "UpdateExpression": "SET " + ", ".join(sets) + " REMOVE lease_owner, lease_expires_at, gsi2pk, gsi2sk",
                "ConditionExpression": cond,
                "ExpressionAttributeValues": values(**vals),
            }
        }
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": codec.event_item(turn.id, turn.seq + i + 1, e.type, e.data, self._ttl(expires)),
                }
            }
            for i, e in enumerate(events)
        ]
        head_index = len(items)
        items.append(head_update)
        for entry in ledger or []:
            items.append(
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": dump(
                            {
                                "pk": f"LEDGER#{turn.tenant}",
                                "sk": f"{turn.id}#{entry.kind}",
                                "turn_id": turn.id,
                                "kind": entry.kind,
                                "at": now,
                                **entry.data,
                            }
                        ),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        for extra in extra_items or []:
            # Dialect records that exist once per turn (e.g. the thread's final assistant message).
            items.append(
                {"Put": {"TableName": self.table, "Item": dump(extra), "ConditionExpression": "attribute_not_exists(pk)"}}
            )
        session_index = None
        release = self._session_release(turn) if release_session else None
        if release is not None:
            session_index = len(items)
            items.append(release)
        failed = self._transact(items)
        if failed is not None:
            if session_index is not None and all(
                f["code"] in (None, "None") for i, f in enumerate(failed) if i != session_index
            ):
                # The session is gone or moved on; the turn still has to end.
                return self.finalize(
                    turn, status, events, usage=usage, owner=owner,
                    lost_lease_expires_at=lost_lease_expires_at, error=error, ledger=ledger,
                    extra_items=extra_items, release_session=False, at=at,
                )
            raise CommitRejected(codec.turn_from_item(failed[head_index]["item"]))
        return Turn(
            **{
                **turn.__dict__,
                "stored_status": status,
                "finished_at": done_at,
                "stored_expires_at": expires,
                "seq": seq,
                "usage": usage,
                "lease_owner": None,
                "lease_expires_at": None,
                "error": error,
            }
        )

    def read_events(self, turn_id: str, after: int, upto: int) -> list[Event]:
        """Committed events with after < seq <= upto, in order."""
        if upto <= after:
            return []
        items = self.query_all(
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :lo AND :hi",
            ExpressionAttributeValues=values(pk=turn_pk(turn_id), lo=ev_sk(after + 1), hi=ev_sk(upto)),
            ConsistentRead=True,
        )
        return [codec.event_from_item(i) for i in items]

    def list_scope(self, scope: str, limit: int = 100) -> list[Turn]:
        """Turns in a scope (thread, session, account), newest last."""
        page = self._call(
            "query",
            TableName=self.table,
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :pk",
            ExpressionAttributeValues=values(pk=f"SCOPE#{scope}"),
            Limit=limit,
        )
        return [t for t in (codec.turn_from_item(i) for i in page.get("Items", [])) if t is not None]

    # ------------------------------------------------------------------ sweeping

    def stale_turns(self, shard: int, queued_for_ms: int) -> list[str]:
        """In-flight turns nobody is moving: queued for longer than ``queued_for_ms`` (their
        message was lost or dead-lettered, or a queued cancel was never recorded) or running
        under an expired lease (their worker died). The sparse in-flight index projects only
        status and creation time (so a step's commit never writes to it); a running
        candidate's lease is read from its head."""
        now = self.now()
        items = self.query_all(
            TableName=self.table,
            IndexName="gsi2",
            KeyConditionExpression="gsi2pk = :pk",
            FilterExpression="(status = :queued AND created_at <= :old) OR status = :running",
            ExpressionAttributeValues=values(
                pk=f"{INFLIGHT_PREFIX}{shard}", queued=Status.QUEUED.value, running=Status.RUNNING.value,
                old=now - queued_for_ms,
            ),
        )  # fmt: skip
        stale: list[str] = []
        for item in items:
            raw = codec.load(item) or {}
            turn_id = str(raw["pk"]).removeprefix("TURN#")
            if raw.get("status") == Status.RUNNING.value:
                head = self.get_turn(turn_id)
                if head is None or head.stored_status is not Status.RUNNING or not head.lease_expired(now):
                    continue
            stale.append(turn_id)
        return stale

    def mark_swept(self, turn_id: str, again_after_ms: int) -> bool:
        """Record that the sweeper re-sends this turn's message now, unless it did so within
        ``again_after_ms`` or the turn has moved on; so a backlog is not re-sent every run."""
        now = self.now()
        new, _ = self._conditional(
            "update_item",
            TableName=self.table,
            Key=key(turn_pk(turn_id), TURN_SK),
            UpdateExpression="SET swept_at = :now",
            ConditionExpression=(
                "attribute_exists(gsi2pk) AND (attribute_not_exists(swept_at) OR swept_at <= :again)"
                " AND (status = :queued OR (status = :running AND lease_expires_at <= :now))"
            ),
            ExpressionAttributeValues=values(
                now=now, again=now - again_after_ms, queued=Status.QUEUED.value, running=Status.RUNNING.value
            ),
        )
        return new is not None

    def requeue(self, turn_id: str) -> None:
        """Send a turn's message again. Duplicates are harmless: only one claim can win."""
        if not self.queue_url:
            raise RuntimeError("no turn queue configured")
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps({"turn_id": turn_id}))

    # ------------------------------------------------------------------ queue

    def enqueue(self, turn: Turn, idempotency: IdempotencyClaim | None = None) -> None:
        """Hand the turn to a worker. If the queue refuses, cancel the still-queued turn, free
        its session and unbind its Idempotency-Key in one transaction (so a retry starts
        afresh and nothing waits for a message never sent), then raise Retryable. If the
        turn has meanwhile been claimed, the message did go out: nothing to undo."""
        if not self.queue_url:
            raise RuntimeError("no turn queue configured")
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps({"turn_id": turn.id}))
        except (BotoCoreError, ClientError) as e:
            if self._abandon_queued(turn, idempotency):
                raise errors.Retryable("The turn could not be queued; nothing was started") from e
            log.warning("send_message failed for %s, but a worker already has it", turn.id)

    def _abandon_queued(self, turn: Turn, idempotency: IdempotencyClaim | None) -> bool:
        now = self.now()
        head: dict[str, Any] = {
            "Update": {
                "TableName": self.table,
                "Key": key(turn_pk(turn.id), TURN_SK),
                "UpdateExpression": "SET cancel_requested_at = :now, cancel_source = :source",
                "ConditionExpression": "status = :queued AND attribute_not_exists(cancel_requested_at)",
                "ExpressionAttributeValues": values(now=now, source="enqueue_failed", queued=Status.QUEUED.value),
            }
        }
        cleanup: list[dict[str, Any]] = []
        release = self._session_release(turn)
        if release is not None:
            cleanup.append(release)
        if idempotency is not None:
            cleanup.append(
                {
                    "Delete": {
                        "TableName": self.table,
                        "Key": key(f"IDEM#{idempotency.tenant}#{idempotency.key}", "IDEM"),
                        "ConditionExpression": "turn_id = :tid",
                        "ExpressionAttributeValues": values(tid=turn.id),
                    }
                }
            )
        failed = self._transact([head, *cleanup])
        if failed is None:
            return True
        old = codec.turn_from_item(failed[0]["item"]) if failed[0]["code"] == "ConditionalCheckFailed" else None
        if old is not None and old.stored_status is not Status.QUEUED:
            return False  # claimed: the message reached a worker after all
        # Cancelled concurrently (or a cleanup item had moved on): make sure the turn ends
        # and free what can still be freed, one item at a time.
        for item in ([] if old is not None else [head]) + cleanup:
            self._transact([item])
        return True

    def _session_release(self, turn: Turn) -> dict[str, Any] | None:
        """The transaction item that frees a session turn's session for its next turn."""
        if not turn.scope.startswith("session:"):
            return None
        return {
            "Update": {
                "TableName": self.table,
                "Key": key(f"SESSION#{turn.scope.split(':', 1)[1]}", codec.META_SK),
                "UpdateExpression": "REMOVE active_turn",
                "ConditionExpression": "active_turn = :tid",
                "ExpressionAttributeValues": values(tid=turn.id),
            }
        }

    # ------------------------------------------------------------------ sessions

    def create_session(self, session_id: str, tenant: str, persistent: bool, lifetime_ms: int) -> Session:
        now = self.now()
        item = {
            "pk": f"SESSION#{session_id}",
            "sk": codec.META_SK,
            "id": session_id,
            "tenant": tenant,
            "persistent": persistent,
            "created_at": now,
            "expires_at": now + lifetime_ms,
            "ttl": self._ttl(now + lifetime_ms),
        }
        self._call(
            "put_item", TableName=self.table, Item=dump(item), ConditionExpression="attribute_not_exists(pk)"
        )
        s = _session_from(item)
        assert s is not None
        return s

    def get_session(self, session_id: str) -> Session | None:
        out = self._call(
            "get_item", TableName=self.table, Key=key(f"SESSION#{session_id}", codec.META_SK), ConsistentRead=True
        )
        return _session_from(codec.load(out.get("Item")))

    def destroy_session(self, session_id: str, tenant: str) -> Session:
        """Mark the session deleted and wipe its workspace in one write; returns it as it was.
        The caller cancels its in-flight turn."""
        now = self.now()
        new, old = self._conditional(
            "update_item",
            TableName=self.table,
            Key=key(f"SESSION#{session_id}", codec.META_SK),
            UpdateExpression="SET deleted_at = :now, ttl = :ttl REMOVE workspace",
            ConditionExpression=(
                "attribute_exists(pk) AND tenant = :tenant AND attribute_not_exists(deleted_at) AND expires_at > :now"
            ),
            ExpressionAttributeValues=values(now=now, tenant=tenant, ttl=self._ttl(now)),
            ReturnValues="ALL_OLD",
        )
        if new is None:
            raise errors.NotFound("Session not found")
        s = _session_from(codec.load(new))
        assert s is not None
        return s

    # ------------------------------------------------------------------ credentials

    def put_credential(self, secret: str, cred: Credential) -> None:
        now = self.now()
        self._call(
            "put_item",
            TableName=self.table,
            Item=dump(
                {
                    "pk": f"KEY#{hash_secret(secret)}",
                    "sk": "CRED",
                    "tenant": cred.tenant,
                    "account_ids": list(cred.account_ids),
                    "key_id": cred.key_id,
                    "name": cred.name,
                    "created_at": now,
                }
            ),
        )

    def get_credential(self, secret: str) -> Credential | None:
        out = self._call("get_item", TableName=self.table, Key=key(f"KEY#{hash_secret(secret)}", "CRED"))
        raw = codec.load(out.get("Item"))
        if not raw or raw.get("revoked_at"):
            return None
        return Credential(
            tenant=raw["tenant"],
            account_ids=tuple(int(a) for a in raw.get("account_ids", [])),
            key_id=raw["key_id"],
            name=raw.get("name", ""),
        )

    # ------------------------------------------------------------------ ledger

    def ledger(self, tenant: str, turn_id: str | None = None) -> list[dict[str, Any]]:
        cond = "pk = :pk"
        vals: dict[str, Any] = {"pk": f"LEDGER#{tenant}"}
        if turn_id is not None:
            cond += " AND begins_with(sk, :prefix)"
            vals["prefix"] = f"{turn_id}#"
        out: list[dict[str, Any]] = []
        for item in self.query_all(TableName=self.table, KeyConditionExpression=cond, ExpressionAttributeValues=values(**vals)):
            raw = codec.load(item) or {}
            raw.pop("pk", None)
            raw.pop("sk", None)
            out.append(raw)
        return out


INFLIGHT_PREFIX = "INFLIGHT#"
INFLIGHT_SHARDS = 8


def inflight_pk(turn_id: str) -> str:
    """Spread in-flight turns over a few index partitions so none gets hot."""
    return f"{INFLIGHT_PREFIX}{int(hashlib.sha256(turn_id.encode()).hexdigest()[:8], 16) % INFLIGHT_SHARDS}"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _session_from(raw: dict[str, Any] | None) -> Session | None:
    if not raw or raw.get("sk") != codec.META_SK or not str(raw.get("pk", "")).startswith("SESSION#"):
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
