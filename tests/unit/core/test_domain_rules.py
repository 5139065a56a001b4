"""Billing, scopes, tokens and settings: pure rules, no AWS."""

from __future__ import annotations

from decimal import Decimal

import pytest

from turnstop.core import scopes
from turnstop.core.billing import ledger_for
from turnstop.core.events import PendingEvent, committed_text
from turnstop.core.scopes import Scope, ScopeKind
from turnstop.core.tokens import count_tokens, first_tokens
from turnstop.core.turn import Status, Usage
from turnstop.platform.settings import Settings, SettingsError


@pytest.mark.parametrize("status", [Status.COMPLETED, Status.INCOMPLETE])
def test_billed_turns_get_a_usage_record_and_one_debit_at_the_token_price(status: Status) -> None:
    usage, debit = ledger_for(status, Usage(10, 1234))
    assert usage.kind == "usage" and usage.data == {
        "input_tokens": 10,
        "output_tokens": 1234,
        "status": status.value,
        "billed": True,
    }
    assert debit.kind == "debit" and Decimal(debit.data["credits"]) == Decimal("1.244")


@pytest.mark.parametrize("status", [Status.CANCELLED, Status.FAILED])
def test_cancelled_and_failed_turns_are_never_debited(status: Status) -> None:
    entries = ledger_for(status, Usage(10, 50))
    assert [e.kind for e in entries] == ["usage"] and entries[0].data["billed"] is False


@pytest.mark.parametrize(
    "scope", [scopes.session("sess_1"), scopes.STATELESS, scopes.omni(7), scopes.LLM_BACKGROUND, scopes.TASKS]
)
def test_a_scope_round_trips_through_its_stored_form(scope: Scope) -> None:
    assert Scope.parse(str(scope)) == scope


def test_only_a_session_scope_names_a_session_slot() -> None:
    assert scopes.session("sess_1").session_id == "sess_1"
    assert scopes.omni(1).session_id is None and scopes.STATELESS.session_id is None
    assert str(scopes.omni(3)) == "omni:3" and Scope.parse("llm:fg") == Scope(ScopeKind.LLM, "fg")
    with pytest.raises(ValueError):
        Scope.parse("nonsense:1")


def test_tokens_are_whitespace_words_and_a_cut_keeps_the_spacing() -> None:
    assert count_tokens("  one two\nthree ") == 3
    assert first_tokens("one two three four", 2) == "one two "
    assert first_tokens("one two", 5) == "one two"


def test_only_text_deltas_count_as_output() -> None:
    events = [
        PendingEvent("response.created", {"id": "x"}),
        PendingEvent("response.delta", {"delta": "a "}),
        PendingEvent("omni.thought", {"thought": "hmm"}),
        PendingEvent("omni.text.delta", {"delta": "b"}),
    ]
    assert committed_text(events) == "a b"


def test_every_setting_is_read_from_its_derived_environment_name() -> None:
    samples = {"int": ("7", 7), "float": ("2.5", 2.5), "bool": ("true", True)}
    env: dict[str, str] = {}
    expected: dict[str, object] = {}
    for name, kind in Settings.kinds().items():
        raw, value = samples.get(kind, ("value-x", "value-x"))  # the rest are (optional) strings
        env[Settings.env_name(name)] = raw
        expected[name] = value
    settings = Settings.from_env(env)
    assert {name: getattr(settings, name) for name in expected} == expected
    assert Settings.env_name("persistent_session_days") == "TURNSTOP_PERSISTENT_SESSION_DAYS"


def test_a_setting_out_of_its_range_or_of_the_wrong_type_is_refused_at_cold_start() -> None:
    for env in (
        {"TURNSTOP_TABLE": "t-1", "TURNSTOP_FLUSH_BYTES": "0"},
        {"TURNSTOP_TABLE": "t-1", "TURNSTOP_GRACE_SECONDS": "soon"},
        {"TURNSTOP_TABLE": "t-1", "TURNSTOP_CANCEL_CHECK_CONSISTENT": "maybe"},
        {"TURNSTOP_TABLE": "t-1", "TURNSTOP_CALLBACK_MAX_ATTEMPTS": "51"},
        {"TURNSTOP_GRACE_SECONDS": "1"},
    ):
        with pytest.raises(SettingsError):
            Settings.from_env(env)


def test_empty_environment_values_mean_the_default() -> None:
    settings = Settings.from_env({"TURNSTOP_TABLE": "t-1", "TURNSTOP_GRACE_SECONDS": ""})
    assert settings.grace_seconds == 120
