"""The template's facts: functions, layers, queues, the table, HTTP routes, authorizers, SQS
event sources and schedules, read from a SAM ``template.yaml`` with ``Globals`` merged in."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from turnstop_local.template.intrinsics import NO_VALUE, Intrinsics, env_string
from turnstop_local.template.loader import TemplateError, is_intrinsic, load_yaml
from turnstop_local.template.specs import (
    DEFAULT_VISIBILITY_TIMEOUT,
    FUNCTION_TYPE,
    HTTP_API_TYPE,
    IMPLICIT_HTTP_API,
    LAYER_TYPE,
    QUEUE_TYPE,
    TABLE_TYPE,
    Authorizer,
    FunctionSpec,
    LayerSpec,
    LocalResources,
    QueueSpec,
    Route,
    ScheduleSource,
    SqsEventSource,
    TableSpec,
    rate_seconds,
)
from turnstop_local.template.tables import table_kwargs

__all__ = ["Template"]

_DEFAULT_FUNCTION_TIMEOUT = 3  # seconds, Lambda's default
_DEFAULT_MEMORY_SIZE = 128  # MB, Lambda's default


def merge_globals(global_value: Any, local_value: Any) -> Any:
    """SAM's Globals rules: primitives replaced, maps merged, lists prepended with the globals."""
    if isinstance(global_value, dict) and isinstance(local_value, dict):
        if is_intrinsic(global_value) or is_intrinsic(local_value):
            return local_value
        merged = dict(global_value)
        for key, value in local_value.items():
            merged[key] = merge_globals(global_value[key], value) if key in global_value else value
        return merged
    if isinstance(global_value, list) and isinstance(local_value, list):
        return [*global_value, *local_value]
    return local_value


def ref_target(value: Any) -> str | None:
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


def _maximum_concurrency(scaling: Any) -> int | None:
    value = scaling.get("MaximumConcurrency") if isinstance(scaling, dict) else None
    return None if value is None else max(0, _as_int(value, 0))


def _enabled(props: Mapping[str, Any]) -> bool:
    return props.get("Enabled", True) not in (False, "false", "False")


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
        self.intrinsics = Intrinsics(self.resources, self.parameters, document.get("Conditions") or {})
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

    @staticmethod
    def _function_events(function: FunctionSpec, event_type: str) -> list[tuple[str, dict[str, Any]]]:
        """(event name, event properties) of the function's events of one type."""
        events = (function.properties.get("Events")) or {}
        return [(name, e.get("Properties") or {}) for name, e in events.items() if (e or {}).get("Type") == event_type]

    def _events_of_type(self, event_type: str) -> list[tuple[FunctionSpec, str, dict[str, Any]]]:
        """(function, event name, event properties) of every function event of one type."""
        return [
            (f, name, props) for f in self.functions.values() for name, props in self._function_events(f, event_type)
        ]

    # ---------------------------------------------------------------- functions and layers

    def _parse_functions(self) -> dict[str, FunctionSpec]:
        global_props = ((self.document.get("Globals") or {}).get("Function")) or {}
        functions: dict[str, FunctionSpec] = {}
        for logical_id, resource in self._of_type(FUNCTION_TYPE).items():
            props = merge_globals(global_props, resource.get("Properties") or {})
            code_uri = props.get("CodeUri")
            if not isinstance(code_uri, str):
                raise TemplateError(f"{logical_id}: CodeUri must be a local directory")
            env = ((props.get("Environment") or {}).get("Variables")) or {}
            # `!If [Cond, n, !Ref AWS::NoValue]` (a reservation only when asked for) resolves to none
            reserved = self.resolve(props.get("ReservedConcurrentExecutions"))
            reserved = None if reserved is NO_VALUE else reserved
            functions[logical_id] = FunctionSpec(
                logical_id=logical_id,
                code_dir=(self.root / code_uri).resolve(),
                handler=str(props.get("Handler") or ""),
                timeout=_as_int(self.resolve(props.get("Timeout")), _DEFAULT_FUNCTION_TIMEOUT),
                memory_size=_as_int(self.resolve(props.get("MemorySize")), _DEFAULT_MEMORY_SIZE),
                reserved_concurrency=None if reserved is None else _as_int(reserved, 0),
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
            spec = self.layers.get(ref_target(layer) or "")
            if spec is not None and spec.python_path not in paths:
                paths.append(spec.python_path)
        return paths

    # ---------------------------------------------------------------- queues and tables

    def _parse_queues(self) -> dict[str, QueueSpec]:
        queues: dict[str, QueueSpec] = {}
        for logical_id, resource in self._of_type(QUEUE_TYPE).items():
            props = resource.get("Properties") or {}
            redrive = props.get("RedrivePolicy") or {}
            dlq_id = ref_target(redrive.get("deadLetterTargetArn"))
            if redrive and dlq_id not in self._of_type(QUEUE_TYPE):
                raise TemplateError(f"{logical_id}: RedrivePolicy.deadLetterTargetArn must be !GetAtt <Queue>.Arn")
            queues[logical_id] = QueueSpec(
                logical_id=logical_id,
                visibility_timeout=_as_int(self.resolve(props.get("VisibilityTimeout")), DEFAULT_VISIBILITY_TIMEOUT),
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
        ttl = props.get("TimeToLiveSpecification") or {}
        ttl_attribute = ttl.get("AttributeName") if ttl.get("Enabled") in (True, "true", "True") else None
        return TableSpec(logical_id, table_kwargs(props), ttl_attribute)

    # ---------------------------------------------------------------- HTTP API

    def _parse_http_apis(self) -> tuple[dict[str, Authorizer], dict[str, str | None]]:
        """Lambda authorizers by name, and each HttpApi's DefaultAuthorizer."""
        apis = {lid: r.get("Properties") or {} for lid, r in self._of_type(HTTP_API_TYPE).items()}
        global_api = (self.document.get("Globals") or {}).get("HttpApi") or {}
        apis.setdefault(IMPLICIT_HTTP_API, {})
        authorizers: dict[str, Authorizer] = {}
        defaults: dict[str, str | None] = {}
        for api_id, raw_props in apis.items():
            auth = merge_globals(global_api, raw_props).get("Auth") or {}
            defaults[api_id] = auth.get("DefaultAuthorizer")
            for name, spec in (auth.get("Authorizers") or {}).items():
                function_id = ref_target(spec.get("FunctionArn"))
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

    def _http_api_route(self, function: FunctionSpec, event_name: str, props: Mapping[str, Any]) -> Route:
        api_id = ref_target(props.get("ApiId")) or IMPLICIT_HTTP_API
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
        return Route(method, str(path) if path else "$default", function.logical_id, authorizer)

    def _stream_routes(self, function: FunctionSpec) -> list[Route]:
        routes = []
        for spec in function.stream_routes:
            method, _, path = spec.strip().partition(" ")
            if not path.startswith("/") or not function.stream_handler:
                raise TemplateError(
                    f"{function.logical_id}: Metadata.turnstop.Routes entries are 'METHOD /path' and need a "
                    f"StreamHandler (got {spec!r})"
                )
            routes.append(Route(method.upper(), path.strip(), function.logical_id, None, streaming=True))
        return routes

    def _parse_routes(self) -> list[Route]:
        routes: list[Route] = []
        for function in self.functions.values():
            routes.extend(self._http_api_route(function, n, p) for n, p in self._function_events(function, "HttpApi"))
            routes.extend(self._stream_routes(function))
        seen: dict[str, Route] = {}
        for route in routes:
            if route.route_key in seen:
                raise TemplateError(
                    f"route {route.route_key!r} is declared by both {seen[route.route_key].function_id} "
                    f"and {route.function_id}"
                )
            seen[route.route_key] = route
        return routes

    # ---------------------------------------------------------------- SQS and schedules

    def _parse_sqs_event_sources(self) -> list[SqsEventSource]:
        sources: list[SqsEventSource] = []
        for function, event_name, props in self._events_of_type("SQS"):
            queue_id = ref_target(props.get("Queue"))
            if queue_id is None or queue_id not in self.queues:
                raise TemplateError(f"{function.logical_id}.{event_name}: Queue must be !GetAtt <Queue>.Arn")
            sources.append(
                SqsEventSource(
                    function_id=function.logical_id,
                    name=event_name,
                    queue_id=queue_id,
                    batch_size=_as_int(self.resolve(props.get("BatchSize")), 10),
                    maximum_batching_window=_as_int(self.resolve(props.get("MaximumBatchingWindowInSeconds")), 0),
                    function_response_types=tuple(props.get("FunctionResponseTypes") or ()),
                    enabled=_enabled(props),
                    maximum_concurrency=_maximum_concurrency(self.resolve(props.get("ScalingConfig"))),
                )
            )
        return sources

    @property
    def schedule_sources(self) -> list[ScheduleSource]:
        return [
            ScheduleSource(
                function_id=function.logical_id,
                name=event_name,
                period_seconds=rate_seconds(str(self.resolve(props.get("Schedule")))),
                enabled=_enabled(props),
            )
            for function, event_name, props in self._events_of_type("Schedule")
        ]

    # ---------------------------------------------------------------- intrinsic resolution

    def function_environment(
        self,
        function: FunctionSpec,
        resources: LocalResources | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """The function's environment variables, resolved against the local resources.

        A variable of the local process that has the same name as a template variable starting
        with ``TURNSTOP_`` overrides it (``TURNSTOP_SCRIPTED_STEP_MS=0`` for fast local turns),
        except ``TURNSTOP_APP``: which app a function serves is the template's alone.
        """
        environ = os.environ if environ is None else environ
        resolved: dict[str, str] = {}
        for name, raw in function.environment.items():
            value = self.resolve(raw, resources)
            if value is NO_VALUE or value is None:
                continue
            if name.startswith("TURNSTOP_") and name != "TURNSTOP_APP" and name in environ:
                value = environ[name]
            resolved[name] = env_string(value)
        return resolved

    def resolve(self, value: Any, resources: LocalResources | None = None) -> Any:
        """Evaluate the intrinsic functions in ``value`` with local names for resources."""
        return self.intrinsics.resolve(value, resources)
