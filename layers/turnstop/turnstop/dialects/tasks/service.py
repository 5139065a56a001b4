"""The tasks dialect's operations on the shared core: create, read, list and cancel.

- create: the turn, its first event, its charge and its Idempotency-Key binding in one
  transaction (``store.tasks.start`` through ``DialectService.start``, the one replay rule),
  then queued. A replay answers what the first create answered (the task as it was created).
- cancel: one conditional UpdateItem (``Turns.request_cancel``) decides; its answer is the task
  as it stands then. With an Idempotency-Key the key is bound first and the answer kept, so a
  replay repeats it byte for byte (``store.answers``; see idempotency/answers.py).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from turnstop.auth import Principal
from turnstop.core import errors, scopes
from turnstop.core.ids import new_id
from turnstop.core.records import LedgerEntry, NewTurn
from turnstop.core.tokens import count_tokens
from turnstop.core.turn import Turn
from turnstop.dialects.service import DialectService, Enqueue
from turnstop.dialects.tasks import answers, ids, models, pricing, views, wire
from turnstop.dialects.tasks.renderer import ID_PREFIX, KIND, WIRE_STATUS, created_event
from turnstop.dialects.tasks.wire import Answer
from turnstop.idempotency.bindings import KeyBinding
from turnstop.platform.settings import Settings
from turnstop.providers.config import Route, routes_for
from turnstop.providers.models import estimate_tokens
from turnstop.runtime.model import requested_words
from turnstop.store import Store
from turnstop.store.tasks import index_keys
from turnstop.webhooks import Resolve, UnsafeUrl, check_url, system_resolve

# the seed's statuses → the effective internal ones a list filter matches
STATUS_FILTER = {w: frozenset(s for s, v in WIRE_STATUS.items() if v == w) for w in set(WIRE_STATUS.values())}


TEMPLATE_TOKENS = 16  # what a chat template may add around a prompt, held with it


def hold(route: Route, prompt: str, cap: int | None) -> tuple[int, int, int]:
    """(input tokens as estimated, input tokens held, output tokens held) for a new task: the
    most it may use, charged at acceptance, the rest refunded at the end."""
    if route.provider == "scripted":  # its tokens are words; it says what it will write
        input_tokens = held_input = count_tokens(prompt)
        expected = requested_words(prompt)
    else:  # a real model may write up to the route's cap; its input is held at its most (a
        # token is at least a byte, and a chat template adds a few)
        input_tokens, held_input = estimate_tokens(prompt), len(prompt.encode()) + TEMPLATE_TOKENS
        expected = route.max_output_tokens
    return input_tokens, held_input, expected if cap is None else min(expected, cap)


class Tasks(DialectService):
    def __init__(
        self,
        store: Store,
        settings: Settings,
        enqueue: Enqueue | None = None,
        *,
        resolve: Resolve = system_resolve,
    ) -> None:
        super().__init__(store, settings, enqueue)
        self.resolve = resolve

    @property
    def retention_ms(self) -> int:
        return int(self.settings.tasks_retention_seconds * 1000)

    # ------------------------------------------------------------------ create

    def _resolve_model(self, body: models.CreateTask) -> str:
        routes = routes_for(self.settings.models)
        if body.capability not in pricing.CAPABILITIES:
            raise errors.InvalidRequest(
                f"Unsupported capability '{body.capability}'; supported: {', '.join(pricing.CAPABILITIES)}",
                code="unsupported_capability",
            )
        supported = pricing.supported_models(routes, body.capability)
        resolved = pricing.auto_model(routes, body.capability) if body.model == pricing.AUTO else body.model
        if resolved not in supported:
            raise errors.InvalidRequest(
                f"Unsupported model '{body.model}' for capability '{body.capability}'; "
                f"use 'auto' or one of: {', '.join(supported)}",
                code="unsupported_model",
            )
        return resolved

    def _callback_url(self, body: models.CreateTask) -> str | None:
        if body.callback is None:
            return None
        try:
            check_url(body.callback.url, allow_loopback=self.settings.callback_allow_loopback, resolve=self.resolve)
        except UnsafeUrl as e:
            raise errors.InvalidRequest(f"Invalid field 'callback.url': {e}", code="invalid_callback_url") from None
        return body.callback.url

    def create(
        self,
        principal: Principal,
        body: models.CreateTask,
        idempotency: KeyBinding | None,
        links_base: str,
        *,
        max_duration_ms: int | None = None,
    ) -> Answer:
        """202 with the queued task; charged in the transaction that creates it."""
        resolved = self._resolve_model(body)
        url = self._callback_url(body)
        prompt = body.input.prompt
        route = routes_for(self.settings.models).routes[resolved]
        price = pricing.route_price(route)
        input_tokens, held_input, expected = hold(route, prompt, body.input.max_output_tokens)
        charge = pricing.estimate(price, held_input, expected)
        task_id = new_id(ID_PREFIX)
        new = NewTurn(
            id=task_id,
            kind=KIND,
            tenant=principal.tenant,
            scope=scopes.TASKS,
            grace_ms=self.retention_ms,
            input={
                "prompt": prompt,  # what the runner feeds the model
                "max_output_tokens": body.input.max_output_tokens,  # where the runner cuts it
                "capability": body.capability,
                "model": body.model,
                "resolved_model": resolved,
                "route": resolved,  # the TURNSTOP_MODELS route that runs it
                "price_credits": pricing.price_item(price),
                "metadata": body.metadata,
                "input": body.input.model_dump(exclude_none=True),
                "callback_url": url,
                "expected_output_tokens": expected,
                "charged_credits": pricing.amount(charge),
                "links_base": links_base,
            },
            end_user=principal.end_user,
            input_tokens=input_tokens,
            index_keys=index_keys(principal.tenant, task_id, self.store.now()),
            max_duration_ms=max_duration_ms,
        )
        entry = LedgerEntry(
            "charge",
            {
                "credits": pricing.amount(charge),
                "credits_usd_reference": pricing.amount(pricing.usd(charge)),
                "model": resolved,
                "input_tokens": held_input,
                "estimated_output_tokens": expected,
            },
        )
        write = lambda: self.store.tasks.start(new, created_event, entry, idempotency)  # noqa: E731
        turn, replayed = self.start(write, principal, idempotency)
        body_ = wire.task_object(wire.as_created(turn), text="")
        return dataclasses.replace(Answer.of(202, body_, location=body_["links"]["self"]), replayed=replayed)

    # ------------------------------------------------------------------ reads

    def _find(self, principal: Principal, task_id: str) -> Turn:
        ids.check_task_id(task_id)
        turn = self.store.turns.get_visible(
            task_id, tenant=principal.tenant, kinds=(KIND,), scope=scopes.TASKS, end_user=principal.end_user
        )
        if turn is None:
            raise errors.NotFound(wire.TASK_NOT_FOUND)
        return turn

    def view(self, turn: Turn, warnings: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return views.task(self.store, turn, warnings)

    def get(self, principal: Principal, task_id: str) -> dict[str, Any]:
        return self.view(self._find(principal, task_id))

    def list_tasks(self, principal: Principal, status: str | None, limit: int, after: str | None) -> dict[str, Any]:
        """Newest first; list items leave ``output`` out (``{}``): a page is one query and one
        batch read whatever its tasks produced."""
        turns, cursor = self.store.tasks.page(
            principal.tenant,
            limit=limit,
            statuses=STATUS_FILTER[status] if status else None,
            end_user=principal.end_user,
            after=after,
        )
        callbacks = self.store.callbacks.get_many([t.id for t in turns if t.terminal and t.input.get("callback_url")])
        return answers.task_list(
            [wire.task_object(t, text=None, callback=callbacks.get(t.id)) for t in turns],
            None if cursor is None else models.encode_cursor(cursor),
        )

    # ------------------------------------------------------------------ cancel
