"""The OpenAPI tables, one module per dialect (and one each for the operators' admin endpoints and
the remote workers' API), listed by the layer's registry of APIs (``turnstop.dialects.registry``)."""

from __future__ import annotations

import turnstop_local.openapi.spec  # noqa: F401  (puts the layer on sys.path first)
from turnstop.dialects import registry
from turnstop_local.openapi.spec import Dialect


def tables() -> dict[str, Dialect]:
    """Every registered API's OpenAPI table, in the registry's order, by name."""
    found: dict[str, Dialect] = {}
    for api in registry.apis():
        table = registry.load(api.openapi)
        if not isinstance(table, Dialect) or table.name != api.name:
            raise TypeError(f"{api.openapi} is not the OpenAPI table of {api.name!r}")
        found[api.name] = table
    return found


DIALECTS: dict[str, Dialect] = tables()
