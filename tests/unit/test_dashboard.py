"""The CloudWatch dashboard in template.yaml graphs what the code emits: every metric of the
turnstop namespace it names exists under that name and with those dimensions, and every queue
and function it names is the template's."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.unit.functions_harness import load_event
from turnstop.turn_events import record_metrics, terminal_event
from turnstop_local.template import Template

NAMESPACE = "turnstop"
SEARCH = re.compile(r"SEARCH\('\{([^}]*)\} MetricName=\"(\w+)\"")
SUB = re.compile(r"\$\{(?!!)([^}]+)\}")


def dashboard(template: Template) -> tuple[dict[str, Any], set[str]]:
    """The dashboard's JSON as CloudFormation renders it, and the names its ${...} refer to."""
    body = template.resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    refs = set(SUB.findall(body))
    return json.loads(SUB.sub("x", body).replace("${!", "${")), refs


def referenced(board: dict[str, Any]) -> list[tuple[str, frozenset[str], dict[str, str]]]:
    """(metric name, its dimension names, the dimension values given) of the namespace's metrics."""
    out: list[tuple[str, frozenset[str], dict[str, str]]] = []
    for widget in board["widgets"]:
        for row in widget["properties"].get("metrics", []):
            if isinstance(row[0], dict):
                for schema, name in SEARCH.findall(row[0]["expression"]):
                    namespace, *dims = [d.strip() for d in schema.split(",")]
                    if namespace == NAMESPACE:
                        out.append((name, frozenset(dims), {}))
            elif row[0] == NAMESPACE:
                pairs = [p for p in row[2:] if isinstance(p, str)]
                given = dict(zip(pairs[::2], pairs[1::2], strict=True))
                out.append((row[1], frozenset(given), given))
    return out


def template_document() -> dict[str, Any]:
    from turnstop_local.template import load_yaml

    return load_yaml(ROOT / "template.yaml")


def emitted(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> set[tuple[str, frozenset[str]]]:
    """What the code emits: each name (a prefix where the code adds a suffix) with its dimensions."""
    from aws_lambda_powertools import Metrics

    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "turn-events")
    metrics = Metrics(namespace=NAMESPACE)
    capsys.readouterr()
    for record in load_event("turn_events")["Records"]:
        event = terminal_event(record)
        assert event is not None
        record_metrics(metrics, event)
    metrics.flush_metrics()
    found: set[tuple[str, frozenset[str]]] = set()
    for line in capsys.readouterr().out.splitlines():
        for directive in json.loads(line)["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                found.add((metric["Name"], frozenset(directive["Dimensions"][0])))
    # what the template's metric filters count from logs (no dimensions)
    for resource in template_document()["Resources"].values():
        if resource.get("Type") == "AWS::Logs::MetricFilter":
            for metric in resource["Properties"]["MetricTransformations"]:
                found.add((metric["MetricName"], frozenset()))
    # what functions and the layer add to their function's Metrics: dimension ``service``
    for path in [*ROOT.glob("functions/*/app.py"), *ROOT.glob("layers/turnstop/turnstop/**/*.py")]:
        for name in re.findall(r"add_metric\(name=f?\"(\w+)", path.read_text()):
            found.add((name, frozenset({"service"})))
    return found


def test_every_turnstop_metric_on_the_dashboard_is_one_the_code_emits(
    template: Template, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    board, _ = dashboard(template)
    emits = emitted(capsys, monkeypatch)
    names = [name for name, _, _ in referenced(board)]
    assert {"Cancels", "CancelLatency", "TurnsEnded", "CancelStatus500", "CancelStatus503", "SweptTurns"} <= set(names)
    missing = [
        (name, sorted(dims))
        for name, dims, _ in referenced(board)
        if not any(name.startswith(e) and dims == d for e, d in emits)
    ]
    assert missing == []


def test_the_services_the_dashboard_names_are_the_functions_service_names(template: Template) -> None:
    board, _ = dashboard(template)
    services = {f.environment.get("POWERTOOLS_SERVICE_NAME") for f in template.functions.values()}
    named = {given["service"] for _, _, given in referenced(board) if "service" in given}
    assert named and named <= services


def test_the_dashboard_names_only_the_templates_resources_and_every_dlq(template: Template) -> None:
    _, refs = dashboard(template)
    logical = {ref.split(".")[0] for ref in refs if not ref.startswith("AWS::")}
    assert logical <= set(template.resources) | {"Stage"}
    dlqs = {name for name, r in template.resources.items() if r.get("Type") == "AWS::SQS::Queue" and "DLQ" in name}
    assert {f"{q}.QueueName" for q in dlqs} <= refs
    assert "WorkerFunction" in refs


def test_the_dashboards_address_is_an_output(template: Template) -> None:
    url = template.document["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"]
    assert url.startswith("https://${AWS::Region}.console.aws.amazon.com/cloudwatch/")
    assert url.endswith("#dashboards:name=${Dashboard}")


AWS_ROW = re.compile(r'\["(AWS/\w+)", "(\w+)", "\w+", "([^"]+)"')
AWS_SEARCH = re.compile(r"SEARCH\('\{(AWS/\w+),[^}]*\} MetricName=\\\"(\w+)\\\"")


def dimension_on_dashboard(value: Any) -> str:
    """How a dimension's value reads in the dashboard's body: ``${X}``, ``${X.Attr}`` or the text."""
    if "Ref" in value:
        return "${" + str(value["Ref"]) + "}"
    if "Fn::GetAtt" in value:
        return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    return str(value["Fn::Sub"])


def test_every_alarm_is_on_the_dashboard(template: Template) -> None:
    """The dashboard kept in step with the alarms: what pages someone can be looked at there."""
    body = template.resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    rows = set(AWS_ROW.findall(body))
    searched = set(AWS_SEARCH.findall(body))
    board, _ = dashboard(template)
    ours = {name for name, _, _ in referenced(board)}
    missing = []
    for logical, resource in template.resources.items():
        if resource.get("Type") != "AWS::CloudWatch::Alarm":
            continue
        props = resource["Properties"]
        namespace, metric = props["Namespace"], props["MetricName"]
        if namespace == NAMESPACE:
            if metric not in ours:
                missing.append(logical)
            continue
        targets = {dimension_on_dashboard(d["Value"]) for d in props.get("Dimensions", [])}
        if (namespace, metric) in searched:
            continue
        if not any((namespace, metric, t) in rows for t in targets):
            missing.append(logical)
    assert missing == []
