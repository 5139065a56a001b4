"""The deploy-local tier's building blocks: MiniStack started and reached, the template
reduced to what an emulator runs and translated, the layer built (scripts/deploy_local.py)."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
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
