"""What a template declares, as plain records: routes, functions, authorizers, queues, tables...

These are the facts :class:`~turnstop_local.template.Template` reads out of ``template.yaml``, and
the names of the resources the local store created for them (:class:`LocalResources`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from turnstop_local.template.loader import TemplateError

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
    "FunctionSpec",
    "LayerSpec",
    "LocalResources",
    "QueueRef",
    "QueueSpec",
    "Route",
    "ScheduleSource",
    "SqsEventSource",
    "TableSpec",
    "rate_seconds",
]

DEFAULT_REGION = "us-east-1"
# moto's default account: ARNs computed here then match the ones moto's SQS returns.
DEFAULT_ACCOUNT_ID = "123456789012"
LOCAL_STACK_NAME = "turnstop-local"

FUNCTION_TYPE = "AWS::Serverless::Function"
HTTP_API_TYPE = "AWS::Serverless::HttpApi"
LAYER_TYPE = "AWS::Serverless::LayerVersion"
QUEUE_TYPE = "AWS::SQS::Queue"
TABLE_TYPE = "AWS::DynamoDB::Table"
# SAM's name for the HttpApi it creates when an HttpApi event has no ApiId.
IMPLICIT_HTTP_API = "ServerlessHttpApi"

DEFAULT_VISIBILITY_TIMEOUT = 30  # seconds, SQS's default


@dataclass(frozen=True)
class Route:
    """One route served locally: an HttpApi event, or a streaming route from Metadata.turnstop."""

    method: str  # upper case, or "ANY"
    path: str  # "/v1/sessions/{id}", "/{proxy+}" or "$default"
    function_id: str
    authorizer: str | None = None  # name of the HttpApi Lambda authorizer that runs first
    streaming: bool = False  # served by the function's Metadata.turnstop.StreamHandler

    @property
    def route_key(self) -> str:
        """API Gateway's routeKey: ``"POST /v1/sessions"`` or ``"$default"``."""
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"


@dataclass(frozen=True)
class Authorizer:
    """An HttpApi Lambda authorizer."""

    name: str
    function_id: str
    payload_format_version: str
    simple_responses: bool
    identity_headers: tuple[str, ...] = ()
    identity_query_strings: tuple[str, ...] = ()

    @property
    def identity_sources(self) -> list[str]:
        """The identity sources as API Gateway names them (``$request.header.Authorization``)."""
        return [f"$request.header.{h}" for h in self.identity_headers] + [
            f"$request.querystring.{q}" for q in self.identity_query_strings
        ]


@dataclass(frozen=True)
class FunctionSpec:
    """An ``AWS::Serverless::Function`` with ``Globals.Function`` merged in."""

    logical_id: str
    code_dir: Path
    handler: str
    timeout: int
    memory_size: int
    reserved_concurrency: int | None
    environment: Mapping[str, Any]  # unresolved values; see Template.function_environment
    layers: tuple[Any, ...]
    metadata: Mapping[str, Any]
    properties: Mapping[str, Any]

    @property
    def name(self) -> str:
        """The logical id in snake case, without ``Function``: ``OmniCancelFunction`` is
        ``omni_cancel`` (how tests, benchmarks and sample events name a function)."""
        return re.sub(r"(?<!^)(?=[A-Z])", "_", self.logical_id.removesuffix("Function")).lower()

    @property
    def app(self) -> str | None:
        """``TURNSTOP_APP``: the app a dialect's shared handler serves (``"<module>:<factory>"``)."""
        value = self.environment.get("TURNSTOP_APP")
        return value if isinstance(value, str) else None

    @property
    def stream_handler(self) -> str | None:
        """``Metadata.turnstop.StreamHandler`` ("module.callable" inside the code dir), if any."""
        value = (self.metadata.get("turnstop") or {}).get("StreamHandler")
        return str(value) if value else None

    @property
    def stream_routes(self) -> tuple[str, ...]:
        """``Metadata.turnstop.Routes``: the "METHOD /path" routes this function streams."""
        return tuple(str(r) for r in (self.metadata.get("turnstop") or {}).get("Routes") or ())


@dataclass(frozen=True)
class SqsEventSource:
    """An SQS event of a function: what Lambda's event-source mapping is configured with."""

    function_id: str
    name: str
    queue_id: str
    batch_size: int = 10
    maximum_batching_window: int = 0
    function_response_types: tuple[str, ...] = ()
    enabled: bool = True
    maximum_concurrency: int | None = None  # ScalingConfig.MaximumConcurrency: this mapping's cap

    @property
    def report_batch_item_failures(self) -> bool:
        return "ReportBatchItemFailures" in self.function_response_types


@dataclass(frozen=True)
class ScheduleSource:
    """A ``Schedule`` event of a function (EventBridge ``rate(...)`` expressions)."""

    function_id: str
    name: str
    period_seconds: float
    enabled: bool = True


_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_RATE_UNITS = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}


def rate_seconds(expression: str) -> float:
    """Seconds between runs of an EventBridge ``rate(N unit)`` expression."""
    m = _RATE.match(expression.strip())
    if not m:
        raise TemplateError(f"only rate(...) schedules run locally, not {expression!r}")
    if int(m.group(1)) < 1:
        raise TemplateError(f"a rate must be at least 1, not {expression!r}")
    return int(m.group(1)) * _RATE_UNITS[m.group(2)]


@dataclass(frozen=True)
class QueueSpec:
    """An ``AWS::SQS::Queue`` and its redrive policy."""

    logical_id: str
    visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT
    max_receive_count: int | None = None
    dlq_id: str | None = None
    fifo: bool = False
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LayerSpec:
    """An ``AWS::Serverless::LayerVersion`` built from a local directory."""

    logical_id: str
    content_dir: Path

    @property
    def python_path(self) -> Path:
        """The directory that ends up on ``sys.path`` (``/opt/python`` in Lambda).

        With a ``python*`` BuildMethod SAM copies ContentUri into ``python/`` itself; a
        pre-built layer already has the ``python/`` folder.
        """
        nested = self.content_dir / "python"
        return nested if nested.is_dir() else self.content_dir


@dataclass(frozen=True)
class TableSpec:
    """An ``AWS::DynamoDB::Table`` as boto3 ``create_table`` keyword arguments (minus TableName)."""

    logical_id: str
    kwargs: dict[str, Any]
    ttl_attribute: str | None


@dataclass(frozen=True)
class QueueRef:
    """A queue created locally."""

    url: str
    arn: str
    name: str


@dataclass
class LocalResources:
    """Names of the resources created in the local store, by logical id."""

    tables: dict[str, str] = field(default_factory=dict)
    queues: dict[str, QueueRef] = field(default_factory=dict)
    region: str = DEFAULT_REGION
    account_id: str = DEFAULT_ACCOUNT_ID

    def to_json(self) -> dict[str, Any]:
        return {
            "tables": dict(self.tables),
            "queues": {k: {"url": q.url, "arn": q.arn, "name": q.name} for k, q in self.queues.items()},
            "region": self.region,
            "account_id": self.account_id,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LocalResources:
        return cls(
            tables=dict(data.get("tables") or {}),
            queues={k: QueueRef(**v) for k, v in (data.get("queues") or {}).items()},
            region=str(data.get("region") or DEFAULT_REGION),
            account_id=str(data.get("account_id") or DEFAULT_ACCOUNT_ID),
        )
