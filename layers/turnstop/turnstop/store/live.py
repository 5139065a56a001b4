"""The live index (``gsi4``): a tenant's in-flight turns, for scoped bulk cancels.

Sparse like the sweeper's ``gsi2``: a head carries ``gsi4pk`` / ``gsi4sk`` from its creation
until a cancel or its finish removes them, so the index holds only the turns a cancel can still
stop, and only the keys of the tenant's own turns are read, whatever the table holds. The cancel
takes a turn out because some turns never finish once flagged (a chat action cancelled while it
awaits confirmation is never run, so nothing ever writes its end); a turn's index writes are the
same either way, one when it starts and one when it leaves.

    gsi4pk = LIVE#<tenant>#<shard>                 a few shards, so one busy tenant's starts
                                                   and finishes never make a hot partition
    gsi4sk = <parent>#<created_at:015d>#<id>       parent: session:<id>, thread:<id>, or -

A session's or a thread's in-flight turns are one Query (one shard, ``begins_with`` the
parent); a tenant's are one Query per shard. An account, an end user and ``created_before``
narrow either by a filter. The index projects ``created_at``, ``account_id`` and
``end_user``: values no claim or step changes, so only a start, a cancel or a finish writes it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from turnstop.core.bulk import BulkScope
from turnstop.core.records import NewTurn
from turnstop.core.scopes import ScopeKind
from turnstop.store import codec
from turnstop.store.db import Dynamo

LIVE_INDEX = "gsi4"
LIVE_PREFIX = "LIVE#"
LIVE_SHARDS = 4
NO_PARENT = "-"
# A page reads at most this many index pages before it answers (with a cursor to go on).
MAX_INDEX_READS = 10


def parent_of(new: NewTurn) -> str:
    """The narrowest parent a bulk cancel can name: a session or a thread, else none."""
    if new.scope.kind is ScopeKind.SESSION:
        return f"session:{new.scope.key}"
    if new.scope.kind is ScopeKind.CHAT:
        return f"thread:{new.scope.key}"
    if new.thread_id:
        return f"thread:{new.thread_id}"
    return NO_PARENT


def _shard(anchor: str) -> int:
    return int(hashlib.sha256(anchor.encode()).hexdigest()[:8], 16) % LIVE_SHARDS


def live_pk(tenant: str, shard: int) -> str:
    return f"{LIVE_PREFIX}{tenant}#{shard}"


def live_keys(new: NewTurn, now: int) -> dict[str, str]:
    """The head's keys in the live index (a turn of a parent shares its parent's shard)."""
    parent = parent_of(new)
    shard = _shard(new.id if parent == NO_PARENT else parent)
    return {"gsi4pk": live_pk(new.tenant, shard), "gsi4sk": f"{parent}#{now:015d}#{new.id}"}


@dataclass(frozen=True)
class Cursor:
    """Where the next page of a scope's in-flight turns starts: a shard, and the last index
    key read in it (None: the shard's beginning)."""

    shard: int
    key: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"shard": self.shard, "key": self.key}

    @classmethod
    def from_json(cls, raw: Any) -> Cursor | None:
        if raw is None:
            return None
        key = raw.get("key")
        return cls(int(raw["shard"]), None if key is None else {str(k): str(v) for k, v in key.items()})


class LiveIndex:
    def __init__(self, db: Dynamo) -> None:
        self.db = db

    @staticmethod
    def _shards(scope: BulkScope) -> tuple[list[int], str | None]:
        parent = (
            f"session:{scope.session_id}"
            if scope.session_id
            else f"thread:{scope.thread_id}"
            if scope.thread_id
            else None
        )
        return ([_shard(parent)] if parent else list(range(LIVE_SHARDS))), parent

    def page(
        self, scope: BulkScope, *, created_before: int | None, after: Cursor | None, limit: int
    ) -> tuple[list[str], Cursor | None]:
        """Up to ``limit`` ids of the scope's in-flight turns after ``after``, and where the
        next page starts (None: no more). A page may come back short (filters), never empty
        while a cursor follows unless its read budget ran out."""
        shards, parent = self._shards(scope)
        cursor = after or Cursor(shards[0])
        ids: list[str] = []
        for _ in range(MAX_INDEX_READS):
            if len(ids) >= limit:
                break
            page = self.db.call("query", **self._query(scope, parent, created_before, cursor, limit - len(ids)))
            ids.extend(str((codec.load(i) or {})["pk"]).removeprefix("TURN#") for i in page.get("Items", []))
            last = page.get("LastEvaluatedKey")
            if last is not None:
                cursor = Cursor(cursor.shard, {k: v["S"] for k, v in last.items()})
                continue
            following = [s for s in shards if s > cursor.shard]
            if not following:
                return ids, None
            cursor = Cursor(following[0])
        return ids, cursor

    def _query(
        self, scope: BulkScope, parent: str | None, created_before: int | None, cursor: Cursor, limit: int
    ) -> dict[str, Any]:
        vals: dict[str, Any] = {"pk": live_pk(scope.tenant, cursor.shard)}
        key = "gsi4pk = :pk"
        if parent is not None:
            key += " AND begins_with(gsi4sk, :parent)"
            vals["parent"] = parent + "#"
        filters = []
        if scope.account_id is not None:
            filters.append("account_id = :account")
            vals["account"] = scope.account_id
        if scope.end_user is not None:
            filters.append("end_user = :end_user")
            vals["end_user"] = scope.end_user
        if created_before is not None:
            filters.append("created_at < :before")
            vals["before"] = created_before
        kw: dict[str, Any] = {
            "TableName": self.db.table,
            "IndexName": LIVE_INDEX,
            "KeyConditionExpression": key,
            "ExpressionAttributeValues": codec.values(**vals),
            "Limit": limit,
        }
        if filters:
            kw["FilterExpression"] = " AND ".join(filters)
        if cursor.key is not None:
            kw["ExclusiveStartKey"] = {k: {"S": v} for k, v in cursor.key.items()}
        return kw
