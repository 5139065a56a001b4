"""Scheduled functions in the local runtime: rate(...) events invoke on a timer."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from turnstop_local.schedules import Schedules
from turnstop_local.template import Template, TemplateError, rate_seconds

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  TickFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/tick/
      Handler: app.handler
      Events:
        Every:
          Type: Schedule
          Properties: {Schedule: rate(1 minute)}
        Paused:
          Type: Schedule
          Properties: {Schedule: rate(2 hours), Enabled: false}
"""


def test_rate_expressions_become_periods() -> None:
    assert rate_seconds("rate(1 minute)") == 60
    assert rate_seconds("rate(5 minutes)") == 300
    assert rate_seconds("rate(2 hours)") == 7200
    with pytest.raises(TemplateError):
        rate_seconds("cron(0 12 * * ? *)")


def test_the_template_lists_its_schedules(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    sources = Template.load(tmp_path / "template.yaml").schedule_sources
    assert [(s.function_id, s.name, s.period_seconds, s.enabled) for s in sources] == [
        ("TickFunction", "Every", 60, True),
        ("TickFunction", "Paused", 7200, False),
    ]


def test_enabled_schedules_invoke_their_function_with_a_scheduled_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    monkeypatch.setenv("TURNSTOP_LOCAL_SCHEDULE_SCALE", "600")  # 60 s → 0.1 s
    seen: list[dict[str, Any]] = []
    two = threading.Event()

    def invoke(event: dict[str, Any]) -> None:
        seen.append(event)
        if len(seen) >= 2:
            two.set()

    host = SimpleNamespace(
        get=lambda fid: SimpleNamespace(invoke=invoke),
        resources=SimpleNamespace(region="us-east-1", account_id="123456789012"),
    )
    schedules = Schedules(Template.load(tmp_path / "template.yaml"), host).start()  # type: ignore[arg-type]
    try:
        assert two.wait(timeout=20)
    finally:
        schedules.stop()
    assert not any(t.is_alive() for t in schedules._threads)  # stopped: no further runs
    assert seen[0]["detail-type"] == "Scheduled Event" and seen[0]["source"] == "aws.events"
    assert seen[0]["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/TickFunction-Every"]


def test_a_zero_rate_or_a_bad_scale_cannot_spin_or_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    from turnstop_local.schedules import _scale

    with pytest.raises(TemplateError):
        rate_seconds("rate(0 minutes)")
    assert _scale("fast") == 1.0 and _scale("") == 1.0 and _scale("0") == 1.0 and _scale("60") == 60.0
