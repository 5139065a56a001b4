"""Host the template's Lambda functions in this process, the way the Lambda runtime would.

Each function's handler module (``<CodeUri>/app.py``) is loaded by file path under a unique
module name, since every function's module is called ``app`` and they must not shadow each other.
The function's local layers (``layers/turnstop``: package ``turnstop``) go on ``sys.path``.

Modules read their settings once at import (cold start), so the function's resolved environment
is applied to ``os.environ`` while its module is imported, under a lock, and restored afterwards.
Each function has a concurrency limit (``ReservedConcurrentExecutions``, else
``TURNSTOP_LOCAL_CONCURRENCY``, default 64; see :mod:`turnstop_local.concurrency`) and a thread pool
of that size: an invocation beyond the limit is throttled (:class:`Throttled`) instead of waiting,
as in Lambda. A streaming invocation holds its slot until its body is closed.
Events and results are round-tripped through JSON like the Lambda runtime does, so a handler
that returns something Lambda cannot serialise fails here too.
"""

from __future__ import annotations

import decimal
import importlib.util
import json
import logging
import os
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from turnstop_local.concurrency import DEFAULT_CONCURRENCY, ConcurrencyLimit, Throttled, unreserved_concurrency
from turnstop_local.stream_invocation import StreamHead, StreamInvocation
from turnstop_local.template import FunctionSpec, LocalResources, Template

__all__ = [
    "DEFAULT_CONCURRENCY",
    "FunctionHost",
    "HandlerError",
    "LambdaContext",
    "LambdaFunction",
    "StreamHead",
    "StreamInvocation",
    "Throttled",
    "environment_applied",
]

log = logging.getLogger("turnstop_local.lambda")

# os.environ and sys.path are process-wide: one function imports at a time.
_IMPORT_LOCK = threading.RLock()


class HandlerError(RuntimeError):
    """A function could not be loaded, or its handler could not be found."""


@dataclass
class LambdaContext:
    """The parts of the Lambda context object that handlers and Powertools use."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline_monotonic: float
    identity: Any = None
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline_monotonic - time.monotonic()) * 1000))


class environment_applied:  # used like a function: `with environment_applied(env):`
    """Apply ``env`` to ``os.environ`` under the import lock; restore the previous values on exit."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = dict(env)
        self._saved: dict[str, str | None] = {}

    def __enter__(self) -> None:
        _IMPORT_LOCK.acquire()
        self._saved = {name: os.environ.get(name) for name in self._env}
        os.environ.update(self._env)

    def __exit__(self, *exc: object) -> None:
        try:
            for name, value in self._saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        finally:
            _IMPORT_LOCK.release()


def _json_default(value: Any) -> Any:
    # The Lambda Python runtime serialises Decimal (what boto3 returns for DynamoDB numbers).
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def json_round_trip(value: Any) -> Any:
    """What the handler's caller sees after Lambda serialises ``value``."""
    return json.loads(json.dumps(value, default=_json_default))


class LambdaFunction:
    """One function of the template: its module, handlers, context factory and thread pool."""

    def __init__(
        self,
        spec: FunctionSpec,
        environment: Mapping[str, str],
        layer_paths: list[Path],
        region: str,
        account_id: str,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.spec = spec
        self.name = spec.logical_id  # the local physical name is the logical id
        self.environment = dict(environment)
        self.layer_paths = layer_paths
        self.region = region
        self.account_id = account_id
        reserved = spec.reserved_concurrency
        self.concurrency = max(0, reserved) if reserved is not None else unreserved_concurrency(environ)
        self.slots = ConcurrencyLimit(self.concurrency)
        # Never more running than slots, so a submitted invocation never waits for a thread.
        self._pool = ThreadPoolExecutor(max_workers=max(1, self.concurrency), thread_name_prefix=f"fn-{self.name}")
        self._modules: dict[str, ModuleType] = {}
        self._load_lock = threading.Lock()

    # ------------------------------------------------------------------ loading

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.name}"

    def _runtime_environment(self) -> dict[str, str]:
        """The template environment plus the variables the Lambda runtime itself sets."""
        return {
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.spec.memory_size),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.name}",
            # What `sam local` sets: Powertools' Tracer, for one, turns itself off (no X-Ray daemon).
            "AWS_SAM_LOCAL": "true",
            # ...and said outright: no X-Ray SDK is made or imported locally (turnstop.observability.tracing).
            "POWERTOOLS_TRACE_DISABLED": "true",
            **self.environment,
        }

    def _module(self, module_path: str) -> ModuleType:
        with self._load_lock:
            module = self._modules.get(module_path)
            if module is not None:
                return module
            file = self._module_file(module_path)
            if not file.is_file():
                raise HandlerError(f"{self.name}: handler module {file} not found")
            unique_name = f"_turnstop_fn_{self.name}__{module_path.replace('.', '_')}"
            import_spec = importlib.util.spec_from_file_location(unique_name, file)
            if import_spec is None or import_spec.loader is None:
                raise HandlerError(f"{self.name}: cannot import {file}")
            module = importlib.util.module_from_spec(import_spec)
            with environment_applied(self._runtime_environment()):
                for path in self.layer_paths:
                    # Layers stay importable afterwards: the layer imports lazily at call time too.
                    if str(path) not in sys.path:
                        sys.path.append(str(path))
                # The code dir is /var/task (first on sys.path) only while importing: every function
                # has an `app`, so leaving them all on sys.path would let one shadow another.
                sys.path.insert(0, str(self.spec.code_dir))
                sys.modules[unique_name] = module
                try:
                    import_spec.loader.exec_module(module)
                except BaseException:
                    del sys.modules[unique_name]
                    raise
                finally:
                    sys.path.remove(str(self.spec.code_dir))
            self._modules[module_path] = module
            return module

    def _callable(self, dotted: str) -> Callable[..., Any]:
        module_path, _, attribute = dotted.rpartition(".")
        if not module_path:
            raise HandlerError(f"{self.name}: handler {dotted!r} is not 'module.function'")
        target = getattr(self._module(module_path), attribute, None)
        if not callable(target):
            raise HandlerError(f"{self.name}: {module_path}.py has no callable {attribute!r}")
        return target

    def _module_file(self, module_path: str) -> Path:
        return self.spec.code_dir.joinpath(*module_path.split(".")).with_suffix(".py")

    def load(self) -> LambdaFunction:
        """Import the handler (cold start) now rather than at the first invocation."""
        if self.spec.stream_handler:
            self._callable(self.spec.stream_handler)
        # A streaming function's Handler is usually the Web Adapter's run.sh: nothing to import.
        module_path = self.spec.handler.rpartition(".")[0]
        if not self.spec.stream_handler or (module_path and self._module_file(module_path).is_file()):
            self._callable(self.spec.handler)
        return self

    @property
    def handler(self) -> Callable[[Any, LambdaContext], Any]:
        return self._callable(self.spec.handler)

    @property
    def stream_handler(self) -> Callable[[Any, LambdaContext], Any]:
        if not self.spec.stream_handler:
            raise HandlerError(f"{self.name} has no Metadata.turnstop.StreamHandler")
        return self._callable(self.spec.stream_handler)

    # ------------------------------------------------------------------ invoking

    def new_context(self) -> LambdaContext:
        today = datetime.now(UTC).strftime("%Y/%m/%d")
        return LambdaContext(
            function_name=self.name,
            function_version="$LATEST",
            invoked_function_arn=self.arn,
            memory_limit_in_mb=self.spec.memory_size,
            aws_request_id=str(uuid.uuid4()),
            log_group_name=f"/aws/lambda/{self.name}",
            log_stream_name=f"{today}/[$LATEST]{secrets.token_hex(16)}",
            deadline_monotonic=time.monotonic() + self.spec.timeout,
        )

    def acquire_slot(self, wait: float | None = 0.0) -> None:
        """Take a concurrency slot, waiting up to ``wait`` seconds; :class:`Throttled` if none frees."""
        if not self.slots.acquire(wait):
            raise Throttled(self.name, self.concurrency, self.spec.reserved_concurrency is not None)

    def _start(self, call: Callable[..., Any], *args: Any, wait: float | None, slot_held: bool) -> Future[Any]:
        """Run ``call`` in the pool with a slot held for its whole run (taken here unless ``slot_held``)."""
        if not slot_held:
            self.acquire_slot(wait)
        try:
            return self._pool.submit(self._holding_slot, call, *args)
        except BaseException:
            self.slots.release()
            raise

    def _holding_slot(self, call: Callable[..., Any], *args: Any) -> Any:
        try:
            return call(*args)
        finally:
            self.slots.release()

    def submit(self, event: Any, *, wait: float | None = 0.0, slot_held: bool = False) -> Future[Any]:
        """Invoke the handler in the function's pool; the future holds the JSON result.

        :class:`Throttled` when no slot frees within ``wait`` seconds. ``slot_held``: the caller
        already took one with :meth:`acquire_slot` (it is released when the invocation ends).
        """
        try:
            payload = json_round_trip(event)
        except BaseException:
            if slot_held:
                self.slots.release()
            raise
        return self._start(self._invoke, payload, wait=wait, slot_held=slot_held)

    def invoke(self, event: Any, timeout: float | None = None, *, wait: float | None = 0.0) -> Any:
        """Invoke the handler and wait for its (JSON round-tripped) result or exception."""
        return self.submit(event, wait=wait).result(timeout)

    def _invoke(self, event: Any) -> Any:
        return json_round_trip(self.handler(event, self.new_context()))

    def stream(self, event: Any, *, wait: float | None = 0.0) -> StreamInvocation:
        """Run the StreamHandler in the function's pool; read its response from the result.

        The slot is held until the body is closed. :class:`Throttled` when none frees in ``wait`` s.
        """
        invocation = StreamInvocation()
        self._start(invocation.run, self.stream_handler_call, json_round_trip(event), wait=wait, slot_held=False)
        return invocation

    def throttle_answer(self, streaming: bool) -> Callable[[Any], Any] | None:
        """What a request that found the function at its limit is answered in its dialect's
        shape: the handler module's resolver (``app``) wrapped by ``dialect_answer``, or None."""
        dotted = self.spec.stream_handler if streaming else self.spec.handler
        module_path = (dotted or "").rpartition(".")[0]
        if not module_path or not self._module_file(module_path).is_file():
            return None
        try:
            app = getattr(self._module(module_path), "app", None)
        except Exception:  # a module that cannot load has no answer; its invocations fail on their own
            return None
        from turnstop_local.apigw.throttling import dialect_answer  # apigw imports this module

        return dialect_answer(app)

    def stream_handler_call(self, event: Any) -> Any:
        return self.stream_handler(event, self.new_context())

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class FunctionHost:
    """All the template's functions, resolved against the local resources."""

    def __init__(
        self,
        template: Template,
        resources: LocalResources,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.template = template
        self.resources = resources
        self.functions: dict[str, LambdaFunction] = {
            logical_id: LambdaFunction(
                spec,
                template.function_environment(spec, resources, environ),
                template.layer_paths(spec),
                resources.region,
                resources.account_id,
                environ,
            )
            for logical_id, spec in template.functions.items()
        }
        self._saved_env: dict[str, str | None] = {}

    def get(self, logical_id: str) -> LambdaFunction:
        try:
            return self.functions[logical_id]
        except KeyError:
            raise HandlerError(f"no function {logical_id!r}") from None

    def load_all(self) -> dict[str, BaseException]:
        """Cold-start every function; returns the import errors by function (others still serve)."""
        errors: dict[str, BaseException] = {}
        for logical_id, function in self.functions.items():
            try:
                function.load()
            except BaseException as error:  # a broken function must not stop the rest
                if isinstance(error, KeyboardInterrupt | SystemExit):
                    raise
                errors[logical_id] = error
                log.exception("%s failed to load", logical_id)
        return errors

    def common_environment(self) -> dict[str, str]:
        """Variables every function has with the same value (the Globals ones, in practice)."""
        envs = [f.environment for f in self.functions.values()]
        if not envs:
            return {}
        return {k: v for k, v in envs[0].items() if all(e.get(k) == v for e in envs[1:])}

    def apply_common_environment(self) -> None:
        """Put the shared variables in the process environment for good.

        Code that reads a setting lazily, after the import-time window, then still sees the value
        every function would have; per-function values cannot be shared by one process.
        """
        with _IMPORT_LOCK:
            for name, value in self.common_environment().items():
                self._saved_env.setdefault(name, os.environ.get(name))
                os.environ[name] = value

    def shutdown(self) -> None:
        for function in self.functions.values():
            function.shutdown()
        with _IMPORT_LOCK:
            for name, value in self._saved_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            self._saved_env.clear()
