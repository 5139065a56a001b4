"""Request bodies of the chat dialect. A cancel's and a confirm's ``{"thread_id"}`` is read
without a model (``threads.thread_id_of``): the cancel function loads no pydantic."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

from turnstop.dialects.chat.threads import MAX_THREAD_ID_CHARS

MAX_MESSAGE_CHARS = 32_000


class SendMessage(BaseModel):
    """``POST /chat`` and ``POST /chat/stream``: a message, on a new thread or an existing one."""

    model_config = ConfigDict(extra="ignore")
    message: StrictStr = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    thread_id: StrictStr | None = Field(default=None, min_length=1, max_length=MAX_THREAD_ID_CHARS)

    @field_validator("message")
    @classmethod
    def not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value
