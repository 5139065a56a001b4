"""The local runtime reads template.yaml as the single source of truth (turnstop_local.template)."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from tests.conftest import ROOT
from turnstop_local.template import LocalResources, QueueRef, Route, Template, TemplateError, load_yaml


@pytest.fixture(scope="module")
def repo_template() -> Template:
    return Template.load(ROOT / "template.yaml")


def test_short_tags_load_as_long_form(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        dedent(
            """
            A: !Ref X
            B: !GetAtt Res.Arn
            C: !Sub "${X}-y"
            D: !Join [",", [a, !Ref Y]]
            E: !If [Cond, 1, 2]
            F: !GetAtt [Res, QueueName]
            """
        )
    )
    assert load_yaml(path) == {
        "A": {"Ref": "X"},
        "B": {"Fn::GetAtt": ["Res", "Arn"]},
        "C": {"Fn::Sub": "${X}-y"},
        "D": {"Fn::Join": [",", ["a", {"Ref": "Y"}]]},
        "E": {"Fn::If": ["Cond", 1, 2]},
        "F": {"Fn::GetAtt": ["Res", "QueueName"]},
    }


def test_repo_http_routes_come_from_httpapi_events(repo_template: Template) -> None:
    http = {r.route_key: r for r in repo_template.routes if not r.streaming}
    cancel = http["POST /v1/sessions/{id}/responses/{rid}/cancel"]
    assert cancel.function_id == "SessionCancelFunction"
    # The HttpApi's DefaultAuthorizer applies to every HttpApi route that does not opt out; only
    # the cookie API (chat and its sign-in) opts out: its functions resolve the session cookie;
    # and the worker API: its function checks the remote route's worker key.
    opted_out = {key for key, r in http.items() if r.authorizer is None}
    assert opted_out and all(key.split(" ", 1)[1].startswith(("/chat", "/auth/", "/v1/workers/")) for key in opted_out)
    assert all(r.authorizer == "TurnstopAuthorizer" for key, r in http.items() if key not in opted_out)
    authorizer = repo_template.authorizers["TurnstopAuthorizer"]
    assert authorizer.function_id == "AuthorizerFunction"
    assert authorizer.simple_responses and authorizer.payload_format_version == "2.0"
    assert authorizer.identity_sources == []


def test_repo_streaming_routes_come_from_metadata(repo_template: Template) -> None:
    streaming = [r for r in repo_template.routes if r.streaming]
    assert {r.route_key for r in streaming} >= {"POST /v1/sessions/{id}/messages", "GET /v1/responses/{rid}/events"}
    assert "SessionsStreamFunction" in {r.function_id for r in streaming}
    assert all(r.authorizer is None for r in streaming)
    assert repo_template.function("SessionsStreamFunction").stream_handler == "app.stream_handler"


def test_repo_sqs_mapping_and_queues(repo_template: Template) -> None:
    sources = {s.function_id: s for s in repo_template.sqs_event_sources}
    assert {f: s.queue_id for f, s in sources.items()} == {
        "WorkerFunction": "TurnQueue",
        "CancelConsumerFunction": "CancelQueue",
        "TaskCallbackFunction": "CallbackQueue",
    }
    for source in sources.values():
        assert source.report_batch_item_failures
        queue = repo_template.queues[source.queue_id]
        assert queue.dlq_id and queue.max_receive_count  # every queue has a DLQ
        # Lambda refuses a mapping whose queue hides messages for less than the function may run.
        assert queue.visibility_timeout >= repo_template.function(source.function_id).timeout


def test_repo_table_spec_matches_template(repo_template: Template) -> None:
    props = repo_template.resources["TurnTable"]["Properties"]
    spec = repo_template.table_spec("TurnTable")
    assert spec.kwargs["KeySchema"] == props["KeySchema"]
    assert spec.kwargs["AttributeDefinitions"] == props["AttributeDefinitions"]
    assert [g["IndexName"] for g in spec.kwargs["GlobalSecondaryIndexes"]] == [
        g["IndexName"] for g in props["GlobalSecondaryIndexes"]
    ]
    assert spec.kwargs["BillingMode"] == "PAY_PER_REQUEST"
    assert spec.ttl_attribute == props["TimeToLiveSpecification"]["AttributeName"]


def test_repo_functions_get_globals_and_the_layer(repo_template: Template) -> None:
    for function in repo_template.functions.values():
        assert "TURNSTOP_TABLE" in function.environment  # Globals.Function environment merged
        assert repo_template.layer_paths(function) == [ROOT / "layers" / "turnstop"]
    assert repo_template.function("SessionCancelFunction").reserved_concurrency is None  # ReservedConcurrency: 0
    assert repo_template.function("SessionCancelFunction").timeout == 10
    assert repo_template.function("SessionsApiFunction").timeout == 29  # from Globals


def test_repo_environment_resolves_to_local_resources(repo_template: Template) -> None:
    resources = LocalResources(
        tables={"TurnTable": "local-table"},
        queues={"TurnQueue": QueueRef("http://sqs.local/123/q", "arn:aws:sqs:us-east-1:123:q", "q")},
    )
    env = repo_template.function_environment(
        repo_template.function("WorkerFunction"), resources, environ={"TURNSTOP_SCRIPTED_STEP_MS": "0"}
    )
    assert env["TURNSTOP_TABLE"] == "local-table"
    assert env["TURNSTOP_TURN_QUEUE_URL"] == "http://sqs.local/123/q"
    assert env["TURNSTOP_GRACE_SECONDS"] == str(repo_template.parameters["SessionsGraceSeconds"])
    assert env["TURNSTOP_SCRIPTED_STEP_MS"] == "0"  # the local process overrides TURNSTOP_* values
    assert env["POWERTOOLS_SERVICE_NAME"] == "worker"


MINI = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage: {Type: String, Default: dev}
Globals:
  Function:
    Timeout: 7
    Layers: [!Ref Lib]
    Environment:
      Variables:
        SHARED: global
        OVERRIDDEN: global
Resources:
  Lib:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: lib/}
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Gate
        Authorizers:
          Gate:
            FunctionArn: !GetAtt GateFunction.Arn
            AuthorizerPayloadFormatVersion: "2.0"
            EnableSimpleResponses: true
            Identity: {Headers: [Authorization]}
  Queue:
    Type: AWS::SQS::Queue
    Properties: {VisibilityTimeout: 5}
  GateFunction:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: fn/gate/, Handler: app.handler}
  OneFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn/one/
      Handler: app.handler
      Environment:
        Variables:
          OVERRIDDEN: local
          NAME: !Sub "svc-${Stage}-${Queue.QueueName}"
          ARN: !GetAtt Queue.Arn
      Events:
        Open:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Path: /open, Method: get, Auth: {Authorizer: NONE}}
        Proxy:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Path: "/files/{proxy+}", Method: ANY}
        Work:
          Type: SQS
          Properties: {Queue: !GetAtt Queue.Arn, BatchSize: 25, MaximumBatchingWindowInSeconds: 2}
"""


def test_globals_merge_and_intrinsics(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text(MINI)
    template = Template.load(tmp_path / "template.yaml")
    one = template.function("OneFunction")
    assert one.timeout == 7
    assert template.layer_paths(one) == [(tmp_path / "lib").resolve()]
    resources = LocalResources(queues={"Queue": QueueRef("http://q", "arn:aws:sqs:us-east-1:1:p-Queue", "p-Queue")})
    env = template.function_environment(one, resources, environ={})
    assert env == {
        "SHARED": "global",
        "OVERRIDDEN": "local",
        "NAME": "svc-dev-p-Queue",
        "ARN": "arn:aws:sqs:us-east-1:1:p-Queue",
    }
    routes = {r.route_key: r for r in template.routes}
    assert routes["GET /open"].authorizer is None  # Auth.Authorizer: NONE opts out
    assert routes["ANY /files/{proxy+}"].authorizer == "Gate"
    assert template.authorizers["Gate"].identity_sources == ["$request.header.Authorization"]
    (source,) = template.sqs_event_sources
    assert (source.batch_size, source.maximum_batching_window, source.report_batch_item_failures) == (25, 2, False)


def test_duplicate_route_is_rejected(tmp_path: Path) -> None:
    text = MINI.replace("Path: /open, Method: get", 'Path: "/files/{proxy+}", Method: ANY')
    (tmp_path / "template.yaml").write_text(text)
    with pytest.raises(TemplateError, match="declared by both|ANY /files"):
        Template.load(tmp_path / "template.yaml")


def test_route_key() -> None:
    assert Route("POST", "/v1/x/{id}", "F").route_key == "POST /v1/x/{id}"
    assert Route("ANY", "$default", "F").route_key == "$default"
