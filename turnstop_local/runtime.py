"""Assemble the local runtime: store, resources, functions, SQS pollers and the HTTP server.

:class:`LocalRuntime` is what ``python -m turnstop_local serve`` runs and what tests start
in-process. A running instance describes itself in ``<repo>/.turnstop/local.json`` (or
``$TURNSTOP_STATE_DIR/local.json``): URL, store kind, endpoints, table and queues, so that
``invoke`` and ``keys`` can attach to it.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from types import TracebackType
from typing import Any

from turnstop_local import aws_calls
from turnstop_local.http_server import INTEGRATION_TIMEOUT_SECONDS, LocalApi, LocalHttpServer
from turnstop_local.knobs import number_setting
from turnstop_local.lambda_host import FunctionHost
from turnstop_local.moto_streams import patch_moto
from turnstop_local.oidc import PORT_SETTING, DevOidcProvider, local_chat_environment
from turnstop_local.schedules import Schedules
from turnstop_local.sqs import EventSourceMappings
from turnstop_local.store import LocalStore, endpoint_answers
from turnstop_local.streams import StreamMappings, use_events_file
from turnstop_local.template import LocalResources, Template

__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_TABLE_NAME",
    "LocalRuntime",
    "attach_to_running",
    "read_state",
    "state_path",
]

DEFAULT_TABLE_NAME = "turnstop-local"
DEFAULT_PREFIX = "turnstop-local-"


def state_path(repo_root: Path) -> Path:
    """Where a running instance describes itself: ``$TURNSTOP_STATE_DIR/local.json`` when set
    (tests keep their instance apart from a developer's), else ``<repo>/.turnstop/local.json``."""
    state_dir = os.environ.get("TURNSTOP_STATE_DIR")
    return (Path(state_dir) if state_dir else repo_root / ".turnstop") / "local.json"


def read_state(repo_root: Path) -> dict[str, Any] | None:
    """The running instance's description, or None when there is none (or it is unreadable)."""
    try:
        state = json.loads(state_path(repo_root).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def attach_to_running(repo_root: Path) -> tuple[dict[str, Any], LocalResources] | None:
    """Point this process's boto3 clients at the running instance, if its endpoints answer."""
    state = read_state(repo_root)
    if state is None:
        return None
    dynamodb, sqs = state.get("dynamodb_endpoint", ""), state.get("sqs_endpoint", "")
    if not (dynamodb and sqs and endpoint_answers("dynamodb", dynamodb) and endpoint_answers("sqs", sqs)):
        return None
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": str(state.get("region", "us-east-1")),
            "AWS_REGION": str(state.get("region", "us-east-1")),
            "AWS_ENDPOINT_URL_DYNAMODB": dynamodb,
            "AWS_ENDPOINT_URL_SQS": sqs,
        }
    )
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
        os.environ.pop(name, None)
    return state, LocalResources.from_json(state.get("resources") or {})


class LocalRuntime:
    """The whole local stack for one template; a context manager."""

    def __init__(
        self,
        template_path: Path | str,
        *,
        port: int = 3000,
        store_kind: str | None = None,
        table_name: str = DEFAULT_TABLE_NAME,
        prefix: str = DEFAULT_PREFIX,
        integration_timeout: float = INTEGRATION_TIMEOUT_SECONDS,
        write_state: bool = True,
        idle_timeout: float | None = None,
    ) -> None:
        self.template = Template.load(template_path)
        self.repo_root = self.template.root
        self.port = port
        self.table_name = table_name
        self.prefix = prefix
        self.integration_timeout = integration_timeout
        self.write_state = write_state
        self.idle_timeout = idle_timeout  # None: $TURNSTOP_LOCAL_IDLE_TIMEOUT_SECONDS, else 60 s
        self.store = LocalStore(self.repo_root, store_kind)
        self.resources: LocalResources | None = None
        self.host: FunctionHost | None = None
        self.mappings: EventSourceMappings | None = None
        self.streams: StreamMappings | None = None
        self.schedules: Schedules | None = None
        self.server: LocalHttpServer | None = None
        self.oidc: DevOidcProvider | None = None  # the chat sign-in's development OpenID provider
        self.load_errors: dict[str, BaseException] = {}
        self.dev_api_key: str | None = None  # the seeded dev key, for local clients (the `turnstop` CLI)

    @property
    def url(self) -> str:
        if self.server is None:
            raise RuntimeError("the runtime is not started")
        return self.server.url

    def start(self) -> LocalRuntime:
        try:
            self.store.start()
            self.resources = self.store.create_resources(self.template, self.table_name, self.prefix)
            use_events_file(state_path(self.repo_root).parent)  # turn events: .turnstop/events.jsonl
            aws_calls.install(self.resources)  # only with $TURNSTOP_AWS_CALLS_FILE (the e2e tier's IAM test)
            oidc_port = int(number_setting(PORT_SETTING, 0, minimum=0, maximum=65535))
            self.oidc = DevOidcProvider(port=oidc_port).start()
            # the chat functions sign in against it, unless this process names its own settings
            environ = {**local_chat_environment(self.oidc), **os.environ}
            self.host = FunctionHost(self.template, self.resources, environ)
            self.host.apply_common_environment()
            self.load_errors = self.host.load_all()
            self.mappings = EventSourceMappings(self.template, self.host, self.store.sqs_endpoint).start()
            if self.store.kind == "moto":
                patch_moto()  # transactions that cost what they touch, streams that survive a rollback
            self.streams = StreamMappings(
                self.template, self.host, self.store.dynamodb_endpoint, self.store.sqs_endpoint
            ).start()
            self.schedules = Schedules(self.template, self.host).start()
            api = LocalApi(self.template.routes, self.template.authorizers, self.host, self.integration_timeout)
            self.server = LocalHttpServer(api, "127.0.0.1", self.port, self.idle_timeout).start_in_thread()
            if self.write_state:
                self._write_state()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop everything this runtime started, in reverse order."""
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.schedules is not None:
            self.schedules.stop()
            self.schedules = None
        if self.mappings is not None:
            self.mappings.stop()
            self.mappings = None
        if self.streams is not None:
            self.streams.stop()
            self.streams = None
        if self.host is not None:
            self.host.shutdown()
            self.host = None
        if self.oidc is not None:
            self.oidc.stop()
            self.oidc = None
        self.store.stop()
        if self.write_state:
            self._remove_state()

    def __enter__(self) -> LocalRuntime:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def state(self) -> dict[str, Any]:
        """What ``.turnstop/local.json`` holds for this instance."""
        assert self.resources is not None
        return {
            "pid": os.getpid(),
            "url": self.url,
            "store": self.store.kind,
            "region": self.resources.region,
            "dynamodb_endpoint": self.store.dynamodb_endpoint,
            "sqs_endpoint": self.store.sqs_endpoint,
            "table_name": self.table_name,
            "oidc_issuer": self.oidc.issuer if self.oidc else None,
            "queue_urls": {k: q.url for k, q in self.resources.queues.items()},
            "resources": self.resources.to_json(),
            "dev_api_key": self.dev_api_key,
        }

    def record_dev_key(self, key: str) -> None:
        """Name the seeded dev key in ``local.json``, so that local clients (the ``turnstop``
        command line) use this instance with no configuration."""
        self.dev_api_key = key
        if self.write_state and self.server is not None:
            self._write_state()

    def _write_state(self) -> None:
        path = state_path(self.repo_root)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.unlink(missing_ok=True)
        # It holds the dev key: readable by its owner only, like ~/.aws/credentials.
        with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as out:
            out.write(json.dumps(self.state(), indent=2) + "\n")
        temporary.replace(path)

    def _remove_state(self) -> None:
        state = read_state(self.repo_root)
        # Only our own file: another instance may have started since.
        if state is not None and state.get("pid") == os.getpid():
            path = state_path(self.repo_root)
            path.unlink(missing_ok=True)
            if not os.environ.get("TURNSTOP_STATE_DIR"):
                with contextlib.suppress(OSError):
                    path.parent.rmdir()  # our .turnstop/, and only when empty
