"""A benchmark's table: the template's ``TurnTable``, fresh, in the local store (DynamoDB Local
when Java 17+ is there, else the in-process store), deleted once the benchmark is done. Its
importers put the layer on the path first, as every benchmark does."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from turnstop.store import Store

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class LocalTable:
    store: Store
    ddb: Any  # the boto3 DynamoDB client the store writes through (a CapacityMeter wraps it)
    kind: str  # which local store it is, for the results


@contextmanager
def on_a_local_table(prefix: str) -> Iterator[LocalTable]:
    """A new table named ``<prefix>-<8 hex>`` in a local store started for it; on the way out
    the table is deleted and the store stopped."""
    import boto3

    from turnstop.store import Store
    from turnstop_local.store import LocalStore
    from turnstop_local.template import Template

    template = Template.load(ROOT / "template.yaml")
    with LocalStore(ROOT) as local:
        ddb = boto3.client("dynamodb", endpoint_url=local.dynamodb_endpoint, region_name="us-east-1")
        table = f"{prefix}-{uuid.uuid4().hex[:8]}"
        ddb.create_table(TableName=table, **template.table_spec("TurnTable").kwargs)
        try:
            yield LocalTable(Store(table, dynamodb=ddb), ddb, local.kind)
        finally:
            ddb.delete_table(TableName=table)
