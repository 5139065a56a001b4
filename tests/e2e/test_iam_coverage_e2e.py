"""Least privilege, proved: every AWS call a function made during the e2e tier is allowed by its
policy in template.yaml, and every grant in those policies was used by some e2e path (or is
listed below with the reason no e2e path reaches it).

The local runtime does not enforce IAM, so without this a missing action (a cancel by
Idempotency-Key's ``ConditionCheck`` needs ``dynamodb:ConditionCheckItem``) only shows as a 500 in
AWS. The servers record the calls (``turnstop_local.aws_calls``); the conftest runs this module
last. The unused-grant half needs the whole tier: run alone, it skips.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import AWS_CALLS_FILE, WHOLE_TIER
from turnstop_local import aws_calls, iam
from turnstop_local.template import Template

_REFUSED_ENQUEUE = (
    "when SQS refuses a start's message, queue.enqueue cancels the still-queued turn (Update) and "
    "unbinds its Idempotency-Key (Delete) in one transaction; no e2e path can make the local queue "
    "refuse"
)

# Grants no e2e path exercises, each with why it is still needed. An entry must name a grant the
# template makes (else it is stale and fails); one the tier happens to use is fine (several are
# paths that only timing reaches, like a sweep that finds a stalled turn).
_BEDROCK_DEFAULT = (
    "a Bedrock route runs here only when it is the default route (the e2e tier's models runtime routes "
    "its default to an OpenAI-compatible fake; the worker and the llm function call Bedrock there)"
)
_BEDROCK = "bedrock:InvokeModelWithResponseStream"

UNUSED_BY_E2E: dict[tuple[str, str, str], str] = {
    **{
        (function, _BEDROCK, resource): _BEDROCK_DEFAULT
        for function in ("SessionsStreamFunction", "ChatApiFunction", "ChatStreamFunction")
        for resource in ("foundation-model/*", "inference-profile/*")
    },
    **{
        (function, _BEDROCK, "inference-profile/*"): "the fake Bedrock's models are foundation-model ids"
        for function in ("WorkerFunction", "LlmApiFunction")
    },
    ("TurnEventsFunction", "events:PutEvents", "event-bus/default"): (
        "the local runtime has no EventBridge: turn events go to a file (docs/local-runtime.md)"
    ),
    ("LlmApiFunction", "dynamodb:UpdateItem", "table/TurnTable"): _REFUSED_ENQUEUE,
    ("LlmApiFunction", "dynamodb:DeleteItem", "table/TurnTable"): _REFUSED_ENQUEUE,
    ("OmniApiFunction", "dynamodb:DeleteItem", "table/TurnTable"): _REFUSED_ENQUEUE,
    ("SessionsStreamFunction", "dynamodb:DeleteItem", "table/TurnTable"): _REFUSED_ENQUEUE,
    ("TasksApiFunction", "dynamodb:UpdateItem", "table/TurnTable"): _REFUSED_ENQUEUE,
    ("TasksApiFunction", "dynamodb:DeleteItem", "table/TurnTable"): _REFUSED_ENQUEUE,
    ("TasksCancelFunction", "dynamodb:DeleteItem", "table/TurnTable"): (
        "an Idempotency-Key is unbound when the cancel fails retryably (a store fault, which "
        "the e2e tier does not inject)"
    ),
    ("ChatAuthFunction", "dynamodb:UpdateItem", "table/TurnTable"): (
        "a session's idle expiry is pushed out (touch) only once it is older than the refresh "
        "interval, longer than the e2e tier"
    ),
    ("AdminCancelFunction", "sqs:SendMessage", "queue/CancelQueue"): (
        "a bulk cancel sends its next page to the cancel queue only when it outlasts the request's "
        "time budget; the e2e scopes finish within it"
    ),
    ("SweeperFunction", "dynamodb:UpdateItem", "table/TurnTable"): (
        "a stalled turn or overdue callback is marked swept: only when one has stalled for "
        "longer than the e2e tier waits"
    ),
    ("SweeperFunction", "dynamodb:Query", "table/TurnTable"): (
        "a sweep reads a candidate's head only when a turn is in flight at the moment the schedule "
        "fires: most e2e runs meet one, not all (test-repeat saw it unused once in five)"
    ),
    ("SweeperFunction", "sqs:SendMessage", "queue/TurnQueue"): "a stalled turn re-queued (as above)",
    ("SweeperFunction", "sqs:SendMessage", "queue/CallbackQueue"): "an overdue callback re-sent (as above)",
}


@pytest.fixture(scope="module")
def calls() -> set[tuple[str, str, str]]:
    recorded = aws_calls.read(AWS_CALLS_FILE)
    if not recorded:
        pytest.skip("no e2e test ran a server in this session: nothing was recorded")
    return recorded


def test_every_call_a_function_makes_is_allowed_by_its_policy(template: Template, calls: set) -> None:
    denied = iam.unallowed(template, calls)
    assert not denied, "\n".join(denied)


def test_every_grant_is_used_by_some_path(template: Template, calls: set, request: pytest.FixtureRequest) -> None:
    if not request.config.stash.get(WHOLE_TIER, False):
        pytest.skip("only the whole e2e tier exercises every path")
    unused = iam.unused(template, calls, UNUSED_BY_E2E)
    assert not unused, "\n".join(unused)


def test_every_listed_exception_is_a_grant_the_template_makes(template: Template) -> None:
    granted = {(fid, *grant) for fid in template.functions for grant in iam.function_grants(template, fid).allowed}
    assert sorted(set(UNUSED_BY_E2E) - granted) == []
