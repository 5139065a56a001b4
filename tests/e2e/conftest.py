"""E2E tier: the local runtime started from template.yaml as a real process, over real HTTP.

One server per test session, on a free port, with short step and grace times so the
seed's flows (stream, cancel, grace expiry, resume) run in seconds.

Every server records the AWS calls each function makes (``TURNSTOP_AWS_CALLS_FILE``, one file for
the session, see :mod:`turnstop_local.aws_calls`); ``test_iam_coverage_e2e.py`` runs last and
compares the record with the template's policies.
"""

from __future__ import annotations

import functools
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT

DEV_KEY = "ts_e2e_dev_key_0123456789abcdef"
IAM_TEST_MODULE = "test_iam_coverage_e2e.py"
DEV_WEBHOOK_SECRET = "whsec_e2e_dev_secret_0123456789"
GRACE_SECONDS = 5
STEP_MS = 5
READY = "turnstop local API ready on "  # the local runtime's line once it serves
# the environment a child needs to import the layer and this repository's modules (a worker's)
LAYER_ON_PATH = {"PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "turnstop"), str(ROOT)])}


@dataclass(frozen=True)
class LocalApi:
    url: str
    key: str
    state_dir: Path
    grace_seconds: float

    def make_key(self, tenant: str, accounts: str = "1", *, admin: bool = False) -> str:
        """A key for another tenant (an operator's with ``admin``), created through the CLI
        against this running instance."""
        out = subprocess.run(
            [sys.executable, "-m", "turnstop_local", "keys", "create", "--tenant", tenant, "--accounts", accounts]
            + (["--admin"] if admin else []),
            cwd=ROOT,
            env={**os.environ, "TURNSTOP_STATE_DIR": str(self.state_dir)},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return out.stdout.strip().splitlines()[-1].strip()


# What every server started here appends its functions' AWS calls to (see the module's doc): a
# file of the session's own, unless TURNSTOP_AWS_CALLS_FILE names one to keep (to write a policy from).
_kept = os.environ.get("TURNSTOP_AWS_CALLS_FILE")
_calls_dir = None if _kept else Path(tempfile.mkdtemp(prefix="turnstop-e2e-calls-"))
AWS_CALLS_FILE = Path(_kept) if _kept else Path(str(_calls_dir)) / "aws-calls.jsonl"


def pytest_unconfigure(config: pytest.Config) -> None:
    if _calls_dir is not None:
        shutil.rmtree(_calls_dir, ignore_errors=True)


# The modules on the quiet runtime (``quiet_api``) run together, just before the IAM test, so that
# runtime is started late and is never idle while the other modules run.
QUIET_MODULES = ("test_hostile_input_e2e.py", "test_openapi_fuzz_e2e.py")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """The IAM coverage test goes last: it reads what every other test made the functions call."""
    items.sort(key=lambda item: (item.path.name == IAM_TEST_MODULE, item.path.name in QUIET_MODULES))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Whether this run holds every e2e module (what the IAM test's unused-grant check needs)."""
    here = Path(__file__).parent
    every = {p.name for p in here.glob("test_*.py")}
    session.config.stash[WHOLE_TIER] = every <= {item.path.name for item in session.items}


WHOLE_TIER = pytest.StashKey[bool]()


@functools.cache
def all_store_kinds() -> tuple[str, ...]:
    """Both embedded stores where DynamoDB Local can run (CI), else moto's server alone.
    Asked once per run: finding the store starts ``java -version``."""
    from turnstop_local.store import choose_store_kind

    return ("dynamodb-local", "moto") if choose_store_kind(ROOT) == "dynamodb-local" else ("moto",)


class Servers:
    """One local runtime per store for the whole test session, started on first use."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self._stack = ExitStack()
        self._apis: dict[str, LocalApi] = {}

    def get(self, store_kind: str) -> LocalApi:
        if store_kind not in self._apis:
            state_dir = self._tmp.mktemp(f"turnstop-state-{store_kind}")
            self._apis[store_kind] = self._stack.enter_context(serve(state_dir, store_kind))
        return self._apis[store_kind]

    def close(self) -> None:
        self._stack.close()


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    running = Servers(tmp_path_factory)
    try:
        yield running
    finally:
        running.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """The e2e tier runs once, on the default store (DynamoDB Local where Java 17+ is present, as
    in CI and ``make run``). A module marked ``each_store`` also runs on moto's server, the store
    ``make run`` falls back to without Java; the unit tier covers every path on moto besides."""
    if "local_api" in metafunc.fixturenames:
        kinds = all_store_kinds()
        each = metafunc.definition.get_closest_marker("each_store") is not None
        metafunc.parametrize("local_api", kinds if each else kinds[:1], indirect=True, scope="session")


@pytest.fixture(scope="session")
def quiet_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalApi]:
    """A runtime of its own for the hostile-input and OpenAPI-fuzz modules, which run one after
    the other on it: nothing else writes to its store while they compare snapshots, and no other
    test's turn is in flight (the shared ``local_api`` runs every other e2e test). It serves one
    remote route, so the worker API's routes get past their key check."""
    from tests.e2e.test_hostile_input_e2e import WORKER_ENV
    from turnstop_local.store import choose_store_kind

    with serve(tmp_path_factory.mktemp("turnstop-quiet"), choose_store_kind(ROOT), 3600, WORKER_ENV) as api:
        yield api


@pytest.fixture(scope="session")
def local_api(request: pytest.FixtureRequest, servers: Servers) -> LocalApi:
    """The local runtime on the store this test is parametrized with."""
    return servers.get(request.param)


@contextmanager
def serve(
    state_dir: Path, store_kind: str, grace_seconds: float = GRACE_SECONDS, extra_env: dict[str, str] | None = None
) -> Iterator[LocalApi]:
    """A local runtime in its own process and state directory, until the block ends."""
    log_path = state_dir / "server.log"
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "TURNSTOP_DEV_API_KEY": DEV_KEY,
        "TURNSTOP_DEV_ACCOUNT_IDS": "1,2",
        "TURNSTOP_SCRIPTED_STEP_MS": str(STEP_MS),
        "TURNSTOP_GRACE_SECONDS": str(grace_seconds),
        "TURNSTOP_STATE_DIR": str(state_dir),
        "TURNSTOP_DEV_WEBHOOK_SECRET": DEV_WEBHOOK_SECRET,
        "TURNSTOP_CALLBACK_BACKOFF_BASE_SECONDS": "1",  # task callback retries after 1 s, 2 s, ...
        "TURNSTOP_BULK_CANCEL_PAGE_SIZE": "25",  # bulk cancels of a few hundred turns run several pages
        # each running turn looks for its cancel flag once a second, so the bulk cancel's hundreds
        # of in-flight turns fit a 2-core machine (200 ms, the default, is for latency, not tests)
        "TURNSTOP_CANCEL_CHECK_MS": "1000",
        "TURNSTOP_AWS_CALLS_FILE": str(AWS_CALLS_FILE),
        **(extra_env or {}),
    }
    with open(log_path, "w") as log:
        server = ChildProcess("turnstop_local", "serve", "--port", "0", "--store", store_kind, env=env, stderr=log)
        try:
            url = server.expect(READY, timeout=180).removeprefix(READY).strip()
        except (AssertionError, queue.Empty):
            server.proc.kill()
            raise RuntimeError("local runtime did not start:\n" + log_path.read_text()[-4000:]) from None
        try:
            yield LocalApi(url, DEV_KEY, state_dir, grace_seconds)
        finally:
            server.stop()


def pump_lines(stream: Any, into: queue.Queue[str]) -> None:
    """Copy a child's output lines into a queue (read on a thread, so waits stay bounded)."""
    for line in stream or []:
        into.put(line)


class ChildProcess:
    """``python -m <module> <args>`` in a process of its own, from the repository's root, its
    output lines read on a thread so that every wait on them is bounded."""

    def __init__(self, module: str, *args: str, env: Mapping[str, str] | None = None, stderr: Any = None) -> None:
        self.module = module
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        self.seen: list[str] = []  # every line read so far, stripped
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout or []:
            self._lines.put(line)
        self._lines.put(None)  # its output closed: the child has ended

    def expect(self, prefix: str, timeout: float = 60) -> str:
        """The child's next line starting with ``prefix``, waiting at most ``timeout`` seconds
        for each line (``queue.Empty`` past that); AssertionError once the child has ended."""
        while True:
            line = self._lines.get(timeout=timeout)
            if line is None:
                self._lines.put(None)
                raise AssertionError(f"{self.module} ended before a line starting with {prefix!r}")
            self.seen.append(line.strip())
            if self.seen[-1].startswith(prefix):
                return self.seen[-1]

    def stop(self) -> list[str]:
        """End the child (SIGTERM, SIGKILL if it lingers 20 s) and return every line it wrote."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._reader.join(timeout=20)
        while not self._lines.empty():
            line = self._lines.get_nowait()
            self.seen += [] if line is None else [line.strip()]
        self._lines.put(None)
        return self.seen


def wait_for(check: Any, what: str, timeout: float = 60) -> Any:
    """Poll ``check`` until it returns something truthy (bounded; no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def sse_events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Parse SSE lines into {"id", "event", "data"} dicts (comments are skipped)."""
    current: dict[str, Any] = {}
    for line in lines:
        if line == "":
            if current:
                yield current
            current = {}
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            current[field] = json.loads(value) if field == "data" else value
    if current:
        yield current


def auth(api: LocalApi) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.key}"}


OnDelta = Callable[[str, str, str], bool]


def session_turn(api: LocalApi, message: str, on_delta: OnDelta | None = None) -> list[dict[str, Any]]:
    """Stream a turn of a new session; ``on_delta(delta, session, rid)`` sees each delta until it says True."""
    session = httpx.post(f"{api.url}/v1/sessions", headers=auth(api), json={"persistent": True}).json()["id"]
    seen: list[dict[str, Any]] = []
    url = f"{api.url}/v1/sessions/{session}/messages"
    with httpx.stream("POST", url, headers=auth(api), json={"message": message}, timeout=120) as r:
        assert r.status_code == 200
        rid = r.headers["X-Response-Id"]
        for ev in sse_events(r.iter_lines()):
            seen.append(ev)
            if on_delta is not None and ev["event"] == "message.delta" and on_delta(ev["data"]["delta"], session, rid):
                on_delta = None
    return seen


def text_of(events: list[dict[str, Any]]) -> str:
    return "".join(e["data"]["delta"] for e in events if e["event"] == "message.delta")
