"""The omni dialect's operations on the shared core: threads, turns, polling, cancel, history.

Authorization order on every call: the key (401), ``account_id`` present and numeric (400),
the key may act for that account (403, decided from the principal, before any read or
write), then the resource must be linked to that account and tenant and within retention
(else 404, indistinguishable from unknown).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from turnstop.auth import Principal
from turnstop.core import errors, scopes
from turnstop.core.records import NewTurn
from turnstop.core.tokens import count_tokens
from turnstop.core.turn import Status, Turn
from turnstop.dialects.omni import answers, models, query
from turnstop.dialects.omni.query import authorize
from turnstop.dialects.omni.renderer import OMNI_KIND, assistant_message, created_event, text_parts
from turnstop.dialects.omni.wire import QUERY_PREFIX, RESPONSE_NOT_FOUND, THREAD_NOT_FOUND
from turnstop.dialects.service import DialectService
from turnstop.idempotency.bindings import KeyBinding
from turnstop.store.omni_threads import OmniMessage, OmniThread

TITLE_CHARS = 80


def new_uuid() -> str:
    return str(uuid.uuid4())


def title_of(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"


# ---------------------------------------------------------------------------- the service


class Omni(DialectService):
    @property
    def response_retention_ms(self) -> int:
        return int(self.settings.omni_response_retention_seconds * 1000)

    @property
    def thread_retention_ms(self) -> int:
        return int(self.settings.omni_thread_retention_days * 86_400_000)

    # -- creating turns

    def _new_turn(
        self,
        principal: Principal,
        account_id: int,
        thread_id: str,
        user_seq: int,
        prompt: str,
        thread_expires_at: int,
        capabilities: list[str],
        type_: str,
        max_duration_ms: int | None = None,
    ) -> NewTurn:
        return NewTurn(
            id=new_uuid(),
            kind=OMNI_KIND,
            tenant=principal.tenant,
            scope=scopes.omni(account_id),
            grace_ms=self.response_retention_ms,
            input={
                "prompt": prompt,
                "type": type_,
                "capabilities": capabilities,
                "thread_id": thread_id,
                "user_message_id": new_uuid(),
                "assistant_message_id": new_uuid(),
                "user_seq": user_seq,
                "thread_expires_at": thread_expires_at,
            },
            end_user=principal.end_user,
            account_id=account_id,
            input_tokens=count_tokens(prompt),
            max_duration_ms=max_duration_ms,
            thread_id=thread_id,  # a bulk cancel of the thread finds it (store/live.py)
        )

    def _user_message(self, new: NewTurn, text: str, context: models.TurnContext | None, now: int) -> OmniMessage:
        return OmniMessage(
            id=new.input["user_message_id"],
            thread_id=new.input["thread_id"],
            seq=new.input["user_seq"],
            role="USER",
            parts=text_parts(text),
            outcome="completed",
            created_at=now,
            response_id=new.id,
            context=None if context is None else context.model_dump(mode="json", exclude_none=True),
        )

    def create_thread(
        self,
        principal: Principal,
        body: models.CreateThread,
        idempotency: KeyBinding | None = None,
        *,
        max_duration_ms: int | None = None,
    ) -> dict[str, Any]:
        authorize(principal, body.account_id)
        now = self.store.now()
        thread_id = new_uuid()
        expires = now + self.thread_retention_ms
        new = self._new_turn(
            principal,
            body.account_id,
            thread_id,
            1,
            body.prompt,
            expires,
            list(body.capabilities),
            body.type,
            max_duration_ms,
        )
        thread = OmniThread(
            id=thread_id,
            tenant=principal.tenant,
            account_id=body.account_id,
            title=title_of(body.visible_text),
            created_at=now,
            updated_at=now,
            next_seq=3,
            expires_at=expires,
            last_response=new.id,
            end_user=principal.end_user,
        )
        user = self._user_message(new, body.visible_text, body.context, now)
        write = lambda: self.store.omni_threads.create_thread(thread, user, new, created_event, idempotency)  # noqa: E731
        return answers.created(self.start(write, principal, idempotency)[0])

    def create_message(
        self,
        principal: Principal,
        thread_id: str,
        body: models.CreateMessage,
        idempotency: KeyBinding | None = None,
        *,
        max_duration_ms: int | None = None,
    ) -> dict[str, Any]:
        authorize(principal, body.account_id)
        thread = self._thread(principal, thread_id, body.account_id)
        now = self.store.now()
        new = self._new_turn(
            principal,
            body.account_id,
            thread.id,
            thread.next_seq,
            body.text,
            thread.expires_at,
            list(body.capabilities),
            "instant",
            max_duration_ms,
        )
        user = self._user_message(new, body.text, body.context, now)
        write = lambda: self.store.omni_threads.add_message(thread, user, new, created_event, idempotency)  # noqa: E731
        return answers.created(self.start(write, principal, idempotency)[0])

    # -- responses

    def _response(self, principal: Principal, response_id: str, account_id: int) -> Turn:
        authorize(principal, account_id)
        if not query.is_id(response_id):
            raise errors.NotFound(RESPONSE_NOT_FOUND)
        turn = self.store.turns.get_visible(
            response_id,
            tenant=principal.tenant,
            kinds=(OMNI_KIND,),
            scope=scopes.omni(account_id),
            end_user=principal.end_user,
        )
        if turn is None:
            raise errors.NotFound(RESPONSE_NOT_FOUND)
        return turn

    def get_response(self, principal: Principal, response_id: str, account_id: int) -> dict[str, Any]:
        return self._response_body(self._response(principal, response_id, account_id))

    def _response_body(self, turn: Turn) -> dict[str, Any]:
        return answers.response_body(turn, self.store.turns.read_events(turn.id, 0, turn.seq))

    # -- threads

    def _thread(self, principal: Principal, thread_id: str, account_id: int) -> OmniThread:
        authorize(principal, account_id)
        if not query.is_id(thread_id):
            raise errors.NotFound(THREAD_NOT_FOUND)
        thread = self.store.omni_threads.get_thread(thread_id)
        if thread is None or not thread.visible_to(principal.tenant, account_id, self.store.now(), principal.end_user):
            raise errors.NotFound(THREAD_NOT_FOUND)
        return thread

    def get_thread(self, principal: Principal, thread_id: str, account_id: int) -> dict[str, Any]:
        return answers.thread_body(self._thread(principal, thread_id, account_id))

    def get_thread_response(self, principal: Principal, thread_id: str, account_id: int) -> dict[str, Any] | None:
        """The active (queued or running) response of a thread, or None when idle. A response
        whose cancel was accepted stays the thread's active one until its worker ends it (a new
        message is refused until then), and reads ``canceled`` meanwhile."""
        thread = self._thread(principal, thread_id, account_id)
        if not thread.last_response:
            return None
        turn = self.store.turns.get(thread.last_response)
        visible = turn is not None and turn.visible_to(principal.tenant, scopes.omni(account_id), principal.end_user)
        if turn is None or turn.terminal or not visible:
            return None
        return self._response_body(turn)

    def list_threads(
        self, principal: Principal, account_id: int, page_size: int, page_token: str | None
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        authorize(principal, account_id)
        after = None
        if page_token:
            tok = query.decode_token(page_token, ("a", "k", "id"))
            # a thread cursor is exactly what list_threads handed out: "<created_at:015d>#<id>", id
            k, tid = tok["k"], tok["id"]
            if (
                tok["a"] != account_id
                or not isinstance(k, str)
                or not isinstance(tid, str)
                or not query.is_id(tid)
                or not re.fullmatch(r"\d{15}#" + re.escape(tid), k)
            ):
                raise errors.InvalidRequest(QUERY_PREFIX + "page_token: invalid page token")
            after = (tok["k"], tok["id"])
        threads, cursor = self.store.omni_threads.list_threads(
            principal.tenant, account_id, page_size, after, principal.end_user
        )
        now = self.store.now()
        data = [
            answers.thread_body(t)
            for t in threads
            if t.visible_to(principal.tenant, account_id, now, principal.end_user)
        ]
        meta: dict[str, Any] = {}
        if cursor is not None:
            meta["next_page_token"] = query.encode_token({"a": account_id, "k": cursor[0], "id": cursor[1]})
        return data, meta

    def get_messages(
        self, principal: Principal, thread_id: str, account_id: int, page_size: int, page_token: str | None
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """A page of the history by seq: the latest by default, chronological within the page.
        ``next_page_token`` goes to older messages, ``previous_page_token`` to newer ones."""
        thread = self._thread(principal, thread_id, account_id)
        last = thread.last_seq
        size = page_size
        if page_token:
            tok = query.decode_token(page_token, ("t", "n"))
            bound = tok.get("hi", tok.get("lo"))
            if (
                tok["t"] != thread.id
                or not isinstance(tok["n"], int)
                or not 1 <= tok["n"] <= query.MAX_PAGE_SIZE
                or not isinstance(bound, int)
                or bound < 0
            ):
                raise errors.InvalidRequest(QUERY_PREFIX + "page_token: invalid page token")
            size = tok["n"]
            if "hi" in tok:
                hi = min(bound, last)
                lo = max(0, hi - size)
            else:
                lo = min(bound, last)
                hi = min(last, lo + size)
        else:
            hi = last
            lo = max(0, hi - size)
        stored = {m.seq: m for m in self.store.omni_threads.messages(thread.id, lo, hi)}
        for seq in range(lo + 1, hi + 1):
            if seq % 2 == 0 and seq not in stored:
                derived = self._derived_assistant(thread.id, seq, stored.get(seq - 1))
                if derived is not None:
                    stored[seq] = derived
        data = [answers.message_body(stored[s]) for s in sorted(stored)]
        meta: dict[str, Any] = {}
        if lo > 0:
            meta["next_page_token"] = query.encode_token({"t": thread.id, "hi": lo, "n": size})
        if hi < last:
            meta["previous_page_token"] = query.encode_token({"t": thread.id, "lo": hi, "n": size})
        return data, meta

    def _derived_assistant(self, thread_id: str, seq: int, user: OmniMessage | None) -> OmniMessage | None:
        """The ASSISTANT message of a turn whose cancel was accepted, before its worker wrote it:
        exactly what the worker will write (cancelled while queued: no text; while running: the
        output committed when the cancel was accepted). Other in-flight turns have no message yet."""
        user = user or self.store.omni_threads.get_message(thread_id, seq - 1)
        if user is None:
            return None
        turn = self.store.turns.get(user.response_id)
        if turn is None or turn.stored_status.terminal or turn.read_status is not Status.CANCELLED:
            return None
        upto = turn.seq if turn.cancel_seq is None else min(turn.seq, turn.cancel_seq)
        text = "" if turn.cancelled_before_start else self.store.turns.committed_text(turn.replace(seq=upto))
        return assistant_message(turn, Status.CANCELLED, text, None)
