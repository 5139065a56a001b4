"""Rules the template must keep as dialects are added: every cancel endpoint has its own
function with reserved concurrency and alarms, and every queue has a dead-letter queue (or is
one: a redrive target, or where a stream's failed batches go)."""

from __future__ import annotations

from typing import Any

from turnstop_local.template import Template


def is_cancel(path: str, method: str) -> bool:
    """A cancel endpoint: a path ending in /cancel, the omni DELETE, or the admin bulk cancels."""
    return (
        path.endswith("/cancel")
        or (method == "DELETE" and "/responses/" in path)
        or path.startswith("/v1/admin/cancels")
    )


def cancel_functions(template: Template) -> set[str]:
    """Functions serving a cancel endpoint."""
    return {r.function_id for r in template.routes if is_cancel(r.path, r.method)}


def on_failure_queues(template: Template) -> set[str]:
    """Queues that receive the failed batches of stream event sources (their dead letters)."""
    out = set()
    for function in template.functions.values():
        for event in (function.properties.get("Events") or {}).values():
            if event.get("Type") != "DynamoDB":
                continue
            config = event["Properties"].get("DestinationConfig") or {}
            out.add(config["OnFailure"]["Destination"]["Fn::GetAtt"][0])
    return out


def alarms(template: Template) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template.resources.values() if r.get("Type") == "AWS::CloudWatch::Alarm"]


RESERVATION = {"Fn::If": ["HasReservedConcurrency", {"Ref": "ReservedConcurrency"}, {"Ref": "AWS::NoValue"}]}


def test_every_cancel_endpoint_is_its_own_function_with_reserved_concurrency_as_an_option(template: Template) -> None:
    """A reservation guarantees the stop button capacity, but a new account's concurrency quota
    refuses reservations outright: so each cancel function reserves only when the
    ReservedConcurrency parameter asks for it (default 0: none), and nothing else reserves."""
    cancels = cancel_functions(template)
    assert cancels >= {  # and every registered dialect's (test_dialect_registry)
        "SessionCancelFunction",
        "ResponseCancelFunction",
        "OmniCancelFunction",
        "LlmCancelFunction",
        "TasksCancelFunction",
        "AdminCancelFunction",
        "ChatCancelFunction",
    }
    for fid in cancels:
        served = [r for r in template.routes if r.function_id == fid]
        assert all(is_cancel(r.path, r.method) for r in served), fid  # cancels only
        assert template.function(fid).properties.get("ReservedConcurrentExecutions") == RESERVATION, fid
    for fid, function in template.functions.items():
        assert function.properties.get("ReservedConcurrentExecutions") in (None, RESERVATION), fid
        assert function.reserved_concurrency is None, fid  # the default reserves nothing (locally too)
    assert template.document["Parameters"]["ReservedConcurrency"]["Default"] == 0
    reserving = Template(template.document, template.path, {"ReservedConcurrency": "20"})
    assert reserving.function("SessionCancelFunction").reserved_concurrency == 20


def test_every_cancel_function_alarms_on_errors_throttles_and_5xx_answers(template: Template) -> None:
    by_function: dict[str, set[str]] = {}
    by_service = set()
    for a in alarms(template):
        dims = {d["Name"]: d["Value"] for d in a.get("Dimensions", [])}
        if "FunctionName" in dims:
            by_function.setdefault(dims["FunctionName"].get("Ref"), set()).add(a["MetricName"])
        if "service" in dims:
            by_service.add((dims["service"], a["MetricName"]))
    for fid in cancel_functions(template) | {"CancelConsumerFunction"}:
        assert {"Errors", "Throttles"} <= by_function.get(fid, set()), fid
    for fid in cancel_functions(template):
        env = template.function(fid).properties["Environment"]["Variables"]
        service = env["POWERTOOLS_SERVICE_NAME"]
        assert {(service, "CancelStatus500"), (service, "CancelStatus503")} <= by_service, fid


def test_every_queue_has_a_dead_letter_queue_with_an_alarm(template: Template) -> None:
    dlqs = {q.dlq_id for q in template.queues.values() if q.dlq_id} | on_failure_queues(template)
    assert on_failure_queues(template) == {"TurnEventsDLQ"}
    for qid, queue in template.queues.items():
        assert queue.dlq_id or qid in dlqs, f"{qid} has no DLQ"
    alarmed = {
        d["Value"]["Fn::GetAtt"][0]
        for a in alarms(template)
        for d in a.get("Dimensions", [])
        if d["Name"] == "QueueName"
    }
    assert dlqs <= alarmed
