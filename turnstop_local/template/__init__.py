"""Read a SAM ``template.yaml`` into the facts the local runtime needs.

The template is the single source of truth: every function, HTTP route, streaming route,
authorizer, queue, event-source mapping and the table schema are taken from it, so a route added
to the template appears locally with no second registration, and tests that build their tables
from :meth:`Template.table_spec` cannot drift from what CloudFormation deploys.

- :mod:`~turnstop_local.template.loader`: YAML with CloudFormation short tags (``!Ref`` is loaded
  as ``{"Ref": ...}``), and finding the template;
- :mod:`~turnstop_local.template.specs`: the records (routes, functions, authorizers, queues...);
- :mod:`~turnstop_local.template.facts`: :class:`Template`, which reads them out of the document;
- :mod:`~turnstop_local.template.intrinsics`: the intrinsic-function evaluator, which resolves
  function environments against the local resources created by :mod:`turnstop_local.store`.

This module re-exports their public names.
"""

from __future__ import annotations

from turnstop_local.template.facts import Template
from turnstop_local.template.intrinsics import Intrinsics
from turnstop_local.template.loader import CfnLoader, TemplateError, find_template, load_yaml
from turnstop_local.template.specs import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_REGION,
    FUNCTION_TYPE,
    HTTP_API_TYPE,
    IMPLICIT_HTTP_API,
    LAYER_TYPE,
    LOCAL_STACK_NAME,
    QUEUE_TYPE,
    TABLE_TYPE,
    Authorizer,
    FunctionSpec,
    LayerSpec,
    LocalResources,
    QueueRef,
    QueueSpec,
    Route,
    ScheduleSource,
    SqsEventSource,
    TableSpec,
    rate_seconds,
)

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_REGION",
    "FUNCTION_TYPE",
    "HTTP_API_TYPE",
    "IMPLICIT_HTTP_API",
    "LAYER_TYPE",
    "LOCAL_STACK_NAME",
    "QUEUE_TYPE",
    "TABLE_TYPE",
    "Authorizer",
    "CfnLoader",
    "FunctionSpec",
    "Intrinsics",
    "LayerSpec",
    "LocalResources",
    "QueueRef",
    "QueueSpec",
    "Route",
    "ScheduleSource",
    "SqsEventSource",
    "TableSpec",
    "Template",
    "TemplateError",
    "find_template",
    "load_yaml",
    "rate_seconds",
]
