"""Task callbacks in the local runtime: signing secrets and the loopback receiver knob.

- The dev tenant's signing secret is ``TURNSTOP_DEV_WEBHOOK_SECRET``, else a new one printed at
  start (like the dev key); ``keys create`` gives a new tenant its secret and shows it once.
- Callback receivers on http://127.0.0.1 / localhost are allowed by default here (and only
  here): the template sets ``TURNSTOP_CALLBACK_ALLOW_LOOPBACK`` to false for AWS, and a process
  variable of the same name overrides it locally.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import MutableMapping
from typing import Any

from turnstop_local.keys import DEV_TENANT, put_layers_on_path
from turnstop_local.template import Template

LOCAL_DEFAULTS = {"TURNSTOP_CALLBACK_ALLOW_LOOPBACK": "true"}


def apply_local_defaults(environ: MutableMapping[str, str] | None = None) -> None:
    """Set the local runtime's defaults where the user has not chosen otherwise."""
    environ = os.environ if environ is None else environ
    for name, value in LOCAL_DEFAULTS.items():
        environ.setdefault(name, value)


def _signing(template: Template) -> Any:
    """The layer's ``turnstop.auth.ensure_webhook_secret``, or None for a layer without callbacks."""
    put_layers_on_path(template)
    return getattr(importlib.import_module("turnstop.auth"), "ensure_webhook_secret", None)


def seed_dev_webhook_secret(
    template: Template, table_name: str, environ: MutableMapping[str, str] | None = None
) -> str:
    """Store the dev tenant's signing secret; returns the banner's line for it ("" without one)."""
    environ = os.environ if environ is None else environ
    given = environ.get("TURNSTOP_DEV_WEBHOOK_SECRET") or None
    try:
        ensure = _signing(template)
        if ensure is None:
            return ""
        secret = ensure(table_name, DEV_TENANT, given, replace=True)
    except Exception as error:  # the API still serves; callbacks fail until a secret exists
        return f"\n  dev webhook signing secret NOT seeded ({type(error).__name__}: {error})"
    shown = "$TURNSTOP_DEV_WEBHOOK_SECRET" if given else secret
    return f"\n  dev webhook signing secret: {shown}"


def ensure_tenant_webhook_secret(template: Template, table_name: str, tenant: str) -> str | None:
    """A new secret for a tenant that has none (to show once), else None."""
    ensure = _signing(template)
    secret = ensure(table_name, tenant) if ensure is not None else None
    return str(secret) if secret else None
