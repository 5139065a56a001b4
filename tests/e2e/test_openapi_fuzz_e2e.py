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
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import boto3
import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Err
from schemathesis.schemas import APIOperation, BaseSchema

from tests.conftest import ROOT
from tests.e2e.conftest import LocalApi, serve
from tests.e2e.test_hostile_input_e2e import (
    NOTE,
    StoreView,
    finished_turns_of_alice,
    quiet,
    signed_in,
)
from turnstop_local.store import choose_store_kind

# Examples per operation and mode: about 35 operations, twice, within the tier's budget.
EXAMPLES = 4
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
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    with serve(tmp_path_factory.mktemp("turnstop-openapi"), choose_store_kind(ROOT), grace_seconds=3600) as api:
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
    key = target.admin_key if path.startswith("/v1/admin/") else target.api.key
    return {"Authorization": f"Bearer {key}"}


def negates_credentials(case: Case) -> bool:
    """Whether the case's invalid part is the credential itself (then it goes as generated)."""
    data = case.meta.phase.data if case.meta else None
    said = f"{getattr(data, 'description', '')} {getattr(data, 'parameter', '')}"
    return "Authorization" in said or "session_id" in said


def call(target: Target, op: APIOperation, case: Case, real_ids: bool) -> schemathesis.Response:
    if real_ids:
        case.path_parameters = {**(case.path_parameters or {}), **target.ids.get(f"{op.method.upper()} {op.path}", {})}
    headers = dict(case.headers or {})
    if real_ids or not negates_credentials(case):
        headers.update(credentials(target, op))
    if case.headers and "X-On-Behalf-Of" not in case.headers and real_ids:
        headers["X-On-Behalf-Of"] = "alice"  # the owner of the real ids
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
    @given(case=op.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
        phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    def one(case: Case) -> None:
        response = call(target, op, case, real_ids=mode is GenerationMode.POSITIVE)
        on_answer(op, case, response)
        try:
            case.validate_response(response, checks=CHECKS)
        except (FailureGroup, Failure) as failure:  # every failed check of the answer
            where = f"{op.method.upper()} {op.path} [{mode.value}] -> {response.status_code} {response.text[:200]!r}"
            problems.append(f"{where}\n    {str(failure).strip()[:600]}")

    one()


def test_every_documented_operation_answers_valid_input_as_documented_and_never_with_a_5xx(target: Target) -> None:
    seen: set[str] = set()
    problems = fuzz(target, GenerationMode.POSITIVE, lambda op, case, r: seen.add(f"{op.method.upper()} {op.path}"))
    assert not problems, f"{len(problems)} answers off the document:\n" + "\n".join(problems)
    assert len(seen) == len(operations(target.schema))


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
