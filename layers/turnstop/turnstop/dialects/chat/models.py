"""Request bodies of the chat dialect."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

MAX_MESSAGE_CHARS = 32_000
MAX_THREAD_ID_CHARS = 128


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


class ThreadRef(BaseModel):
    """``POST /chat/cancel`` and ``POST /chat/confirm``."""

    model_config = ConfigDict(extra="ignore")
    thread_id: StrictStr = Field(min_length=1, max_length=MAX_THREAD_ID_CHARS)
