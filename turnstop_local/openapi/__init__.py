"""OpenAPI 3.1 documents of every dialect, built from the handlers' own request models.

Tooling, not the layer: ``make openapi`` runs :mod:`turnstop_local.openapi.__main__`, which
writes ``openapi/<dialect>.json`` and ``openapi/queue-cancel.schema.json`` from
:mod:`turnstop_local.openapi.build`; a unit test rebuilds them in memory and fails on drift;
the local runtime serves the committed files (:mod:`turnstop_local.openapi.serve`, which
imports nothing of the layer but its registry of APIs). See docs/openapi.md.
"""
