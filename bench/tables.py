"""A benchmark's table: the template's ``TurnTable``, fresh, in the local store (DynamoDB Local
when Java 17+ is there, else the in-process store), deleted once the benchmark is done. Its
importers put the layer on the path first, as every benchmark does."""

from __future__ import annotations

import argparse
import json
import os
import platform
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


def run_alone_args(argv: list[str] | None, doc: str, name: str, quick: str) -> argparse.Namespace:
    """The options of a benchmark run on its own: ``--quick`` (what it then does: ``quick``) and
    ``--out`` (default ``bench/results/<name>.json``)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=quick)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / f"{name}.json"))
    return ap.parse_args(argv)


def write_alone(out: Path | str, kind: str, key: str, result: dict[str, Any], title: str, body: list[str]) -> str:
    """Write a benchmark run on its own: ``out`` (its result under ``key``, with the store and the
    machine it ran on) and the same name in ``.md`` (``title``, then ``body``); returns the page."""
    results = {
        "store": kind,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count() or 0} CPUs",
        key: result,
    }
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    head = [f"# {title}", "", f"store: {kind}, Python {results['python']} on {results['machine']}"]
    page = "\n".join(head + body) + "\n"
    path.with_suffix(".md").write_text(page)
    return page
