"""The local runtime's DynamoDB Streams event-source mappings on a tiny fake repo (moto's server):
order, batches, filters, partial batch responses, bisection, retries and the on-failure queue;
and the filter syntax on its own."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.unit.test_local_runtime_live import calls, wait_for
from turnstop_local.event_filters import matches
from turnstop_local.runtime import LocalRuntime

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Timeout: 5
    Environment:
      Variables:
        FAKE_LOG: __LOG__
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      StreamSpecification: {StreamViewType: NEW_AND_OLD_IMAGES}
  Pairs:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}, {AttributeName: sk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}, {AttributeName: sk, KeyType: RANGE}]
      StreamSpecification: {StreamViewType: NEW_AND_OLD_IMAGES}
  FailedBatches:
    Type: AWS::SQS::Queue
  KeepFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/keep/
      Handler: app.handler
      Events:
        Changes:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt Table.StreamArn
            StartingPosition: TRIM_HORIZON
            BatchSize: 4
            FunctionResponseTypes: [ReportBatchItemFailures]
            FilterCriteria:
              Filters:
                - Pattern: '{"dynamodb": {"NewImage": {"kind": {"S": ["keep", "flaky"]}}}}'
  PoisonFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/poison/
      Handler: app.handler
      Events:
        Changes:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt Table.StreamArn
            StartingPosition: TRIM_HORIZON
            BatchSize: 10
            MaximumBatchingWindowInSeconds: 1
            BisectBatchOnFunctionError: true
            MaximumRetryAttempts: 1
            DestinationConfig:
              OnFailure: {Type: SQS, Destination: !GetAtt FailedBatches.Arn}
            FilterCriteria:
              Filters:
                - Pattern: '{"dynamodb": {"NewImage": {"kind": {"S": [{"prefix": "p-"}]}}}}'
"""

FUNCTIONS = {
    "keep": """
import json, os

def handler(event, context):
    seen = open(os.environ["FAKE_LOG"]).read() if os.path.exists(os.environ["FAKE_LOG"]) else ""
    pks = [r["dynamodb"]["Keys"]["pk"]["S"] for r in event["Records"]]
    with open(os.environ["FAKE_LOG"], "a") as f:
        f.write(json.dumps({"fn": "keep", "pks": pks, "arn": event["Records"][0]["eventSourceARN"]}) + "\\n")
    for r in event["Records"]:
        if r["dynamodb"]["NewImage"]["kind"]["S"] == "flaky" and '"flaky-1"' not in seen:
            return {"batchItemFailures": [{"itemIdentifier": r["dynamodb"]["SequenceNumber"]}]}
    return {"batchItemFailures": []}
""",
    "poison": """
import json, os

def handler(event, context):
    pks = [r["dynamodb"]["Keys"]["pk"]["S"] for r in event["Records"]]
    with open(os.environ["FAKE_LOG"], "a") as f:
        f.write(json.dumps({"fn": "poison", "pks": pks}) + "\\n")
    if "poison" in pks:
        raise RuntimeError("this record cannot be handled")
""",
}


@pytest.fixture(scope="module")
def streams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalRuntime, Path]]:
    root = tmp_path_factory.mktemp("stream-repo")
    log = root / "calls.jsonl"
    (root / "template.yaml").write_text(TEMPLATE.replace("__LOG__", str(log)))
    for name, code in FUNCTIONS.items():
        (root / "functions" / name).mkdir(parents=True)
        (root / "functions" / name / "app.py").write_text(code)
    saved = list(sys.path)
    prefix = f"s{uuid.uuid4().hex[:8]}-"
    runtime = LocalRuntime(
        root / "template.yaml", port=0, store_kind="moto", table_name=f"{prefix}table", prefix=prefix, write_state=False
    )
    with runtime:
        yield runtime, log
    sys.path[:] = saved


def put(runtime: LocalRuntime, pk: str, kind: str) -> None:
    ddb = boto3.client("dynamodb", endpoint_url=runtime.store.dynamodb_endpoint, region_name="us-east-1")
    ddb.put_item(TableName=runtime.table_name, Item={"pk": {"S": pk}, "kind": {"S": kind}})


def delivered(log: Path, fn: str) -> list[list[str]]:
    return [c["pks"] for c in calls(log) if c["fn"] == fn]


def test_records_come_in_order_in_batches_filtered_and_retried_from_the_failed_one(
    streams: tuple[LocalRuntime, Path],
) -> None:
    runtime, log = streams
    order = ["k-1", "k-2", "flaky-1", "k-3", "k-4", "k-5"]
    for pk in order[:3]:
        put(runtime, pk, "flaky" if pk.startswith("flaky") else "keep")
        put(runtime, f"drop-{pk}", "drop")  # matches no filter: never delivered
    for pk in order[3:]:
        put(runtime, pk, "keep")
    wait_for(lambda: "k-5" in sum(delivered(log, "keep"), []), what="every kept record delivered")
    batches = delivered(log, "keep")
    assert all(len(b) <= 4 for b in batches)
    flat = sum(batches, [])
    assert not any(pk.startswith("drop") for pk in flat)
    assert flat.count("flaky-1") == 2 and flat.count("k-1") == 1 and flat.count("k-2") == 1  # retried from it
    firsts = sorted(set(flat), key=flat.index)
    assert firsts == order  # in the order they were written
    assert all(c["arn"].startswith("arn:aws:dynamodb:") for c in calls(log) if c["fn"] == "keep")


def test_a_poison_record_is_bisected_out_retried_then_sent_to_the_failure_queue(
    streams: tuple[LocalRuntime, Path],
) -> None:
    runtime, log = streams
    for pk in ("p-ok-a", "poison", "p-ok-b"):
        put(runtime, pk, "p-" + pk)
    sqs = boto3.client("sqs", endpoint_url=runtime.store.sqs_endpoint, region_name="us-east-1")
    url = runtime.resources.queues["FailedBatches"].url  # type: ignore[union-attr]

    def failure() -> Any:
        got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", [])
        return json.loads(got[0]["Body"]) if got else None

    record = wait_for(failure, timeout=30, what="the on-failure record")
    info = record["DDBStreamBatchInfo"]
    assert info["batchSize"] == 1 and info["startSequenceNumber"] == info["endSequenceNumber"]
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    batches = delivered(log, "poison")
    assert sum(b.count("poison") for b in batches) >= 2  # tried, bisected down, retried once
    flat = sum(batches, [])
    assert "p-ok-a" in flat and "p-ok-b" in flat  # the others went through


def test_a_failed_transaction_on_moto_puts_back_what_it_touched_and_leaves_no_stream_records(
    streams: tuple[LocalRuntime, Path],
) -> None:
    runtime, _ = streams
    ddb = boto3.client("dynamodb", endpoint_url=runtime.store.dynamodb_endpoint, region_name="us-east-1")
    table = runtime.resources.tables["Pairs"]  # type: ignore[union-attr]
    ddb.put_item(TableName=table, Item={"pk": {"S": "a"}, "sk": {"S": "1"}, "v": {"N": "1"}})
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    reader = boto3.client("dynamodbstreams", endpoint_url=runtime.store.dynamodb_endpoint, region_name="us-east-1")
    shard = reader.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    it = reader.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]
    with pytest.raises(ddb.exceptions.TransactionCanceledException):
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": {"pk": {"S": "b"}, "sk": {"S": "1"}}}},
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}},
                        "UpdateExpression": "SET v = :v",
                        "ExpressionAttributeValues": {":v": {"N": "2"}},
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": {"pk": {"S": "c"}, "sk": {"S": "1"}},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )
    assert "Item" not in ddb.get_item(TableName=table, Key={"pk": {"S": "b"}, "sk": {"S": "1"}})
    assert ddb.get_item(TableName=table, Key={"pk": {"S": "a"}, "sk": {"S": "1"}})["Item"]["v"] == {"N": "1"}
    ddb.put_item(TableName=table, Item={"pk": {"S": "after"}, "sk": {"S": "1"}})
    got = reader.get_records(ShardIterator=it)["Records"]  # the same iterator still reads the stream
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in got] == ["after"]


@pytest.mark.parametrize(
    ("pattern", "record", "expected"),
    [
        ({"a": {"b": ["x", "y"]}}, {"a": {"b": "y"}}, True),
        ({"a": {"b": ["x"]}}, {"a": {"b": "z"}}, False),
        ({"a": {"b": ["x"]}}, {"a": {}}, False),
        ({"a": [{"exists": False}]}, {}, True),
        ({"a": [{"exists": True}]}, {}, False),
        ({"a": [{"prefix": "ab"}]}, {"a": "abc"}, True),
        ({"a": [{"anything-but": ["x"]}]}, {"a": "y"}, True),
        ({"a": [{"anything-but": "x"}]}, {"a": "x"}, False),
        ({"a": [{"numeric": [">", 1, "<=", 3]}]}, {"a": "3"}, True),
        ({"a": [{"numeric": [">", 1]}]}, {"a": "0"}, False),
    ],
)
def test_event_filter_patterns(pattern: dict[str, Any], record: dict[str, Any], expected: bool) -> None:
    assert matches(pattern, record) is expected
