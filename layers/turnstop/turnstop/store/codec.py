"""Item keys and the mapping between DynamoDB items and domain objects."""

from __future__ import annotations

import json
import re
import zlib
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from turnstop.core.scopes import Scope
from turnstop.core.turn import Status, Turn, Usage

_ser = TypeSerializer()
_de = TypeDeserializer()

TURN_SK = "TURN"
INPUT_SK = "INPUT"
META_SK = "META"
EV_WIDTH = 12


def turn_pk(turn_id: str) -> str:
    return f"TURN#{turn_id}"


def compact_json(value: Any) -> str:
    """JSON as stored: no spaces, and non-ASCII text as itself (UTF-8), not as escapes."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def ev_sk(seq: int) -> str:
    return f"EV#{seq:0{EV_WIDTH}d}"


def key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def dump(value: dict[str, Any]) -> dict[str, Any]:
    """Python dict → DynamoDB attribute map; ``None`` values are left out."""
    return {k: _ser.serialize(_plain_to_ddb(v)) for k, v in value.items() if v is not None}


def load(item: dict[str, Any] | None) -> dict[str, Any] | None:
    if not item:
        return None
    return {k: _ddb_to_plain(_de.deserialize(v)) for k, v in item.items()}


_EXPR_WORDS = {
    "AND",
    "OR",
    "NOT",
    "IN",
    "BETWEEN",
    "SET",
    "REMOVE",
    "ADD",
    "DELETE",
    "attribute_exists",
    "attribute_not_exists",
    "attribute_type",
    "begins_with",
    "contains",
    "size",
    "if_not_exists",
    "list_append",
}
_IDENT = re.compile(r"(?<![:#\w])([A-Za-z_][A-Za-z0-9_]*)")


def alias_names(params: dict[str, Any]) -> dict[str, Any]:
    """Rewrite bare attribute names in a request's expressions to ``#name`` placeholders.

    DynamoDB reserves hundreds of words (status, usage, ttl, data, ...); writing every
    expression through this keeps them readable and never trips over one.
    """
    names: dict[str, str] = dict(params.get("ExpressionAttributeNames") or {})
    out = dict(params)

    def sub(m: re.Match[str]) -> str:
        word = m.group(1)
        if word in _EXPR_WORDS:
            return word
        names[f"#{word}"] = word
        return f"#{word}"

    for field in (
        "UpdateExpression",
        "ConditionExpression",
        "KeyConditionExpression",
        "FilterExpression",
        "ProjectionExpression",
    ):
        if field in out:
            out[field] = _IDENT.sub(sub, out[field])
    if names:
        out["ExpressionAttributeNames"] = names
    return out


def values(**kw: Any) -> dict[str, Any]:
    """ExpressionAttributeValues from keyword arguments (``:name`` → value)."""
    return {f":{k}": _ser.serialize(_plain_to_ddb(v)) for k, v in kw.items()}


def _plain_to_ddb(v: Any) -> Any:
    if isinstance(v, float):
        return Decimal(str(v))
    if isinstance(v, dict):
        return {k: _plain_to_ddb(x) for k, x in v.items() if x is not None}
    if isinstance(v, list | tuple):
        return [_plain_to_ddb(x) for x in v]
    return v


def _ddb_to_plain(v: Any) -> Any:
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, dict):
        return {k: _ddb_to_plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_ddb_to_plain(x) for x in v]
    if isinstance(v, set):
        return sorted(_ddb_to_plain(x) for x in v)
    return v


def turn_from_item(item: dict[str, Any] | None, input: dict[str, Any] | None = None) -> Turn | None:
    """The turn from its head item (raw or plain); its request (``input``) comes from the
    INPUT item when the caller read it."""
    raw = load(item) if item and "pk" in item and isinstance(item["pk"], dict) else item
    if not raw or raw.get("sk") != TURN_SK:
        return None
    return Turn(
        id=raw["id"],
        kind=raw["kind"],
        tenant=raw["tenant"],
        scope=Scope.parse(raw["scope"]),
        stored_status=Status(raw["status"]),
        created_at=raw["created_at"],
        seq=raw.get("seq", 0),
        grace_ms=raw.get("grace_ms", 120_000),
        end_user=raw.get("end_user"),
        account_id=raw.get("account_id"),
        started_at=raw.get("started_at"),
        finished_at=raw.get("finished_at"),
        stored_expires_at=raw.get("expires_at"),
        cancel_requested_at=raw.get("cancel_requested_at"),
        cancel_reason=raw.get("cancel_reason"),
        cancel_actor=raw.get("cancel_actor"),
        cancel_source=raw.get("cancel_source"),
        cancel_seq=raw.get("cancel_seq"),
        cancel_batch=raw.get("cancel_batch"),
        cancel_observed_at=raw.get("cancel_observed_at"),
        deadline_at=raw.get("deadline_at"),
        born_cancelled=bool(raw.get("born_cancelled")),
        lease_owner=raw.get("lease_owner"),
        lease_expires_at=raw.get("lease_expires_at"),
        usage=Usage.from_item(raw.get("usage")),
        input=input or {},
        error=json.loads(raw["error"]) if raw.get("error") else None,
        upstream=json.loads(raw["upstream"]) if raw.get("upstream") else None,
    )


def input_item(turn_id: str, value: dict[str, Any], ttl: int) -> dict[str, Any]:
    """A turn's request, written once with the turn and never rewritten (compressed): the head
    that every step updates stays small whatever the prompt."""
    return {"pk": turn_pk(turn_id), "sk": INPUT_SK, "in": zlib.compress(compact_json(value).encode(), 6), "ttl": ttl}


def input_of(raw: dict[str, Any] | None) -> dict[str, Any]:
    if not raw or raw.get("sk") != INPUT_SK:
        return {}
    blob = raw["in"]
    return dict(json.loads(zlib.decompress(bytes(blob.value if hasattr(blob, "value") else blob))))
