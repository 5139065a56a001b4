"""X-Ray tracing of every function (Powertools Tracer), kept off the cancel functions' cold start.

Every function runs with ``Tracing: Active``: Lambda records each invocation (its
Initialization, Invocation and Overhead) as a segment linked to API Gateway's, and every
Powertools log line carries its ``xray_trace_id``. ``traced`` adds the function's own part:

- ``traced(handler)``: a Powertools ``Tracer`` made at cold start with botocore and http.client
  patched (each DynamoDB, SQS and EventBridge call is a subsegment, and each task callback or
  OpenID provider request); the handler is a ``## <handler>``
  subsegment annotated with the log keys (``turn_id``, ``tenant``, ``dialect``,
  ``cancel_source``: ``turnstop.observability.logkeys``), so a turn's traces are found by its id; a batch's
  record handler is one more subsegment per record with that record's keys (``traced_record``).
- ``traced(handler, lazy=True)``, the cancel functions: a Tracer made at cold start would load
  the X-Ray SDK (62 modules, 11–15 ms of CPU: docs/observability.md) and wrap every DynamoDB
  call of the stop button, so nothing of it is imported on the way to an answer. An answer of 500 or more (or an
  exception) makes the Tracer then and records the invocation's ``## <handler>`` subsegment
  after the fact (its real start and end, the status, the error, the keys). A healthy cancel
  is traced by Lambda's segment alone, and its log line names the trace.
- ``traced_wsgi(app)``, the streaming functions behind the Lambda Web Adapter: the adapter is
  a process of its own and hands each invocation's trace header to the app as the
  ``X-Amzn-Trace-Id`` request header, not as ``_X_AMZN_TRACE_ID`` (where the X-Ray SDK and
  Powertools' Logger look for it). The app sets it per request (it serves one at a time, as
  the instance gets one invocation at a time) and records the request, its stream included,
  as a ``## <method> <path>`` subsegment with the log keys.
- Tracing disabled (``POWERTOOLS_TRACE_DISABLED``), or outside Lambda (the local runtime and
  the tests: no ``LAMBDA_TASK_ROOT``, or ``AWS_SAM_LOCAL``): the handler unchanged, nothing
  imported, as Powertools' own Tracer would decide.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from turnstop.observability import logkeys

log = logging.getLogger(__name__)
Handler = Callable[[Any, Any], Any]
T = TypeVar("T")
# The store's AWS calls, and plain HTTP: task callbacks (webhooks) and the chat sign-in's
# OpenID provider (botocore's own connections do not pass where httplib is patched: one
# subsegment per AWS call, a test keeps it so).
PATCHED = ("botocore", "httplib")
_tracer: Any = None


def enabled() -> bool:
    """Powertools' rule: off when POWERTOOLS_TRACE_DISABLED is true, or outside Lambda."""
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").lower() in ("1", "true", "yes", "on"):
        return False
    return bool(os.environ.get("LAMBDA_TASK_ROOT")) and not os.environ.get("AWS_SAM_LOCAL")


def tracer() -> Any:
    """The function's Powertools Tracer, made on first use (this imports the X-Ray SDK)."""
    global _tracer
    if _tracer is None:
        from aws_lambda_powertools import Tracer

        _tracer = Tracer(patch_modules=PATCHED)
    return _tracer


def annotate(subsegment: Any) -> None:
    """The log keys in force, as the subsegment's annotations (indexed: searchable in X-Ray)."""
    if subsegment is None:
        return
    for name, value in logkeys.current().items():
        subsegment.put_annotation(name, str(value))


def traced(handler: Handler | None = None, *, lazy: bool = False) -> Any:
    """Decorate a Lambda handler (``@traced`` or ``@traced(lazy=True)``); see the module doc."""
    if handler is None:
        return functools.partial(traced, lazy=lazy)
    if not enabled():
        return handler
    return _on_error(handler) if lazy else _eager(handler)


def _eager(handler: Handler) -> Handler:
    capture = tracer().capture_lambda_handler

    @functools.wraps(handler)
    def annotated(event: Any, context: Any) -> Any:
        try:
            return handler(event, context)
        finally:
            annotate(tracer().provider.current_subsegment())

    return capture(annotated)


def traced_record(handler: Callable[..., T]) -> Callable[..., T]:
    """A batch's record handler (one SQS message: a queued cancel, a turn) as a subsegment of
    its own, annotated with that record's keys; the handler unchanged when tracing is off."""
    if not enabled():
        return handler
    recorder = tracer().provider

    @functools.wraps(handler)
    def record(*args: Any, **kwargs: Any) -> T:
        with recorder.in_subsegment(f"## {handler.__name__}") as subsegment:
            try:
                return handler(*args, **kwargs)
            finally:
                annotate(subsegment)

    return record


def _on_error(handler: Handler) -> Handler:
    @functools.wraps(handler)
    def answer(event: Any, context: Any) -> Any:
        start = time.time()
        try:
            result = handler(event, context)
        except Exception as exc:
            _record(handler.__name__, start, None, exc)
            raise
        status = result.get("statusCode") if isinstance(result, dict) else None
        if isinstance(status, int) and status >= 500:
            _record(handler.__name__, start, status, None)
        return result

    return answer


def _record(name: str, start: float, status: int | None, error: Exception | None) -> None:
    """The invocation's subsegment, written after it ended (a cancel that failed)."""
    try:
        recorder = tracer().provider
        with recorder.in_subsegment(f"## {name}") as subsegment:
            subsegment.start_time = start
            annotate(subsegment)
            if status is not None:
                subsegment.put_annotation("status", status)
                subsegment.add_fault_flag()
            if error is not None:
                subsegment.add_exception(error, [])
    except Exception:  # tracing never changes a cancel's answer
        log.debug("could not record the failed cancel's subsegment", exc_info=True)


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def traced_wsgi(app: WsgiApp) -> WsgiApp:
    """The streaming functions' WSGI app, traced per request (see the module doc)."""
    if not enabled():
        return app
    recorder = tracer().provider

    def traced_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        header = environ.get("HTTP_X_AMZN_TRACE_ID")
        if header:
            os.environ["_X_AMZN_TRACE_ID"] = header
        subsegment = recorder.begin_subsegment(
            f"## {environ.get('REQUEST_METHOD', 'GET')} {environ.get('PATH_INFO', '/')}"
        )
        try:
            yield from app(environ, start_response)
        finally:
            annotate(subsegment)
            if subsegment is not None:
                recorder.end_subsegment()

    return traced_app
