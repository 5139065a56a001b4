"""`make deploy-local`: deploy template.yaml to MiniStack (a local AWS emulator) and cancel a turn there.

An optional deploy smoke tier, never part of `make test`
(docs/deploy.md#ministack-a-local-deploy-tier). It runs from a venv of its own (.venv-ministack:
ministack and aws-sam-translator, requirements-ministack.txt):

1. starts MiniStack on 127.0.0.1 (a free port) for the length of the run, with IAM enforced
   (AUTH=true: each function runs with its execution role's credentials);
2. reduces the SAM template to what an emulator can run (DROP_TYPES, reduce_template: each
   printed), zips every function and the layer (with its requirements, installed for this machine) into
   MiniStack's S3, translates the result with samtranslator (MiniStack has no SAM transform), and
   rewrites the HTTP API's OpenAPI Body as explicit routes (MiniStack's CloudFormation ignores it);
3. creates the stack through MiniStack's CloudFormation and waits for it;
4. stores an API key in the stack's table (the layer's own turnstop.auth.create_api_key), then
   through MiniStack's API Gateway: a bad key refused; a task started and cancelled by its cancel
   route, another cancelled through the cancel queue, an omni response cancelled, each followed
   until it reports cancelled; a session created and its cancel route answering; and one call to
   a streaming route, which is expected to fail (no Web Adapter layer) and only reported.

Exit 0 when every step passed; otherwise the step that failed and why.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from deploy_local_parts import (  # noqa: E402 - the script's own folder is on sys.path
    BUCKET,
    CACHE,
    PARAMETERS,
    REGION,
    ROOT,
    STACK,
    Failed,
    clients,
    explode_http_api,
    free_port,
    info,
    reduce_template,
    start_ministack,
    step,
    translate,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="leave MiniStack running at the end (Ctrl-C stops it)")
    parser.add_argument("--dump", metavar="FILE", help="also write the translated template to FILE")
    parser.add_argument("--timeout", type=int, default=600, help="seconds for the stack to be created")
    args = parser.parse_args()
    from samtranslator.yaml_helper import yaml_parse

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that MiniStack is stopped too
    CACHE.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = CACHE / "ministack.log"
    step(f"MiniStack on 127.0.0.1:{port} (log: .turnstop/ministack/ministack.log)")
    proc = start_ministack(port, log)
    try:
        return run(port, yaml_parse((ROOT / "template.yaml").read_text()), args)
    except Failed as exc:
        print(f"FAILED: {exc}", flush=True)
        return 1
    finally:
        if args.keep:
            print(f"MiniStack keeps running on http://127.0.0.1:{port}; Ctrl-C stops it", flush=True)
            try:
                proc.wait()
            except KeyboardInterrupt:
                pass
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def run(port: int, template: dict[str, Any], args: argparse.Namespace) -> int:
    aws = clients(port)
    step("reduce the template to what an emulator runs")
    for line in reduce_template(template, aws["s3"]):
        info(line)
    step("translate with samtranslator (MiniStack has no SAM transform)")
    cfn = translate(template)
    for line in explode_http_api(cfn):
        info(line)
    types: dict[str, int] = {}
    for res in cfn["Resources"].values():
        types[res["Type"]] = types.get(res["Type"], 0) + 1
    info(", ".join(f"{n} {t}" for t, n in sorted(types.items())))
    body = json.dumps(cfn)
    if args.dump:
        Path(args.dump).write_text(json.dumps(cfn, indent=1))
        info(f"the translated template: {args.dump}")
    step(f"create stack {STACK} in MiniStack's CloudFormation ({len(cfn['Resources'])} resources)")
    info("parameters: defaults, but " + ", ".join(f"{k}={v}" for k, v in PARAMETERS.items()))
    aws["s3"].put_object(Bucket=BUCKET, Key="template.json", Body=body.encode())
    aws["cloudformation"].create_stack(
        StackName=STACK,
        TemplateURL=f"http://127.0.0.1:{port}/{BUCKET}/template.json",
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in PARAMETERS.items()],
    )
    stack = wait_for_stack(aws["cloudformation"], args.timeout)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    for key, value in sorted(outputs.items()):
        info(f"output {key} = {value}")
    return smoke(port, aws, outputs)


def wait_for_stack(cfn: Any, timeout: int) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
        status = stack["StackStatus"]
        if status.endswith("_COMPLETE") and "ROLLBACK" not in status:
            info(f"{status}")
            return dict(stack)
        if "FAILED" in status or "ROLLBACK" in status:
            events = cfn.describe_stack_events(StackName=STACK)["StackEvents"]
            for ev in events:
                if "FAILED" in ev.get("ResourceStatus", ""):
                    info(f"{ev['LogicalResourceId']} ({ev.get('ResourceType')}): {ev.get('ResourceStatusReason')}")
            raise Failed(f"stack {status}: {stack.get('StackStatusReason', '')}")
        time.sleep(2)
    raise Failed(f"stack not created within {timeout} s")


def call(base: str, key: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")[:300]


def expect(base: str, key: str, method: str, path: str, body: Any, *statuses: int) -> Any:
    status, answer = call(base, key, method, path, body)
    if status not in statuses:
        raise Failed(f"{method} {path}: {status} {json.dumps(answer)[:300] if answer is not None else ''}")
    return answer


def until(check: Any, what: str, seconds: float = 90) -> Any:
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last is True:
            return
        time.sleep(1)
    raise Failed(f"timed out waiting for {what} (last seen: {last})")


def task_status(base: str, key: str, tid: str) -> Any:
    status = expect(base, key, "GET", f"/v1/tasks/{tid}", None, 200)["status"]
    return True if status in ("cancelled", "canceled") else status


def smoke(port: int, aws: Any, outputs: dict[str, str]) -> int:
    table = outputs["TableName"]
    api_id = outputs["ApiUrl"].split("//", 1)[1].split(".", 1)[0]
    stream_id = outputs["StreamApiUrl"].split("//", 1)[1].split(".", 1)[0]
    base = f"http://127.0.0.1:{port}/_aws/execute-api/{api_id}/$default"
    step(f"store an API key in {table} (the layer's turnstop.auth.create_api_key)")
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION=REGION,
    )
    sys.path.insert(0, str(ROOT / "layers" / "turnstop"))
    from turnstop.auth import create_api_key

    tenant = "ministack"
    key = create_api_key(table, tenant, [1], name="make deploy-local")
    info(f"tenant {tenant}, key {key[:12]}…")
    results: list[tuple[str, str]] = []

    def check(name: str, fn: Any) -> None:
        started = time.monotonic()
        try:
            results.append((name, f"ok   {fn()} ({time.monotonic() - started:.1f} s)"))
        except Failed as exc:
            results.append((name, f"FAIL {exc}"))
        print(f"    {name}: {results[-1][1]}", flush=True)

    body = {"capability": "text.generate", "model": "auto", "input": {"prompt": "Write a long essay"}}

    def tasks_cancel() -> str:
        tid = expect(base, key, "POST", "/v1/tasks", body, 200, 201, 202)["task_id"]
        expect(base, key, "POST", f"/v1/tasks/{tid}/cancel", {"reason": "make deploy-local"}, 200, 202)
        until(lambda: task_status(base, key, tid), f"task {tid} to end cancelled")
        return f"task {tid} started (HTTP API, authorizer), cancelled by POST /v1/tasks/{{id}}/cancel"

    def queue_cancel() -> str:
        import boto3

        tid = expect(base, key, "POST", "/v1/tasks", body, 200, 201, 202)["task_id"]
        message = {"turn_id": tid, "tenant": tenant, "reason": "make deploy-local"}
        boto3.client("sqs").send_message(QueueUrl=outputs["CancelQueueUrl"], MessageBody=json.dumps(message))
        until(lambda: task_status(base, key, tid), f"task {tid} to end cancelled through the queue")
        return f"task {tid} cancelled through the cancel queue (SQS event source mapping)"

    def omni_cancel() -> str:
        start = {"type": "instant", "account_id": 1, "text": "Write a long essay"}
        rid = expect(base, key, "POST", "/v1/omni-ai/threads", start, 201)["data"]["response_id"]
        expect(base, key, "DELETE", f"/v1/omni-ai/responses/{rid}?account_id=1", None, 200, 202)

        def status() -> Any:
            got = expect(base, key, "GET", f"/v1/omni-ai/responses/{rid}?account_id=1", None, 200)["data"]["status"]
            return True if got in ("canceled", "cancelled") else got

        until(status, f"omni response {rid} to end cancelled")
        return f"omni response {rid} started, cancelled by DELETE"

    def sessions_cancel() -> str:
        sid = expect(base, key, "POST", "/v1/sessions", {}, 201)["id"]
        # a session's turn starts on a streaming route (below); its cancel route, through the
        # function's `live` alias, answers an unknown turn in the dialect's own shape
        answer = expect(base, key, "POST", f"/v1/sessions/{sid}/responses/resp_unknown/cancel", {}, 404)
        if answer.get("error", {}).get("type") != "not_found":
            raise Failed(f"cancel of an unknown turn answered {answer}")
        return f"session {sid} created; its cancel route answers an unknown turn 404 not_found"

    def stream_route() -> str:
        stream_base = f"http://127.0.0.1:{port}/_aws/execute-api/{stream_id}/stream"
        status, answer = call(stream_base, key, "POST", "/v1/responses", {"input": "hi"})
        return f"POST /v1/responses on StreamApi answered {status} {json.dumps(answer)[:80]}"

    def no_key() -> str:
        status, _ = call(base, "not-a-key", "GET", "/v1/tasks", None)
        if status != 401:
            raise Failed(f"GET /v1/tasks with a bad key: {status}, not 401")
        return "a bad key is refused (401)"

    step(f"cancel through MiniStack's API Gateway ({base})")
    check("auth", no_key)
    check("tasks", tasks_cancel)
    check("queue", queue_cancel)
    check("omni", omni_cancel)
    check("sessions", sessions_cancel)
    # not a check: the streaming functions' handler is the Web Adapter's run.sh, and the adapter
    # layer is not there (reduce_template), so the stream routes cannot answer here
    print(f"    stream (expected to fail without the Web Adapter): {stream_route()}", flush=True)
    failed = [name for name, line in results if line.startswith("FAIL")]
    step("done: " + ("every check passed" if not failed else f"{len(failed)} failed: {', '.join(failed)}"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
