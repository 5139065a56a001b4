"""Wire models of the llm dialect's requests, and the model allowlist."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, field_validator

# The models an unconfigured deployment serves (all run by the scripted model; see docs/llm.md):
# the default routes of TURNSTOP_MODELS (providers/config.py). A configured deployment serves
# its routes' names.
MODELS = frozenset(
    {
        "meetkai:functionary-urdu-mini-pak",
        "meetkai:functionary-pt",
        "turnstop:scripted",
        "turnstop:scripted-mini",
    }
)
MAX_METADATA_KEYS = 16
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 512


class ContentPart(BaseModel):
    """A text part of a message (``input_text``; ``output_text`` for earlier assistant turns)."""

    model_config = ConfigDict(extra="ignore")
    type: Literal["input_text", "output_text", "text"]
    text: StrictStr


class MessageItem(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: StrictStr | list[ContentPart]

    @property
    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content)


class CreateResponse(BaseModel):
    """``POST /api/v1/llm/responses``. Unknown fields are ignored; known ones are type-checked."""

    model_config = ConfigDict(extra="ignore")
    model: StrictStr
    input: StrictStr | list[MessageItem]
    instructions: StrictStr | None = None
    background: StrictBool = False
    stream: StrictBool = False
    store: StrictBool = True
    metadata: dict[StrictStr, StrictStr] | None = None
    max_output_tokens: StrictInt | None = Field(default=None, ge=1)
    previous_response_id: StrictStr | None = None
    temperature: StrictFloat | StrictInt | None = Field(default=None, ge=0, le=2)
    top_p: StrictFloat | StrictInt | None = Field(default=None, ge=0, le=1)
    parallel_tool_calls: StrictBool = True
    max_tool_calls: StrictInt | None = Field(default=None, ge=1)
    truncation: Literal["auto", "disabled"] = "auto"
    service_tier: Literal["auto", "default", "flex", "priority"] | None = None
    user: StrictStr | None = None
    tool_choice: Literal["none", "auto", "required"] = "auto"
    tools: list[Any] = Field(default_factory=list, max_length=0)
    # turnstop's own: the response's deadline (or the Turnstop-Max-Duration header)
    max_duration_seconds: StrictFloat | StrictInt | None = None

    @field_validator("metadata")
    @classmethod
    def _metadata_limits(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        if v is None:
            return v
        if len(v) > MAX_METADATA_KEYS:
            raise ValueError(f"at most {MAX_METADATA_KEYS} keys")
        for k, val in v.items():
            if len(k) > MAX_METADATA_KEY_CHARS:
                raise ValueError(f"keys are at most {MAX_METADATA_KEY_CHARS} characters")
            if len(val) > MAX_METADATA_VALUE_CHARS:
                raise ValueError(f"values are at most {MAX_METADATA_VALUE_CHARS} characters")
        return v

    @property
    def prompt(self) -> str:
        """What the model reads: the input text (every message's text, in order)."""
        if isinstance(self.input, str):
            return self.input
        return "\n".join(m.text for m in self.input)

    def to_turn_input(self) -> dict[str, Any]:
        """Every request field the response object echoes, plus the prompt for the model. The
        input itself is stored once, as the prompt (the response object does not echo it)."""
        raw = self.model_dump(mode="json", exclude={"stream", "tools", "input", "max_duration_seconds"})
        raw["prompt"] = self.prompt
        raw["route"] = self.model  # the TURNSTOP_MODELS route that runs it
        if not isinstance(self.input, str):  # the conversation as sent, for the model
            raw["messages"] = [{"role": m.role, "content": m.text} for m in self.input]
        return raw
