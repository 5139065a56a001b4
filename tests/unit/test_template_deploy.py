"""What a first deploy to a new account needs from template.yaml (issue 20): a current arm64
runtime, data that outlives the stack, logs that expire, and alarms on the paths that matter,
to an SNS topic of the deployer's or the stack's own."""

from __future__ import annotations

from typing import Any

from turnstop_local.template import Template

ALARM_ACTIONS = [{"Fn::If": ["HasAlarmTopicArn", {"Ref": "AlarmTopicArn"}, {"Ref": "AlarmTopic"}]}]


def of_type(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template.resources.items() if r.get("Type") == kind}


def test_every_function_and_the_layer_run_python_3_13_on_arm64(template: Template) -> None:
    for fid, function in template.functions.items():
        assert function.properties["Runtime"] == "python3.13", fid
        assert function.properties["Architectures"] == ["arm64"], fid
    layer = template.resources["TurnstopLayer"]
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Metadata"] == {"BuildMethod": "python3.13", "BuildArchitecture": "arm64"}


def test_the_table_outlives_the_stack_and_uses_the_aws_owned_key_unless_given_one(template: Template) -> None:
    table = template.resources["TurnTable"]
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
    props = table["Properties"]
    assert props["DeletionProtectionEnabled"] is True
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    condition, with_key, default = props["SSESpecification"]["Fn::If"]
    assert condition == "HasTableKmsKey" and default == {"Ref": "AWS::NoValue"}
    assert with_key == {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": {"Ref": "TableKmsKeyArn"}}
    assert {t["Key"] for t in props["Tags"]} == {"project", "stage"}


def test_every_function_logs_json_to_a_group_that_expires(template: Template) -> None:
    groups = {
        r["Properties"]["LogGroupName"]["Fn::Sub"]: r["Properties"]
        for r in of_type(template, "AWS::Logs::LogGroup").values()
    }
    for fid, function in template.functions.items():
        assert function.properties["LoggingConfig"] == {"LogFormat": "JSON"}, fid
        assert function.properties["Tags"]["project"] == "turnstop", fid
        group = groups.get(f"/aws/lambda/${{{fid}}}")
        assert group is not None, fid
        assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}, fid
    assert template.parameters["LogRetentionDays"] == 30
    api = template.resources["HttpApi"]["Properties"]
    assert api["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogs", "Arn"]}
    assert "authorization" not in api["AccessLogSettings"]["Format"].lower()  # never a key


def test_alarms_cover_workers_streams_queues_and_the_api_and_go_to_the_chosen_topic(template: Template) -> None:
    alarms = of_type(template, "AWS::CloudWatch::Alarm")
    covered: set[tuple[str, str | None]] = set()
    for logical, alarm in alarms.items():
        props = alarm["Properties"]
        assert props["AlarmActions"] == ALARM_ACTIONS, logical
        for d in props.get("Dimensions", []):
            value = d["Value"]
            if isinstance(value, str):
                target = value
            else:
                target = value.get("Ref") or (value.get("Fn::GetAtt") or [value.get("Fn::Sub")])[0]
            covered.add((props["MetricName"], target))
        if not props.get("Dimensions"):
            covered.add((props["MetricName"], None))
    for fid in ("WorkerFunction", "SessionsStreamFunction", "LlmApiFunction", "ChatStreamFunction"):
        assert ("Errors", fid) in covered, fid
    for queue in ("TurnQueue", "CancelQueue"):
        assert ("ApproximateAgeOfOldestMessage", queue) in covered, queue
    assert ("5xx", "HttpApi") in covered
    assert ("5XXError", "turnstop-${Stage}-stream") in covered  # the streaming REST API
    assert ("ApiThrottled", None) in covered
    assert template.resources["AlarmTopic"]["Condition"] == "CreateAlarmTopic"
    assert template.parameters["AlarmTopicArn"] == ""
