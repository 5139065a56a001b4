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
import copy
import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
STACK = "turnstop-local"
BUCKET = "turnstop-local-artifacts"
CACHE = ROOT / ".turnstop" / "ministack"

# Every parameter keeps its default but one: the scripted model's pace, slowed so that a turn is
# still running when its cancel arrives (a function's first call here is a cold subprocess of
# several seconds, where AWS restores a SnapStart snapshot).
PARAMETERS = {"ScriptedStepMs": "500"}

# What an emulator cannot run, dropped from the template before the transform (docs/deploy.md).
DROP_TYPES = {
    "AWS::CloudWatch::Alarm": "alarms: no metrics to watch locally",
    "AWS::CloudWatch::Dashboard": "the dashboard: no metrics locally",
    "AWS::SNS::Topic": "the alarm topic: no alarms",
    "AWS::Logs::MetricFilter": "the throttle metric filter: no metrics",
    "AWS::CloudFront::Distribution": "CloudFront (FrontDoor): no edge locally",
    "AWS::Cognito::UserPool": "Cognito (chat sign-in)",
    "AWS::Cognito::UserPoolDomain": "Cognito's hosted UI domain",
    "AWS::Cognito::UserPoolClient": "Cognito's app client",
}


def step(text: str) -> None:
    print(f"==> {text}", flush=True)


def info(text: str) -> None:
    print(f"    {text}", flush=True)


class Failed(Exception):
    pass


# ------------------------------------------------------------------------------ MiniStack


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_ministack(port: int, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        BIND_HOST="127.0.0.1",
        GATEWAY_PORT=str(port),
        MINISTACK_HOST="localhost",
        MINISTACK_REGION=REGION,
        LAMBDA_EXECUTOR="local",  # Python functions as local subprocesses: no Docker
        # IAM enforced: each function calls AWS with its execution role's session, so a call its
        # policy in the template does not allow fails here as it would in AWS
        AUTH="true",
        # the functions' subprocess is `python3` from PATH: this venv's, which has boto3
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        LOG_LEVEL="WARNING",
    )
    out = log.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hypercorn", "ministack.app:app", "--bind", f"127.0.0.1:{port}"],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Failed(f"MiniStack exited ({proc.returncode}); its log: {log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_ministack/health", timeout=2):
                return proc
        except urllib.error.HTTPError:
            return proc  # it answers
        except OSError:
            time.sleep(0.5)
    raise Failed("MiniStack did not answer within 60 s")


def clients(port: int) -> dict[str, Any]:
    import boto3

    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)
    url = f"http://127.0.0.1:{port}"
    return {name: session.client(name, endpoint_url=url) for name in ("s3", "cloudformation", "dynamodb", "lambda")}


# ------------------------------------------------------------------------------ artifacts


def zip_dir(src: Path, prefix: str = "") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(src.rglob("*")):
            if path.is_dir() or "__pycache__" in path.parts:
                continue
            info_ = zipfile.ZipInfo(prefix + str(path.relative_to(src)))
            info_.external_attr = (path.stat().st_mode & 0o777) << 16
            info_.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info_, path.read_bytes())
    return buf.getvalue()


def layer_dependencies(requirements: Path) -> Path:
    """The layer's requirements installed for this machine (cached by the file's hash): `sam build`
    builds them for arm64 Linux; the emulator runs the functions with this machine's python3."""
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    target = CACHE / f"layer-deps-{digest}"
    if not (target / ".done").exists():
        info(f"installing the layer's requirements ({requirements.relative_to(ROOT)}) once")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--target",
                str(target / "python"),
                "-r",
                str(requirements),
            ],
            check=True,
            timeout=600,
        )
        (target / ".done").touch()
    return target


def upload(s3: Any, key: str, body: bytes) -> str:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return f"s3://{BUCKET}/{key}"


# ------------------------------------------------------------------------------ the template


def reduce_template(template: dict[str, Any], s3: Any) -> list[str]:
    """Drop and rewrite, in place, what an emulator cannot run; returns what was done."""
    done: list[str] = []
    resources: dict[str, Any] = template["Resources"]
    dropped: set[str] = set()
    for name, res in list(resources.items()):
        reason = DROP_TYPES.get(res.get("Type", ""))
        if reason:
            del resources[name]
            dropped.add(name)
            done.append(f"dropped {name} ({res['Type']}): {reason}")
    # anything still pointing at a dropped resource (the chat functions, through Cognito)
    for name, res in list(resources.items()):
        if refers_to(res, dropped):
            del resources[name]
            done.append(f"dropped {name} ({res['Type']}): it refers to a dropped resource")
    for name, out in list(template.get("Outputs", {}).items()):
        if refers_to(out, dropped):
            del template["Outputs"][name]
            done.append(f"output {name} dropped: it names a dropped resource")
    fn_globals = template.get("Globals", {}).get("Function", {})
    for name, res in resources.items():
        props = res.get("Properties", {})
        if res["Type"] != "AWS::Serverless::Function":
            continue
        if "SnapStart" in props:
            del props["SnapStart"]
            done.append(f"{name}: SnapStart removed (the emulator runs no snapshots)")
        layers = props.get("Layers")
        if layers:
            kept = [layer for layer in layers if not is_adapter_layer(layer)]
            if len(kept) != len(layers):
                done.append(f"{name}: Lambda Web Adapter layer removed (a public layer ARN): its streams cannot run")
                props["Layers"] = kept
    # the functions run with this machine's python and architecture
    for key, value in (("Runtime", "python3.13"), ("Architectures", ["arm64"])):
        if fn_globals.get(key) != value:
            raise Failed(f"Globals.Function.{key} is no longer {value!r}: update this script")
    fn_globals["Architectures"] = ["x86_64"] if os.uname().machine == "x86_64" else ["arm64"]
    # artifacts: each CodeUri / ContentUri zipped into the emulator's S3
    s3.create_bucket(Bucket=BUCKET)
    for name, res in resources.items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            props["CodeUri"] = upload(s3, f"{name}.zip", zip_dir(ROOT / props["CodeUri"]))
        elif res["Type"] == "AWS::Serverless::LayerVersion" and isinstance(props.get("ContentUri"), str):
            src = ROOT / props["ContentUri"]
            body = layer_zip(src)
            props["ContentUri"] = upload(s3, f"{name}.zip", body)
            props.pop("CompatibleArchitectures", None)
            res.pop("Metadata", None)
            done.append(f"{name}: built for this machine ({len(body) // 1024} KiB) instead of arm64 Linux")
    return done


def layer_zip(src: Path) -> bytes:
    deps = layer_dependencies(src / "requirements.txt")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for base, prefix in ((deps / "python", "python/"), (src, "python/")):
            for path in sorted(base.rglob("*")):
                if path.is_dir() or "__pycache__" in path.parts or path.name == "requirements.txt":
                    continue
                zf.write(path, prefix + str(path.relative_to(base)))
    return buf.getvalue()


def is_adapter_layer(layer: Any) -> bool:
    return "LambdaAdapterLayer" in json.dumps(layer)


def refers_to(node: Any, names: set[str]) -> bool:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and value in names:
                return True
            if key == "Fn::GetAtt" and (value[0] if isinstance(value, list) else str(value).split(".")[0]) in names:
                return True
            if key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                if any("${" + n in text for n in names):
                    return True
            if refers_to(value, names):
                return True
    elif isinstance(node, list):
        return any(refers_to(v, names) for v in node)
    return False


def translate(template: dict[str, Any]) -> dict[str, Any]:
    from samtranslator.translator.transform import transform

    class NoManagedPolicies:  # the template names no AWS managed policy by name
        def load(self) -> dict[str, str]:
            return {}

    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    try:
        return dict(transform(copy.deepcopy(template), {}, NoManagedPolicies()))
    except Exception as exc:  # samtranslator's InvalidDocumentException lists its causes
        causes = "; ".join(str(c) for c in getattr(exc, "causes", [])) or str(exc)
        raise Failed(f"samtranslator: {causes}") from exc


def explode_http_api(cfn: dict[str, Any], logical_id: str = "HttpApi") -> list[str]:
    """MiniStack's AWS::ApiGatewayV2::Api ignores an OpenAPI Body (the form SAM's HttpApi
    translates to): its routes would all answer 404. Rewrite the Body as the equivalent
    AWS::ApiGatewayV2::Authorizer, Integration and Route resources, which MiniStack provisions."""
    resources = cfn["Resources"]
    api = resources[logical_id]
    body = api["Properties"].pop("Body")
    api["Properties"].update(Name={"Fn::Sub": "${AWS::StackName}-http"}, ProtocolType="HTTP")
    api_ref = {"Ref": logical_id}
    authorizers: dict[str, str] = {}
    for name, scheme in body.get("components", {}).get("securitySchemes", {}).items():
        spec = scheme["x-amazon-apigateway-authorizer"]
        rid = f"{logical_id}{name}"
        resources[rid] = {
            "Type": "AWS::ApiGatewayV2::Authorizer",
            "Properties": {
                "ApiId": api_ref,
                "Name": name,
                "AuthorizerType": spec["type"].upper(),
                "AuthorizerUri": spec["authorizerUri"],
                "AuthorizerPayloadFormatVersion": spec["authorizerPayloadFormatVersion"],
                "EnableSimpleResponses": spec.get("enableSimpleResponses", False),
                "AuthorizerResultTtlInSeconds": spec.get("authorizerResultTtlInSeconds", 0),
                "IdentitySource": spec.get("identitySource") or [],
            },
        }
        authorizers[name] = rid
    count = 0
    for path, item in body["paths"].items():
        for method, op in item.items():
            integration = op["x-amazon-apigateway-integration"]
            count += 1
            iid, rid = f"{logical_id}Integration{count}", f"{logical_id}Route{count}"
            resources[iid] = {
                "Type": "AWS::ApiGatewayV2::Integration",
                "Properties": {
                    "ApiId": api_ref,
                    "IntegrationType": "AWS_PROXY",
                    "IntegrationUri": integration["uri"],
                    "IntegrationMethod": integration.get("httpMethod", "POST"),
                    "PayloadFormatVersion": integration.get("payloadFormatVersion", "2.0"),
                },
            }
            route: dict[str, Any] = {
                "ApiId": api_ref,
                "RouteKey": f"{method.upper()} {path}",
                "Target": {"Fn::Join": ["/", ["integrations", {"Ref": iid}]]},
                "AuthorizationType": "NONE",
            }
            security = [name for req in op.get("security", []) for name in req if name in authorizers]
            if security:
                route.update(AuthorizationType="CUSTOM", AuthorizerId={"Ref": authorizers[security[0]]})
            resources[rid] = {"Type": "AWS::ApiGatewayV2::Route", "Properties": route}
    return [f"{logical_id}: its OpenAPI Body rewritten as {len(authorizers)} authorizer(s) and {count} routes"]


# ------------------------------------------------------------------------------ main


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
