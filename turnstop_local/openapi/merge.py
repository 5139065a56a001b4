"""One document from the dialects' documents. Plain dicts in, a dict out: the local runtime
merges the committed files with this and imports nothing of the layer."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

REF = "#/components/schemas/{model}"
TITLE = "turnstop"
DESCRIPTION = (
    "The stop button for long-running AI agent turns: every dialect in one document "
    "(each dialect alone: /openapi/<dialect>.json)."
)


def _rename_refs(obj: Any, renames: Mapping[str, str]) -> Any:
    if isinstance(obj, dict):
        return {
            k: (renames.get(v, v) if k == "$ref" and isinstance(v, str) else _rename_refs(v, renames))
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [_rename_refs(v, renames) for v in obj]
    return obj


def merge(docs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``docs``: dialect name -> its document, in order. A component whose name another dialect
    took first with a different schema (two dialects' ``SendMessage``) becomes
    ``<dialect>.<Name>``; security schemes become ``<dialect>.<scheme>``."""
    schemas: dict[str, Any] = {}
    security: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    tags: list[Any] = []
    version = "1.0.0"
    servers: list[Any] = []
    for name, original in docs.items():
        doc = copy.deepcopy(dict(original))
        version, servers = doc["info"]["version"], doc.get("servers", [])
        renames: dict[str, str] = {}
        for key, schema in doc["components"]["schemas"].items():
            if key in schemas and schemas[key] != schema:
                renames[REF.format(model=key)] = REF.format(model=f"{name}.{key}")
                schemas[f"{name}.{key}"] = schema
            else:
                schemas[key] = schema
        doc = _rename_refs(doc, renames)
        for scheme, spec in doc["components"]["securitySchemes"].items():
            security[f"{name}.{scheme}"] = spec
        for path, ops in doc["paths"].items():
            for op in ops.values():
                op["security"] = [{f"{name}.{k}": v for k, v in s.items()} for s in op["security"]]
            paths.setdefault(path, {}).update(ops)
        tags.extend(doc.get("tags", []))
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": version, "description": DESCRIPTION},
        "servers": servers,
        "tags": tags,
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": security},
    }
