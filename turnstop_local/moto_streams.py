"""moto's DynamoDB, made to hold up where the local runtime's streams lean on it.

moto is pinned in requirements.txt: this patches its internals (see :func:`patch_moto`).
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["MOTO_STREAM_RECORDS", "patch_moto"]

# moto keeps this many records per stream (DynamoDB keeps 24 hours' worth).
MOTO_STREAM_RECORDS = 2000
_moto_patched = threading.Lock()


def patch_moto(max_records: int = MOTO_STREAM_RECORDS) -> None:
    """moto's DynamoDB, made to hold up where the local runtime leans on it (once per process).

    moto backs a transaction up by deep-copying its whole table, and rolls a failed one back by
    swapping that copy in. Every transaction then costs as much as the table is large (about
    0.1 s at 3,000 items), and a swapped-in copy carries a copy of the table's stream, which
    leaves every open shard iterator reading a shard that gets no more records. Here a
    transaction backs up only the items it names and a failed one puts exactly those back,
    dropping the stream records it added. A shard keeps the newest ``max_records`` (moving its
    trim horizon, as DynamoDB's 24-hour retention does) instead of every record ever written.
    """
    if not _moto_patched.acquire(blocking=False):
        return
    import copy
    import types

    import moto.dynamodb.models as models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import StreamShard, Table

    def deepcopy(value: Any, memo: Any = None) -> Any:  # the whole-table backup becomes a no-op
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    models.copy = types.SimpleNamespace(deepcopy=deepcopy)  # type: ignore[assignment]
    transact, add = models.DynamoDBBackend.transact_write_items, StreamShard.add

    def touched(backend: Any, items: Any) -> list[tuple[Any, Any, Any, Any]]:
        out = []
        for entry in items:
            op = next(iter(entry.values()))
            table = backend.tables.get(op.get("TableName"))
            key = op.get("Item") or op.get("Key") or {}
            if table is None or table.hash_key_attr not in key:
                continue  # moto refuses it anyway
            h = DynamoType(key[table.hash_key_attr])
            r = DynamoType(key[table.range_key_attr]) if table.range_key_attr in key else None
            out.append((table, h, r, copy.deepcopy(table.get_item(h, r))))
        return out

    def transact_write_items(self: Any, transact_items: Any) -> None:
        backup = touched(self, transact_items)
        shards = {
            id(t): (t.stream_shard, t.stream_shard.starting_sequence_number + len(t.stream_shard.items))
            for t, *_ in backup
            if t.stream_shard is not None
        }
        try:
            transact(self, transact_items)
        except Exception:
            for table, h, r, prior in reversed(backup):
                bucket = table.items if r is None else table.items[h]
                if prior is None:
                    bucket.pop(h if r is None else r, None)
                else:
                    bucket[h if r is None else r] = prior
            for shard, next_seq in shards.values():
                del shard.items[max(0, next_seq - shard.starting_sequence_number) :]
            raise

    def bounded_add(self: Any, old: Any, new: Any) -> None:
        add(self, old, new)
        extra = len(self.items) - max_records
        if extra > 0:
            del self.items[:extra]
            self.starting_sequence_number += extra

    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    StreamShard.add = bounded_add  # type: ignore[method-assign]
