"""API keys for the local runtime: the dev key seeded at start, and ``keys create``.

Keys are created by the layer's own ``turnstop.auth.create_api_key`` (hashing and item shape
live there, once), imported from the template's local layer directories.
"""

from __future__ import annotations

import importlib
import os
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from turnstop_local.template import Template

__all__ = [
    "DEV_TENANT",
    "DevKey",
    "create_api_key",
    "dev_key_from_env",
    "generate_dev_key",
    "parse_account_ids",
    "put_layers_on_path",
]

DEV_TENANT = "dev"


def put_layers_on_path(template: Template) -> None:
    for layer in template.layers.values():
        if str(layer.python_path) not in sys.path:
            sys.path.append(str(layer.python_path))


def create_api_key(
    template: Template,
    table_name: str,
    tenant: str,
    account_ids: list[int],
    key: str | None = None,
    name: str = "",
    admin: bool = False,
) -> str:
    """Store an API key with the layer's ``turnstop.auth.create_api_key``; returns the plaintext key.
    ``admin``: the key may also use the admin endpoints (``POST /v1/admin/cancels``) for its tenant."""
    put_layers_on_path(template)
    auth = importlib.import_module("turnstop.auth")
    extra = {"admin": True} if admin else {}  # only asked for when wanted: older layers lack it
    return str(auth.create_api_key(table_name, tenant, account_ids, key=key, name=name, **extra))


def parse_account_ids(text: str) -> list[int]:
    """``"1, 2"`` -> ``[1, 2]``; ValueError on anything that is not a comma-separated int list."""
    ids = [int(part) for part in text.split(",") if part.strip()]
    if not ids:
        raise ValueError("at least one account id is needed")
    return ids


def generate_dev_key() -> str:
    """A fresh dev key: ``ts_dev_`` and 32 URL-safe random characters."""
    return "ts_dev_" + secrets.token_urlsafe(24)  # 24 bytes encode to exactly 32 characters


@dataclass(frozen=True)
class DevKey:
    key: str
    account_ids: list[int]
    generated: bool  # True when the key was made up here (so it must be shown to the user)


def dev_key_from_env(environ: Mapping[str, str] | None = None) -> DevKey:
    """The dev key to seed: ``TURNSTOP_DEV_API_KEY`` (else a new one), ``TURNSTOP_DEV_ACCOUNT_IDS``."""
    environ = os.environ if environ is None else environ
    accounts = parse_account_ids(environ.get("TURNSTOP_DEV_ACCOUNT_IDS") or "1")
    given = environ.get("TURNSTOP_DEV_API_KEY")
    return DevKey(given, accounts, False) if given else DevKey(generate_dev_key(), accounts, True)
