"""An ``AWS::DynamoDB::Table``'s properties as boto3 ``create_table`` keyword arguments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["table_kwargs"]


def _indexes(props: Mapping[str, Any], index_kind: str, provisioned: bool) -> list[dict[str, Any]]:
    indexes = []
    for index in props.get(index_kind) or ():
        entry = {
            "IndexName": index["IndexName"],
            "KeySchema": [dict(k) for k in index["KeySchema"]],
            "Projection": dict(index.get("Projection") or {"ProjectionType": "ALL"}),
        }
        if index_kind == "GlobalSecondaryIndexes" and provisioned:
            entry["ProvisionedThroughput"] = dict(index.get("ProvisionedThroughput") or {})
        indexes.append(entry)
    return indexes


def table_kwargs(props: Mapping[str, Any]) -> dict[str, Any]:
    """``create_table`` keyword arguments (without TableName) for a table's properties."""
    billing_mode = props.get("BillingMode") or "PROVISIONED"
    kwargs: dict[str, Any] = {
        "AttributeDefinitions": [dict(a) for a in props.get("AttributeDefinitions") or ()],
        "KeySchema": [dict(k) for k in props.get("KeySchema") or ()],
        "BillingMode": billing_mode,
    }
    if billing_mode == "PROVISIONED":
        kwargs["ProvisionedThroughput"] = dict(props.get("ProvisionedThroughput") or {})
    for index_kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        indexes = _indexes(props, index_kind, billing_mode == "PROVISIONED")
        if indexes:
            kwargs[index_kind] = indexes
    stream = props.get("StreamSpecification")
    if stream:
        kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    return kwargs
