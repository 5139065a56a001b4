"""The least-privilege test's parts: calls to IAM actions, the recorder's attribution to
functions, and the template's policies read as grants (tests/e2e/test_iam_coverage_e2e.py puts
them together over the whole e2e tier)."""

from __future__ import annotations

import copy
import threading
from pathlib import Path
from typing import Any

from turnstop_local import aws_calls, iam
from turnstop_local.template import LocalResources, QueueRef, Template


def test_a_transaction_needs_each_item_s_own_action_and_a_query_its_index() -> None:
    items = [
        {"Put": {"TableName": "t"}},
        {"Update": {"TableName": "t"}},
        {"Delete": {"TableName": "t"}},
        {"ConditionCheck": {"TableName": "t"}},
    ]
    assert aws_calls.required_actions("dynamodb", "TransactWriteItems", {"TransactItems": items}) == [
        ("dynamodb:PutItem", "table/t"),
        ("dynamodb:UpdateItem", "table/t"),
        ("dynamodb:DeleteItem", "table/t"),
        ("dynamodb:ConditionCheckItem", "table/t"),
    ]
    assert aws_calls.required_actions("dynamodb", "Query", {"TableName": "t", "IndexName": "gsi4"}) == [
        ("dynamodb:Query", "table/t/index/gsi4")
    ]
    assert aws_calls.required_actions("dynamodb", "Query", {"TableName": "t"}) == [("dynamodb:Query", "table/t")]
    assert aws_calls.required_actions("dynamodb", "BatchWriteItem", {"RequestItems": {"t": []}}) == [
        ("dynamodb:BatchWriteItem", "table/t")
    ]
    assert aws_calls.required_actions("sqs", "SendMessageBatch", {"QueueUrl": "u"}) == [
        ("sqs:SendMessage", "queue-url/u")
    ]
    assert aws_calls.required_actions("events", "PutEvents", {"Entries": [{"Source": "x"}]}) == [
        ("events:PutEvents", "event-bus/default")
    ]


class FakeOperation:
    def __init__(self, service: str, name: str) -> None:
        self.name = name
        self.service_model = type("ServiceModel", (), {"service_name": service})()


def test_calls_are_recorded_for_the_function_whose_python_thread_or_child_thread_makes_them(tmp_path: Path) -> None:
    resources = LocalResources(
        tables={"TurnTable": "turnstop-local"}, queues={"TurnQueue": QueueRef("http://q/turns", "arn", "turns")}
    )
    recorder = aws_calls.Recorder(tmp_path / "calls.jsonl", resources)
    start = aws_calls._inherit_on_start(threading.Thread.start)

    def child() -> None:
        recorder.hook(FakeOperation("sqs", "SendMessage"), {"QueueUrl": "http://q/turns"})

    def handler() -> None:
        recorder.hook(FakeOperation("dynamodb", "GetItem"), {"TableName": "turnstop-local"})
        recorder.hook(FakeOperation("dynamodb", "GetItem"), {"TableName": "turnstop-local"})  # once in the file
        thread = threading.Thread(target=child, name="turn-1")
        start(thread)
        thread.join()

    # the local runtime's own call on the function's thread (an SQS mapping deleting its messages)
    runtime: dict[str, Any] = {"__name__": "turnstop_local.sqs", "recorder": recorder, "FakeOperation": FakeOperation}
    exec(
        "def runtime_code():\n    recorder.hook(FakeOperation('sqs', 'DeleteMessage'), {'QueueUrl': 'http://q/turns'})",
        runtime,
    )
    runtime_code = runtime["runtime_code"]

    def handler_then_runtime() -> None:
        handler()
        runtime_code()

    pool_thread = threading.Thread(target=handler_then_runtime, name="fn-WorkerFunction_0")
    pool_thread.start()
    pool_thread.join()
    recorder.hook(FakeOperation("dynamodb", "Scan"), {"TableName": "turnstop-local"})  # the runtime's: not recorded

    lines = (tmp_path / "calls.jsonl").read_text().splitlines()
    assert len(lines) == 2
    assert aws_calls.read(tmp_path / "calls.jsonl") == {
        ("WorkerFunction", "dynamodb:GetItem", "table/TurnTable"),
        ("WorkerFunction", "sqs:SendMessage", "queue/TurnQueue"),
    }


def with_policies(template: Template, function_id: str, policies: list[Any]) -> Template:
    document = copy.deepcopy(template.document)
    document["Resources"][function_id]["Properties"]["Policies"] = policies
    return Template(document, template.path)


def test_the_session_cancel_s_old_policy_is_caught_missing_condition_check_item(template: Template) -> None:
    """What the template granted before the IAM test existed: a cancel by Idempotency-Key
    (a transaction with a ConditionCheck) would have answered 500 in AWS."""
    old = with_policies(
        template,
        "SessionCancelFunction",
        [
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["dynamodb:UpdateItem", "dynamodb:GetItem", "dynamodb:PutItem"],
                        "Resource": {"Fn::GetAtt": ["TurnTable", "Arn"]},
                    }
                ]
            }
        ],
    )
    calls = {
        ("SessionCancelFunction", "dynamodb:UpdateItem", "table/TurnTable"),
        ("SessionCancelFunction", "dynamodb:ConditionCheckItem", "table/TurnTable"),
    }
    assert iam.unallowed(old, calls) == [
        "SessionCancelFunction calls dynamodb:ConditionCheckItem on table/TurnTable, which its policy does not allow"
    ]
    assert iam.unallowed(template, calls) == []


def test_a_sam_policy_template_is_read_as_its_grants_and_reported(template: Template) -> None:
    crud = with_policies(template, "WorkerFunction", [{"DynamoDBCrudPolicy": {"TableName": {"Ref": "TurnTable"}}}])
    grants = iam.function_grants(crud, "WorkerFunction")
    assert grants.problems
    assert iam.allows(grants, "dynamodb:Query", "table/TurnTable/index/gsi2")
    assert iam.unused(crud, set(), {})  # everything it grants is more than any path uses


def test_every_function_s_policy_is_plain_statements_on_resources_by_name(template: Template) -> None:
    """No SAM policy templates, wildcards or conditions: what the IAM coverage test can check (a
    deployment option's policy under ``!If`` is read as granted: the model keys' secrets, named by
    a parameter)."""
    problems = [p for fid in sorted(template.functions) for p in iam.function_grants(template, fid).problems]
    assert problems == []


def test_the_model_routes_grants_bedrock_by_model_and_secrets_and_a_vpc_only_when_configured(
    template: Template,
) -> None:
    worker = iam.function_grants(template, "WorkerFunction")
    bedrock = "bedrock:InvokeModelWithResponseStream"
    assert iam.allows(worker, bedrock, "foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0")
    assert iam.allows(worker, bedrock, "inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0")
    assert not iam.allows(worker, "bedrock:InvokeModel", "foundation-model/x")  # only the streaming call
    # the key secrets: granted only by a deployment that names them, so never reported as unused
    # by the e2e tier (which names none)
    assert ("secretsmanager:GetSecretValue", "parameter/ModelSecretArns") in worker.conditional
    assert not any("GetSecretValue" in line for line in iam.unused(template, set(), {}))
    # a cancel function never calls a model
    cancel = iam.function_grants(template, "SessionCancelFunction")
    assert not iam.allows(cancel, bedrock, "foundation-model/x")
