"""Read a SAM ``template.yaml`` into the facts the local runtime needs.

The template is the single source of truth: every function, HTTP route, streaming route,
authorizer, queue, event-source mapping and the table schema are taken from it, so a route added
to the template appears locally with no second registration, and tests that build their tables
from :meth:`Template.table_spec` cannot drift from what CloudFormation deploys.

CloudFormation short tags (``!Ref``, ``!GetAtt``, ``!Sub``...) are loaded as their long form
(``{"Ref": x}``, ``{"Fn::GetAtt": [...]}``...). Intrinsics in function environments are resolved
against the local resources (:class:`LocalResources`) created by :mod:`turnstop_local.store`.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_REGION",
    "Authorizer",
    "FunctionSpec",
    "LayerSpec",
    "LocalResources",
    "QueueRef",
    "QueueSpec",
    "Route",
    "SqsEventSource",
    "TableSpec",
    "Template",
    "TemplateError",
    "find_template",
    "load_yaml",
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

_DEFAULT_FUNCTION_TIMEOUT = 3  # seconds, Lambda's default
_DEFAULT_MEMORY_SIZE = 128  # MB, Lambda's default
_DEFAULT_VISIBILITY_TIMEOUT = 30  # seconds, SQS's default


class TemplateError(ValueError):
    """The template says something the local runtime cannot serve faithfully."""


# --------------------------------------------------------------------------------------------
# YAML with CloudFormation short tags
# --------------------------------------------------------------------------------------------


class CfnLoader(yaml.SafeLoader):
    """A safe YAML loader that turns CloudFormation short tags into their long (JSON) form."""


_FN_TAGS = (
    "And", "Base64", "Cidr", "Equals", "FindInMap", "GetAZs", "GetAtt", "If", "ImportValue",
    "Join", "Not", "Or", "Select", "Split", "Sub", "Transform", "ToJsonString", "Length",
)  # fmt: skip


def _construct_node(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]


def _register_tags() -> None:
    def plain(key: str) -> Any:
        def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
            return {key: _construct_node(loader, node)}

        return construct

    def get_att(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        value = _construct_node(loader, node)
        if isinstance(value, str):
            # "Res.Attr.Sub" means resource "Res", attribute "Attr.Sub" (as CloudFormation reads it).
            resource, _, attribute = value.partition(".")
            value = [resource, attribute]
        return {"Fn::GetAtt": value}

    CfnLoader.add_constructor("!Ref", plain("Ref"))
    CfnLoader.add_constructor("!Condition", plain("Condition"))
    for name in _FN_TAGS:
        CfnLoader.add_constructor(f"!{name}", get_att if name == "GetAtt" else plain(f"Fn::{name}"))


_register_tags()


def load_yaml(path: Path) -> dict[str, Any]:
    """Load a CloudFormation/SAM template (short tags allowed) as plain Python data."""
    with open(path, encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=CfnLoader)  # CfnLoader is a SafeLoader
    if not isinstance(document, dict):
        raise TemplateError(f"{path}: not a template (top level is not a mapping)")
    return document


def find_template(start: Path | None = None, name: str = "template.yaml") -> Path:
    """The nearest ``template.yaml`` at or above ``start`` (default: the working directory)."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / name
        if candidate.is_file():
            return candidate
    raise TemplateError(f"no {name} found in {here} or any parent directory")


# --------------------------------------------------------------------------------------------
# What the template declares
# --------------------------------------------------------------------------------------------


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
    visibility_timeout: int = _DEFAULT_VISIBILITY_TIMEOUT
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


# --------------------------------------------------------------------------------------------
# The template
# --------------------------------------------------------------------------------------------

_NO_VALUE = object()  # AWS::NoValue: the key that holds it is dropped
_SUB_VARIABLE = re.compile(r"\$\{([^}]+)\}")


def _is_intrinsic(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in _INTRINSIC_KEYS


_INTRINSIC_KEYS = {"Ref", "Condition", *(f"Fn::{n}" for n in _FN_TAGS)}


def _merge_globals(global_value: Any, local_value: Any) -> Any:
    """SAM's Globals rules: primitives replaced, maps merged, lists prepended with the globals."""
    if isinstance(global_value, dict) and isinstance(local_value, dict):
        if _is_intrinsic(global_value) or _is_intrinsic(local_value):
            return local_value
        merged = dict(global_value)
        for key, value in local_value.items():
            merged[key] = _merge_globals(global_value[key], value) if key in global_value else value
        return merged
    if isinstance(global_value, list) and isinstance(local_value, list):
        return [*global_value, *local_value]
    return local_value


def _ref_target(value: Any) -> str | None:
    """The logical id named by ``!Ref X`` or ``!GetAtt X.Attr``, else None."""
    if isinstance(value, dict):
        if "Ref" in value and isinstance(value["Ref"], str):
            return value["Ref"]
        att = value.get("Fn::GetAtt")
        if isinstance(att, list) and att and isinstance(att[0], str):
            return att[0]
    return None


def _as_int(value: Any, default: int) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


class Template:
    """A parsed SAM template with the queries the local runtime needs."""

    def __init__(
        self,
        document: Mapping[str, Any],
        path: Path,
        parameter_overrides: Mapping[str, str] | None = None,
    ) -> None:
        self.document = document
        self.path = path.resolve()
        self.root = self.path.parent
        self.resources: dict[str, dict[str, Any]] = dict(document.get("Resources") or {})
        self.parameters: dict[str, Any] = {
            name: (spec or {}).get("Default") for name, spec in (document.get("Parameters") or {}).items()
        }
        self.parameters.update(parameter_overrides or {})
        self.functions: dict[str, FunctionSpec] = self._parse_functions()
        self.layers: dict[str, LayerSpec] = self._parse_layers()
        self.queues: dict[str, QueueSpec] = self._parse_queues()
        self.authorizers, self._default_authorizers = self._parse_http_apis()
        self.routes: list[Route] = self._parse_routes()
        self.sqs_event_sources: list[SqsEventSource] = self._parse_sqs_event_sources()

    @classmethod
    def load(cls, path: Path | str, parameter_overrides: Mapping[str, str] | None = None) -> Template:
        path = Path(path)
        return cls(load_yaml(path), path, parameter_overrides)

    # ---------------------------------------------------------------- resources by type

    def _of_type(self, type_name: str) -> dict[str, dict[str, Any]]:
        return {lid: r for lid, r in self.resources.items() if isinstance(r, dict) and r.get("Type") == type_name}

    @property
    def table_ids(self) -> list[str]:
        return list(self._of_type(TABLE_TYPE))

    def function(self, logical_id: str) -> FunctionSpec:
        try:
            return self.functions[logical_id]
        except KeyError:
            known = ", ".join(sorted(self.functions)) or "none"
            raise TemplateError(f"no function {logical_id!r} in {self.path.name} (functions: {known})") from None

    # ---------------------------------------------------------------- functions and layers

    def _parse_functions(self) -> dict[str, FunctionSpec]:
        global_props = ((self.document.get("Globals") or {}).get("Function")) or {}
        functions: dict[str, FunctionSpec] = {}
        for logical_id, resource in self._of_type(FUNCTION_TYPE).items():
            props = _merge_globals(global_props, resource.get("Properties") or {})
            code_uri = props.get("CodeUri")
            if not isinstance(code_uri, str):
                raise TemplateError(f"{logical_id}: CodeUri must be a local directory")
            env = ((props.get("Environment") or {}).get("Variables")) or {}
            reserved = props.get("ReservedConcurrentExecutions")
            functions[logical_id] = FunctionSpec(
                logical_id=logical_id,
                code_dir=(self.root / code_uri).resolve(),
                handler=str(props.get("Handler") or ""),
                timeout=_as_int(self.resolve(props.get("Timeout")), _DEFAULT_FUNCTION_TIMEOUT),
                memory_size=_as_int(self.resolve(props.get("MemorySize")), _DEFAULT_MEMORY_SIZE),
                reserved_concurrency=None if reserved is None else _as_int(self.resolve(reserved), 0),
                environment=dict(env),
                layers=tuple(props.get("Layers") or ()),
                metadata=dict(resource.get("Metadata") or {}),
                properties=props,
            )
        return functions

    def _parse_layers(self) -> dict[str, LayerSpec]:
        layers: dict[str, LayerSpec] = {}
        for logical_id, resource in self._of_type(LAYER_TYPE).items():
            content = (resource.get("Properties") or {}).get("ContentUri")
            if isinstance(content, str):
                layers[logical_id] = LayerSpec(logical_id, (self.root / content).resolve())
        return layers

    def layer_paths(self, function: FunctionSpec) -> list[Path]:
        """``sys.path`` entries for the function's local layers, in layer order, no duplicates.

        Layers that are not built from this repo (an ARN such as the Lambda Web Adapter) have
        nothing to import locally and are skipped.
        """
        paths: list[Path] = []
        for layer in function.layers:
            spec = self.layers.get(_ref_target(layer) or "")
            if spec is not None and spec.python_path not in paths:
                paths.append(spec.python_path)
        return paths

    # ---------------------------------------------------------------- queues and tables

    def _parse_queues(self) -> dict[str, QueueSpec]:
        queues: dict[str, QueueSpec] = {}
        for logical_id, resource in self._of_type(QUEUE_TYPE).items():
            props = resource.get("Properties") or {}
            redrive = props.get("RedrivePolicy") or {}
            dlq_id = _ref_target(redrive.get("deadLetterTargetArn"))
            if redrive and dlq_id not in self._of_type(QUEUE_TYPE):
                raise TemplateError(f"{logical_id}: RedrivePolicy.deadLetterTargetArn must be !GetAtt <Queue>.Arn")
            queues[logical_id] = QueueSpec(
                logical_id=logical_id,
                visibility_timeout=_as_int(self.resolve(props.get("VisibilityTimeout")), _DEFAULT_VISIBILITY_TIMEOUT),
                max_receive_count=(_as_int(self.resolve(redrive.get("maxReceiveCount")), 0) or None)
                if redrive
                else None,
                dlq_id=dlq_id if redrive else None,
                fifo=bool(props.get("FifoQueue")),
                properties=props,
            )
        return queues

    def table_spec(self, logical_id: str = "TurnTable") -> TableSpec:
        """``create_table`` kwargs (no TableName) and the TTL attribute of a table of the template."""
        resource = self._of_type(TABLE_TYPE).get(logical_id)
        if resource is None:
            raise TemplateError(f"no AWS::DynamoDB::Table {logical_id!r} in {self.path.name}")
        props = resource.get("Properties") or {}
        billing_mode = props.get("BillingMode") or "PROVISIONED"
        kwargs: dict[str, Any] = {
            "AttributeDefinitions": [dict(a) for a in props.get("AttributeDefinitions") or ()],
            "KeySchema": [dict(k) for k in props.get("KeySchema") or ()],
            "BillingMode": billing_mode,
        }
        if billing_mode == "PROVISIONED":
            kwargs["ProvisionedThroughput"] = dict(props.get("ProvisionedThroughput") or {})
        for index_kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            indexes = []
            for index in props.get(index_kind) or ():
                entry = {
                    "IndexName": index["IndexName"],
                    "KeySchema": [dict(k) for k in index["KeySchema"]],
                    "Projection": dict(index.get("Projection") or {"ProjectionType": "ALL"}),
                }
                if index_kind == "GlobalSecondaryIndexes" and billing_mode == "PROVISIONED":
                    entry["ProvisionedThroughput"] = dict(index.get("ProvisionedThroughput") or {})
                indexes.append(entry)
            if indexes:
                kwargs[index_kind] = indexes
        stream = props.get("StreamSpecification")
        if stream:
            kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
        ttl = props.get("TimeToLiveSpecification") or {}
        ttl_attribute = ttl.get("AttributeName") if ttl.get("Enabled") in (True, "true", "True") else None
        return TableSpec(logical_id, kwargs, ttl_attribute)

    # ---------------------------------------------------------------- HTTP API

    def _parse_http_apis(self) -> tuple[dict[str, Authorizer], dict[str, str | None]]:
        """Lambda authorizers by name, and each HttpApi's DefaultAuthorizer."""
        apis = {lid: r.get("Properties") or {} for lid, r in self._of_type(HTTP_API_TYPE).items()}
        global_api = (self.document.get("Globals") or {}).get("HttpApi") or {}
        apis.setdefault(IMPLICIT_HTTP_API, {})
        authorizers: dict[str, Authorizer] = {}
        defaults: dict[str, str | None] = {}
        for api_id, raw_props in apis.items():
            props = _merge_globals(global_api, raw_props)
            auth = props.get("Auth") or {}
            defaults[api_id] = auth.get("DefaultAuthorizer")
            for name, spec in (auth.get("Authorizers") or {}).items():
                function_id = _ref_target(spec.get("FunctionArn"))
                if function_id is None or function_id not in self.functions:
                    # JWT / IAM authorizers have no function to run locally.
                    continue
                identity = spec.get("Identity") or {}
                authorizers[name] = Authorizer(
                    name=name,
                    function_id=function_id,
                    payload_format_version=str(spec.get("AuthorizerPayloadFormatVersion") or "2.0"),
                    simple_responses=bool(spec.get("EnableSimpleResponses")),
                    identity_headers=tuple(identity.get("Headers") or ()),
                    identity_query_strings=tuple(identity.get("QueryStrings") or ()),
                )
        return authorizers, defaults

    def _parse_routes(self) -> list[Route]:
        routes: list[Route] = []
        for function in self.functions.values():
            for event_name, event in ((function.properties.get("Events")) or {}).items():
                if (event or {}).get("Type") != "HttpApi":
                    continue
                props = event.get("Properties") or {}
                api_id = _ref_target(props.get("ApiId")) or IMPLICIT_HTTP_API
                path = props.get("Path")
                method = str(props.get("Method") or "ANY").upper()
                if method == "X-AMAZON-APIGATEWAY-ANY-METHOD":
                    method = "ANY"
                authorizer = ((props.get("Auth") or {}).get("Authorizer")) or self._default_authorizers.get(api_id)
                if authorizer in ("NONE", "AWS_IAM"):
                    # AWS_IAM (SigV4) has no local equivalent; the route is served unauthenticated.
                    authorizer = None
                if authorizer is not None and authorizer not in self.authorizers:
                    raise TemplateError(
                        f"{function.logical_id}.{event_name}: authorizer {authorizer!r} is not a Lambda authorizer "
                        "of its HttpApi"
                    )
                routes.append(Route(method, str(path) if path else "$default", function.logical_id, authorizer))
            for spec in function.stream_routes:
                method, _, path = spec.strip().partition(" ")
                if not path.startswith("/") or not function.stream_handler:
                    raise TemplateError(
                        f"{function.logical_id}: Metadata.turnstop.Routes entries are 'METHOD /path' and need a "
                        f"StreamHandler (got {spec!r})"
                    )
                routes.append(Route(method.upper(), path.strip(), function.logical_id, None, streaming=True))
        seen: dict[str, Route] = {}
        for route in routes:
            if route.route_key in seen:
                raise TemplateError(
                    f"route {route.route_key!r} is declared by both {seen[route.route_key].function_id} "
                    f"and {route.function_id}"
                )
            seen[route.route_key] = route
        return routes

    # ---------------------------------------------------------------- SQS

    def _parse_sqs_event_sources(self) -> list[SqsEventSource]:
        sources: list[SqsEventSource] = []
        for function in self.functions.values():
            for event_name, event in ((function.properties.get("Events")) or {}).items():
                if (event or {}).get("Type") != "SQS":
                    continue
                props = event.get("Properties") or {}
                queue_id = _ref_target(props.get("Queue"))
                if queue_id not in self.queues:
                    raise TemplateError(f"{function.logical_id}.{event_name}: Queue must be !GetAtt <Queue>.Arn")
                sources.append(
                    SqsEventSource(
                        function_id=function.logical_id,
                        name=event_name,
                        queue_id=queue_id,
                        batch_size=_as_int(self.resolve(props.get("BatchSize")), 10),
                        maximum_batching_window=_as_int(self.resolve(props.get("MaximumBatchingWindowInSeconds")), 0),
                        function_response_types=tuple(props.get("FunctionResponseTypes") or ()),
                        enabled=props.get("Enabled", True) not in (False, "false", "False"),
                    )
                )
        return sources

    @property
    def schedule_sources(self) -> list[ScheduleSource]:
        sources: list[ScheduleSource] = []
        for function in self.functions.values():
            for event_name, event in ((function.properties.get("Events")) or {}).items():
                if (event or {}).get("Type") != "Schedule":
                    continue
                props = event.get("Properties") or {}
                sources.append(
                    ScheduleSource(
                        function_id=function.logical_id,
                        name=event_name,
                        period_seconds=rate_seconds(str(self.resolve(props.get("Schedule")))),
                        enabled=props.get("Enabled", True) not in (False, "false", "False"),
                    )
                )
        return sources

    # ---------------------------------------------------------------- intrinsic resolution

    def function_environment(
        self,
        function: FunctionSpec,
        resources: LocalResources | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """The function's environment variables, resolved against the local resources.

        A variable of the local process that has the same name as a template variable starting
        with ``TURNSTOP_`` overrides it (``TURNSTOP_SCRIPTED_STEP_MS=0`` for fast local turns).
        """
        environ = os.environ if environ is None else environ
        resolved: dict[str, str] = {}
        for name, raw in function.environment.items():
            value = self.resolve(raw, resources)
            if value is _NO_VALUE or value is None:
                continue
            if name.startswith("TURNSTOP_") and name in environ:
                value = environ[name]
            resolved[name] = _env_string(value)
        return resolved

    def resolve(self, value: Any, resources: LocalResources | None = None) -> Any:
        """Evaluate the intrinsic functions in ``value`` with local names for resources."""
        if isinstance(value, list):
            return [v for v in (self.resolve(i, resources) for i in value) if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if not _is_intrinsic(value):
            resolved = {k: self.resolve(v, resources) for k, v in value.items()}
            return {k: v for k, v in resolved.items() if v is not _NO_VALUE}
        ((key, arg),) = value.items()
        res = resources or LocalResources()
        if key == "Ref":
            return self._ref(str(arg), res)
        if key == "Fn::GetAtt":
            parts = arg if isinstance(arg, list) else str(arg).split(".", 1)
            return self._get_att(str(parts[0]), str(self.resolve(parts[1], resources)), res)
        if key == "Fn::Sub":
            return self._sub(arg, res)
        if key == "Fn::Join":
            separator, items = arg
            return str(separator).join(_env_string(i) for i in self.resolve(items, resources))
        if key == "Fn::Select":
            index, items = self.resolve(arg, resources)
            return items[int(index)]
        if key == "Fn::Split":
            separator, text = self.resolve(arg, resources)
            return str(text).split(str(separator))
        if key == "Fn::Base64":
            return base64.b64encode(str(self.resolve(arg, resources)).encode()).decode()
        if key == "Fn::If":
            condition, when_true, when_false = arg
            return self.resolve(when_true if self._condition(str(condition), res) else when_false, resources)
        if key in ("Fn::Equals", "Fn::And", "Fn::Or", "Fn::Not", "Condition"):
            return self._evaluate_condition(value, res)
        raise TemplateError(f"cannot resolve {key} locally: {value!r}")

    def _condition(self, name: str, resources: LocalResources) -> bool:
        conditions = self.document.get("Conditions") or {}
        if name not in conditions:
            raise TemplateError(f"unknown condition {name!r}")
        return self._evaluate_condition(conditions[name], resources)

    def _evaluate_condition(self, expression: Any, resources: LocalResources) -> bool:
        ((key, arg),) = expression.items()
        if key == "Condition":
            return self._condition(str(arg), resources)
        if key == "Fn::Equals":
            left, right = (self.resolve(a, resources) for a in arg)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self._evaluate_condition(arg[0], resources)
        if key == "Fn::And":
            return all(self._evaluate_condition(a, resources) for a in arg)
        if key == "Fn::Or":
            return any(self._evaluate_condition(a, resources) for a in arg)
        raise TemplateError(f"unsupported condition {expression!r}")

    def _ref(self, name: str, res: LocalResources) -> Any:
        pseudo = {
            "AWS::Region": res.region,
            "AWS::AccountId": res.account_id,
            "AWS::StackName": LOCAL_STACK_NAME,
            "AWS::StackId": f"arn:aws:cloudformation:{res.region}:{res.account_id}:stack/{LOCAL_STACK_NAME}/local",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": _NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        resource_type = (self.resources.get(name) or {}).get("Type")
        if resource_type == TABLE_TYPE:
            return res.tables.get(name, name)
        if resource_type == QUEUE_TYPE:
            queue = res.queues.get(name)
            return queue.url if queue else name
        if resource_type == LAYER_TYPE:
            return f"arn:aws:lambda:{res.region}:{res.account_id}:layer:{name}:1"
        # Functions, APIs and anything else: the logical id is the local physical name.
        return name

    def _get_att(self, name: str, attribute: str, res: LocalResources) -> Any:
        resource_type = (self.resources.get(name) or {}).get("Type")
        if resource_type == TABLE_TYPE:
            table = res.tables.get(name, name)
            arn = f"arn:aws:dynamodb:{res.region}:{res.account_id}:table/{table}"
            return {"Arn": arn, "StreamArn": f"{arn}/stream/local"}.get(attribute, f"{name}.{attribute}")
        if resource_type == QUEUE_TYPE:
            queue = res.queues.get(name)
            if queue is not None:
                return {"Arn": queue.arn, "QueueName": queue.name, "QueueUrl": queue.url}.get(
                    attribute, f"{name}.{attribute}"
                )
        if resource_type == FUNCTION_TYPE and attribute == "Arn":
            return f"arn:aws:lambda:{res.region}:{res.account_id}:function:{name}"
        return f"{name}.{attribute}"

    def _sub(self, arg: Any, res: LocalResources) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1] if len(arg) > 1 else {})

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"  # ${!Literal} is an escaped literal
            if name in variables:
                return _env_string(self.resolve(variables[name], res))
            if "." in name and name.split(".", 1)[0] in self.resources:
                resource, attribute = name.split(".", 1)
                return _env_string(self._get_att(resource, attribute, res))
            return _env_string(self._ref(name, res))

        return _SUB_VARIABLE.sub(replace, str(text))


def _env_string(value: Any) -> str:
    """Lambda environment values are strings; YAML may have produced ints or bools."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
