"""The local runtime's documentation routes: ``GET /openapi.json`` (every dialect in one
document) and ``GET /openapi/<name>.json`` (one dialect, or ``queue-cancel.schema.json``).

They serve the committed files under ``openapi/`` (``make openapi`` writes them), with
``servers`` pointing at the address the request came to. Of the layer only the registry of
APIs is imported (it imports nothing else): it names the documents and their order.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from turnstop_local.apigw.responses import HttpResponse
from turnstop_local.openapi.merge import merge

SPEC_DIR = Path(__file__).resolve().parents[2] / "openapi"
_LAYER = Path(__file__).resolve().parents[2] / "layers" / "turnstop"
MERGED = "/openapi.json"
ONE = re.compile(r"^/openapi/([a-z][a-z-]*(?:\.schema)?\.json)$")
SCHEMA_FILE = "queue-cancel.schema.json"


def _names() -> list[str]:
    if str(_LAYER) not in sys.path:  # the layer's package, as the local runtime's functions see it
        sys.path.append(str(_LAYER))
    from turnstop.dialects.registry import apis

    return [api.name for api in apis()]


def _dialects(spec_dir: Path) -> dict[str, dict[str, Any]]:
    return {n: json.loads((spec_dir / f"{n}.json").read_text(encoding="utf-8")) for n in _names()}


def _json(status: int, doc: Any) -> HttpResponse:
    body = json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n"
    return HttpResponse(status, [("content-type", "application/json"), ("access-control-allow-origin", "*")], body)


def _here(doc: dict[str, Any], host: str | None) -> dict[str, Any]:
    if host and "servers" in doc:
        return {**doc, "servers": [{"url": f"http://{host}", "description": "this local runtime"}]}
    return doc


def answer(method: str, path: str, headers: Mapping[str, str], spec_dir: Path = SPEC_DIR) -> HttpResponse | None:
    """The answer to a documentation request, or None when ``path`` is not one."""
    if method not in ("GET", "HEAD"):
        return None
    host = next((v for k, v in headers.items() if k.lower() == "host"), None)
    if path == MERGED:
        return _json(200, _here(merge(_dialects(spec_dir)), host))
    match = ONE.match(path)
    if match is None:
        return None
    file = spec_dir / match.group(1)
    if not file.is_file():
        return _json(404, {"message": "No such document; see /openapi.json"})
    return _json(200, _here(json.loads(file.read_text(encoding="utf-8")), host))
