"""Schemathesis against the local runtime, over real HTTP, for every documented operation.

The document is the one the runtime serves at ``/openapi.json`` (the committed files under
``openapi/``, which tests/unit/test_openapi_drift.py keeps equal to what the models build).
Each operation gets a few derandomized examples, with real credentials (the dev key, an
operator's key for the admin endpoints, a signed-in browser's cookie for chat) and, for the
valid ones, real ids of turns that exist, so the fuzzer reaches past auth and lookups:

- valid input (schemathesis' positive mode): never a 5xx; every status, content type and
  JSON body is one the document lists for that operation;
- invalid input (negative mode): the same, every answer a 4xx, and the store and the queues
  are exactly as they were afterwards (the snapshot of tests/e2e/test_hostile_input_e2e.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import InvalidArgument
from schemathesis import Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config._phases import DEFAULT_UNEXPECTED_METHODS
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Err
from schemathesis.schemas import APIOperation, BaseSchema

from tests.e2e.conftest import LocalApi
from tests.e2e.test_hostile_input_e2e import (
    NOTE,
    WORKER_KEY,
    StoreView,
    finished_turns_of_alice,
    quiet,
    signed_in,
)
from turnstop.dialects import registry

# Examples per operation and mode: about 40 operations, twice, within the tier's budget.
# TURNSTOP_FUZZ_EXAMPLES=50 runs a longer hunt (docs/openapi.md).
EXAMPLES = int(os.environ.get("TURNSTOP_FUZZ_EXAMPLES") or 4)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
TIMEOUT = 30


@dataclass
class Target:
    api: LocalApi
    schema: BaseSchema
    admin_key: str
    cookie: str  # alice's browser
    spare_cookie: str  # another browser's, for sign-out
    ids: dict[str, dict[str, str]]  # "METHOD /path" -> path parameter -> a real id of alice's
    store: StoreView


@pytest.fixture(scope="module")
def target(quiet_api: LocalApi) -> Iterator[Target]:
    api = quiet_api
    state = json.loads((api.state_dir / "local.json").read_text())
    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=state["region"])
    store = StoreView(
        session.client("dynamodb", endpoint_url=state["dynamodb_endpoint"]),
        session.client("sqs", endpoint_url=state["sqs_endpoint"]),
        state["table_name"],
        list(state["queue_urls"].values()),
    )
    admin_key = api.make_key("dev", admin=True)
    alice = {"Authorization": f"Bearer {api.key}", "X-On-Behalf-Of": "alice"}
    with httpx.Client(base_url=api.url, headers=alice, timeout=60) as c:
        ids = finished_turns_of_alice(c, admin_key)
    cookie = signed_in(api, "alice")
    with httpx.Client(base_url=api.url, cookies={"session_id": cookie}, timeout=60) as c:
        reply = c.post("/chat", json={"message": NOTE})
        assert reply.status_code == 200, reply.text
    ids["GET /chat/threads/{thread_id}"] = {"thread_id": reply.json()["thread_id"]}
    served = httpx.get(f"{api.url}/openapi.json", timeout=60)
    assert served.status_code == 200, served.text
    schema = schemathesis.openapi.from_dict(served.json())
    # Unknown query parameters and headers are ignored, as by most HTTP APIs: not invalid input.
    schema.config.generation.update(allow_extra_parameters=False)
    # Streams are read to their end: a reader that leaves does not stop a turn (resume exists for
    # that), so a stream cut short would leave its session busy for the next case.
    schema.config.max_stream_events = 100_000
    yield Target(api, schema, admin_key, cookie, signed_in(api, "bob"), ids, store)


def operations(schema: BaseSchema) -> list[APIOperation]:
    """Every operation of the document (one schemathesis cannot read is a failure)."""
    found: list[APIOperation] = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise AssertionError(f"schemathesis cannot read an operation: {result.err()}")
        found.append(result.ok())
    return found


def credentials(target: Target, op: APIOperation) -> dict[str, str]:
    """What a real caller of ``op`` sends to get past authentication."""
    path = op.path
    if path.startswith("/auth/logout"):
        return {"Cookie": f"session_id={target.spare_cookie}"}
    if path.startswith(("/chat", "/auth/")):
        return {"Cookie": f"session_id={target.cookie}"}
    if path.startswith("/v1/workers/"):  # a remote route's workers: its worker key
        return {"Authorization": f"Bearer {WORKER_KEY}"}
    key = target.admin_key if path.startswith("/v1/admin/") else target.api.key
    return {"Authorization": f"Bearer {key}"}


def spoiled(case: Case) -> bool:
    """Whether some part of the case was generated invalid."""
    return case.meta is not None and any(c.mode is GenerationMode.NEGATIVE for c in case.meta.components.values())


def negates_credentials(case: Case) -> bool:
    """Whether the case's invalid part is the credential itself (then it goes as generated)."""
    data = case.meta.phase.data if case.meta else None
    said = f"{getattr(data, 'description', '')} {getattr(data, 'parameter', '')}"
    return "Authorization" in said or "session_id" in said


@dataclass
class Real:
    """What a valid call of one operation names that exists: path ids, query values, body fields."""

    path: dict[str, str]
    query: dict[str, Any]
    body: dict[str, Any]


PLANNED = "Schedule a meeting titled 'Fuzz' on March 10th at 3 PM"


def real_values(target: Target, op: APIOperation) -> Real:
    """Real values for ``op``'s valid cases, made just before it is fuzzed where they would not
    last (session turns leave their grace window, sessions get deleted, actions get decided)."""
    key = f"{op.method.upper()} {op.path}"
    path = dict(target.ids.get(key, {}))
    omni = op.path.startswith("/v1/omni-ai/")
    query: dict[str, Any] = {"account_id": 1} if omni else {}  # an account the dev key acts for
    body: dict[str, Any] = {"account_id": 1} if omni and op.method.upper() == "POST" else {}
    alice = {"Authorization": f"Bearer {target.api.key}", "X-On-Behalf-Of": "alice"}
    if op.path.startswith(("/v1/sessions/", "/v1/responses/")):
        with httpx.Client(base_url=target.api.url, headers=alice, timeout=60) as c:
            sid = c.post("/v1/sessions", json={"persistent": True}).json()["id"]
            start = (
                ("/v1/responses", {"input": NOTE})
                if op.path.startswith("/v1/responses/")
                else (f"/v1/sessions/{sid}/messages", {"message": NOTE})
            )
            with c.stream("POST", start[0], json=start[1]) as r:
                rid = r.headers["X-Response-Id"]
                r.read()
        path.update({k: v for k, v in {"id": sid, "rid": rid}.items() if "{" + k + "}" in op.path})
    if op.path in ("/chat/cancel", "/chat/confirm"):
        with httpx.Client(base_url=target.api.url, cookies={"session_id": target.cookie}, timeout=60) as c:
            planned = c.post("/chat", json={"message": PLANNED}).json()
            assert planned["requires_confirmation"], planned
        body["thread_id"] = planned["thread_id"]
    return Real(path, query, body)


def short(body: dict[str, Any]) -> dict[str, Any]:
    """A body whose prompt asks for 3 words first (the scripted model writes as many words as the
    prompt's first "N-word" asks, else 64), so that turns started by valid cases end quickly."""
    out = dict(body)
    for name in ("message", "input", "text"):
        if isinstance(out.get(name), str):
            out[name] = f"{NOTE}. {out[name]}"
    if isinstance(out.get("input"), dict) and isinstance(out["input"].get("prompt"), str):
        out["input"] = {**out["input"], "prompt": f"{NOTE}. {out['input']['prompt']}"}
    return out


def call(target: Target, op: APIOperation, case: Case, real: Real | None) -> schemathesis.Response:
    """Send ``case`` with real credentials (unless the credential is what it spoils) and, for a
    valid case, the real values, as the end user who owns them."""
    headers = dict(case.headers or {})
    if real is not None:
        case.path_parameters = {**(case.path_parameters or {}), **real.path}
        case.query = {**(case.query or {}), **real.query}
        if isinstance(case.body, dict):
            case.body = short({**case.body, **real.body})
        if not op.path.startswith(("/chat", "/auth/")):
            headers["X-On-Behalf-Of"] = "alice"
    if real is not None or not negates_credentials(case):
        headers.update(credentials(target, op))
    return case.call(base_url=target.api.url, headers=headers, timeout=TIMEOUT, allow_redirects=False)


Answered = Callable[[APIOperation, Case, schemathesis.Response], None]


def fuzz(target: Target, mode: GenerationMode, on_answer: Answered) -> list[str]:
    """Run ``EXAMPLES`` derandomized cases of every operation in ``mode``; the failures."""
    problems: list[str] = []
    for op in operations(target.schema):
        fuzz_operation(target, op, mode, on_answer, problems)
    return problems


def fuzz_operation(
    target: Target, op: APIOperation, mode: GenerationMode, on_answer: Answered, problems: list[str]
) -> None:
    real = real_values(target, op) if mode is GenerationMode.POSITIVE else None

    @given(case=op.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def one(case: Case) -> None:
        if mode is GenerationMode.NEGATIVE and not spoiled(case):
            return  # nothing of this operation could be made invalid: not a case of this mode
        response = call(target, op, case, real)
        on_answer(op, case, response)
        try:
            case.validate_response(response, checks=CHECKS)
        except (FailureGroup, Failure) as failure:  # every failed check of the answer
            where = f"{op.method.upper()} {op.path} [{mode.value}] -> {response.status_code} {response.text[:200]!r}"
            problems.append(f"{where}\n    {str(failure).strip()[:600]}")

    try:
        one()
    except InvalidArgument as limit:
        # A bound hypothesis cannot generate past (a string over a 100,000-character limit):
        # that operation's remaining cases are left out, never failed.
        if mode is GenerationMode.POSITIVE:
            problems.append(f"{op.method.upper()} {op.path}: cannot generate valid input: {limit}")


def test_every_documented_operation_answers_valid_input_as_documented_and_never_with_a_5xx(target: Target) -> None:
    statuses: dict[str, list[int]] = {}

    def note(op: APIOperation, case: Case, r: schemathesis.Response) -> None:
        statuses.setdefault(f"{op.method.upper()} {op.path}", []).append(r.status_code)

    problems = fuzz(target, GenerationMode.POSITIVE, note)
    assert not problems, f"{len(problems)} answers off the document:\n" + "\n".join(problems)
    assert len(statuses) == len(operations(target.schema))
    # the credentials work: every operation was reached past authentication at least once
    stopped_at_the_door = {op: seen for op, seen in statuses.items() if set(seen) <= {401}}
    assert not stopped_at_the_door, stopped_at_the_door
    # and valid input is accepted: most operations answered a 2xx or 3xx at least once
    accepted = {op for op, seen in statuses.items() if any(s < 400 for s in seen)}
    assert len(accepted) >= len(statuses) * 2 // 3, "\n".join(f"{op}: {seen}" for op, seen in sorted(statuses.items()))


def test_invalid_input_is_a_documented_4xx_and_changes_nothing(target: Target) -> None:
    before = quiet(target.store)
    accepted: list[str] = []

    def only_rejections(op: APIOperation, case: Case, r: schemathesis.Response) -> None:
        if not 400 <= r.status_code < 500:
            meta = case.meta
            what = (meta.phase.data, {k: v.mode.value for k, v in meta.components.items()}) if meta else None
            accepted.append(f"{op.method.upper()} {op.path} -> {r.status_code} {what} for {case.as_curl_command()}")

    problems = fuzz(target, GenerationMode.NEGATIVE, only_rejections)
    after = quiet(target.store)
    assert not problems, f"{len(problems)} answers off the document:\n" + "\n".join(problems)
    assert not accepted, "invalid input accepted:\n" + "\n".join(accepted)
    assert after["queues"] == before["queues"]
    changed = set(after["items"]) ^ set(before["items"])
    assert not changed, "the store changed:\n" + "\n".join(sorted(changed)[:20])


# What schemathesis' coverage phase sends as "unspecified HTTP method", and the rest of HTTP's
# methods with one made up: API Gateway answers each with a route's answer or its own 404.
OTHER_METHODS = sorted(DEFAULT_UNEXPECTED_METHODS | {"head", "connect", "frobnicate"})


def test_no_method_on_any_documented_path_is_a_server_error(target: Target) -> None:
    problems: list[str] = []
    for op in operations(target.schema):
        declared = {m.lower() for m in target.schema.raw_schema["paths"][op.path] if not m.startswith("x-")}
        params = {p.name: "x1" for p in op.path_parameters}
        for method in (m for m in OTHER_METHODS if m not in declared):
            case = op.Case(
                method=method.upper(),  # type: ignore[arg-type]  # CONNECT and a made-up one too
                path_parameters={**params, **target.ids.get(f"{op.method.upper()} {op.path}", {})},
            )
            response = call(target, op, case, None)
            try:
                case.validate_response(response, checks=[not_a_server_error])
            except (FailureGroup, Failure) as failure:
                problems.append(f"{method.upper()} {op.path} -> {response.status_code}: {str(failure).strip()[:200]}")
    assert not problems, "\n".join(problems)


def test_the_runtime_serves_each_document_and_all_of_them_merged(target: Target) -> None:
    url = target.api.url
    merged = httpx.get(f"{url}/openapi.json", timeout=60).json()
    for name in (api.name for api in registry.apis()):  # every registered API's own document
        one = httpx.get(f"{url}/openapi/{name}.json", timeout=60)
        assert one.status_code == 200 and one.headers["content-type"] == "application/json"
        doc = one.json()
        assert doc["servers"] == [{"url": url, "description": "this local runtime"}]
        assert set(doc["paths"]) <= set(merged["paths"])
    queue = httpx.get(f"{url}/openapi/queue-cancel.schema.json", timeout=60).json()
    assert queue["$schema"].endswith("2020-12/schema")
    missing = httpx.get(f"{url}/openapi/nothing.json", timeout=60)
    assert missing.status_code == 404
