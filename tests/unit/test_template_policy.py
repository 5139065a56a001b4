"""Rules the template must keep as dialects are added: every cancel endpoint has its own
function with reserved concurrency and alarms, and every queue has a dead-letter queue."""

from __future__ import annotations

from typing import Any

from turnstop_local.template import Template


def cancel_functions(template: Template) -> set[str]:
    """Functions serving a cancel endpoint: a path ending in /cancel, or the omni DELETE."""
    return {
        r.function_id
        for r in template.routes
        if r.path.endswith("/cancel") or (r.method == "DELETE" and "/responses/" in r.path)
    }


def alarms(template: Template) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template.resources.values() if r.get("Type") == "AWS::CloudWatch::Alarm"]


def test_every_cancel_endpoint_is_its_own_function_with_reserved_concurrency(template: Template) -> None:
    cancels = cancel_functions(template)
    assert cancels == {
        "SessionCancelFunction",
        "ResponseCancelFunction",
        "OmniCancelFunction",
        "LlmCancelFunction",
        "TasksCancelFunction",
        "ChatCancelFunction",
    }
    for fid in cancels:
        served = [r for r in template.routes if r.function_id == fid]
        assert all(r.path.endswith("/cancel") or r.method == "DELETE" for r in served), fid  # cancels only
        assert template.function(fid).properties.get("ReservedConcurrentExecutions"), fid


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
    dlqs = {q.dlq_id for q in template.queues.values() if q.dlq_id}
    for qid, queue in template.queues.items():
        assert queue.dlq_id or qid in dlqs, f"{qid} has no DLQ"
    alarmed = {
        d["Value"]["Fn::GetAtt"][0]
        for a in alarms(template)
        for d in a.get("Dimensions", [])
        if d["Name"] == "QueueName"
    }
    assert dlqs <= alarmed
