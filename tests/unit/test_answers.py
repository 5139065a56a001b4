"""Each answer is described once: by its model in ``turnstop.dialects.<name>.answers``, the
class the OpenAPI documents take its schema from. The modules a cancel function loads build
their answers as plain dicts (no pydantic on a cancel's cold start); here those dicts meet
their models, and so does every example the documents show (the seeds' bodies among them).

The task object, the Responses object and its events are checked against their models in
every case of tests/stores that reads one (``assert_task_shape``, ``assert_sdk_response``).
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from tests.cases.fixtures import Env
from tests.cases.turns import HookModel, cancel, events, runner, start
from turnstop.cancels.bulk import report_json
from turnstop.core import errors
from turnstop.core.bulk import BulkRequest, BulkScope
from turnstop.core.events import Event
from turnstop.core.turn import CancelOutcome
from turnstop.dialects.chat import answers as chat
from turnstop.dialects.chat import wire as chat_wire
from turnstop.dialects.llm import answers as llm
from turnstop.dialects.llm import wire as llm_wire
from turnstop.dialects.omni import answers as omni
from turnstop.dialects.omni import wire as omni_wire
from turnstop.dialects.sessions import answers as sessions
from turnstop.dialects.sessions import wire as sessions_wire
from turnstop.dialects.tasks import answers as tasks
from turnstop.dialects.tasks import wire as tasks_wire
from turnstop.http.errors import ErrorShape
from turnstop.store.bulk import Report
from turnstop_local.openapi.build import DIALECTS


def conforms(model: type[BaseModel], body: Any) -> None:
    """``body`` is an instance of ``model``'s answer: every field it declares, of its type, and
    (unless the model leaves the object open) nothing else."""
    model.model_validate(body)
    if model.model_config.get("extra") != "allow":
        assert set(body) <= set(model.model_fields), set(body) - set(model.model_fields)


def documented_examples() -> list[Any]:
    cases = []
    for d in DIALECTS.values():
        for op in d.ops:
            for status, ok in op.ok.items():
                for name, body in ok.examples.items():
                    assert ok.model is not None
                    cases.append(pytest.param(ok.model, body, id=f"{d.name}.{op.operation_id}.{status}.{name}"))
            for status, named in {**d.examples, **op.error_examples}.items():
                for name, body in named.items():
                    cases.append(pytest.param(d.error, body, id=f"{d.name}.{op.operation_id}.{status}.{name}"))
    return cases


@pytest.mark.parametrize(("model", "body"), documented_examples())
def test_every_example_the_documents_show_is_an_instance_of_its_answers_model(model: Any, body: Any) -> None:
    conforms(model, body)


SHAPES = [
    pytest.param(sessions_wire.SHAPE, sessions.SessionsError, id="sessions"),
    pytest.param(omni_wire.SHAPE, omni.OmniError, id="omni"),
    pytest.param(llm_wire.SHAPE, llm.LlmError, id="llm"),
    pytest.param(tasks_wire.SHAPE, tasks.TasksError, id="tasks"),
    pytest.param(chat_wire.SHAPE, chat.ChatError, id="chat"),
]


@pytest.mark.parametrize(("shape", "model"), SHAPES)
def test_every_error_a_dialect_answers_is_its_error_model(shape: ErrorShape, model: type[BaseModel]) -> None:
    raised: list[BaseException] = [cls("It went wrong") for cls in shape.status]
    raised += [errors.InvalidRequest("Bad", code="model_not_found", param="model", retryable=False), KeyError("x")]
    for exc in raised:
        conforms(model, shape.body(shape.describe(exc, "req-1")))


@pytest.mark.parametrize("outcome", list(CancelOutcome))
def test_a_sessions_cancel_answers_its_model_whatever_the_outcome(outcome: CancelOutcome) -> None:
    status, body = sessions_wire.cancel_answer("msg_3kTq8dZ2", outcome)
    conforms(sessions.SessionsCancel, body)
    assert (status, body["status"]) in {(202, "cancelling"), (200, "already_complete")}


@pytest.mark.parametrize("canceled", [True, False])
def test_an_omni_cancel_answers_the_sdks_envelope(canceled: bool) -> None:
    conforms(omni.OmniCancelEnvelope, omni_wire.envelope({"canceled": canceled}, "req-1"))


def test_a_cancel_before_start_answers_its_model_in_llm_and_tasks() -> None:
    conforms(llm.LlmCancelledBeforeStart, llm_wire.cancelled_before_start("key-1"))
    conforms(tasks.TaskCancelledBeforeStart, tasks_wire.cancelled_before_start("key-1", 1_700_000_000_000))


def test_the_chat_answers_its_service_and_cancel_build_are_their_models() -> None:
    conforms(chat.ChatCancelled, chat_wire.cancel_answer("thread_a"))
    conforms(chat.ChatConfirmed, chat_wire.confirm_answer("thread_a", "Created a meeting."))
    conforms(chat.ChatReply, chat_wire.chat_answer("thread_a", "Hello", None))
    conforms(chat.ChatReply, chat_wire.chat_answer("thread_a", "I can do that.", "Should I?"))
    message = chat_wire.message_body("user", "Hi", 1_700_000_000_000)
    action = chat_wire.action_body("act_1", "meeting", "A meeting", "pending", 1_700_000_000_000, None)
    conforms(chat.ChatMessage, message)
    conforms(chat.ChatAction, action)
    conforms(chat.ChatThread, chat_wire.thread_body("thread_a", [message], [action]))


def test_the_chat_streams_events_are_the_seeds_framing() -> None:
    for ev in (
        Event(1, "token.delta", {"thread_id": "thread_a", "delta": "Hi"}),
        Event(2, "done", {"thread_id": "thread_a"}),
    ):
        name, data = chat_wire.wire_event(ev)
        conforms(chat.ChatStreamEvent, {"event_type": name, "data": data})


def test_a_session_turns_events_are_their_models_completed_or_cancelled(env: Env) -> None:
    done, stopped = start(env, "Write a 3-word note"), start(env, "Write a 9-word note")
    assert runner(env, HookModel(3)).handle(done.id) == "completed"
    assert runner(env, HookModel(9, hooks={2: lambda: cancel(env, stopped.id)})).handle(stopped.id) == "cancelled"
    model_of: dict[str, type[BaseModel]] = {"created": sessions.TurnCreatedEvent, "delta": sessions.TurnDeltaEvent}
    seen = set()
    for ev in events(env, done.id) + events(env, stopped.id):
        kind = ev.type.split(".", 1)[1]
        conforms(model_of.get(kind, sessions.TurnEndEvent), ev.data)
        seen.add(kind)
    assert seen == {"created", "delta", "completed", "cancelled"}


def test_a_bulk_cancels_report_is_its_model_running_or_completed() -> None:
    request = BulkRequest(BulkScope("acme", end_user="user-42"), created_before=1_700_000_000_000, reason="left")
    running = Report("bulk_1", request, "api", created_at=1_700_000_000_000, expires_at=1_700_086_400_000)
    done = Report(
        "bulk_2", request, "queue", 1_700_000_000_000, 1_700_086_400_000, "completed", pages=2, completed_at=1
    )
    for report in (running, done):
        conforms(sessions.BulkCancelReport, report_json(report))
