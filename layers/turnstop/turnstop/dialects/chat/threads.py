"""A chat thread as a request reaches it: the ``{"thread_id"}`` a cancel or a confirm sends,
checked without a model (the cancel function loads no pydantic), and the one read that finds
the caller's live thread. The cancel function and the API function share these."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from turnstop.core import errors
from turnstop.core.ids import matches
from turnstop.http.body import json_object

if TYPE_CHECKING:
    from turnstop.dialects.chat.web import ChatUser
    from turnstop.store import Store
    from turnstop.store.chat import ChatThread

THREAD_PREFIX = "thread_"
MAX_THREAD_ID_CHARS = 128
THREAD_NOT_FOUND = "Thread not found"


def _invalid(problem: str) -> errors.InvalidRequest:
    return errors.InvalidRequest(f"Invalid field 'thread_id': {problem}")


def thread_id_of(event: Mapping[str, Any], max_bytes: int) -> str:
    """The body's ``thread_id`` (other fields are ignored): a string of 1 to 128 characters.
    Its 400s say what the request models say of ``POST /chat``'s ``thread_id``."""
    body = json_object(event, max_bytes) or {}
    if "thread_id" not in body:
        raise _invalid("Field required")
    value = body["thread_id"]
    if not isinstance(value, str):
        raise _invalid("Input should be a valid string")
    if not value:
        raise _invalid("String should have at least 1 character")
    if len(value) > MAX_THREAD_ID_CHARS:
        raise _invalid(f"String should have at most {MAX_THREAD_ID_CHARS} characters")
    return value


def check_thread_id(thread_id: str) -> None:
    """A malformed id names no thread: 404, as an unknown one."""
    if not matches(THREAD_PREFIX, thread_id):
        raise errors.NotFound(THREAD_NOT_FOUND)


def owned_thread(store: Store, user: ChatUser, thread_id: str) -> ChatThread:
    """The caller's live thread (one read); another user's, an unknown or an expired one is
    404, and all look the same."""
    check_thread_id(thread_id)
    thread = store.chat.get_thread(thread_id)
    if thread is None or not thread.visible_to(user.tenant, user.user, store.now()):
        raise errors.NotFound(THREAD_NOT_FOUND)
    return thread
