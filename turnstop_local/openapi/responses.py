"""The models the OpenAPI tables name, in one place. Each answer's model is the layer's own
(``turnstop.dialects.<name>.answers``: the handlers build the answer through it, or check
their plain dicts against it in tests), described nowhere else; the bodies the code reads by
hand are in :mod:`turnstop_local.openapi.requests`. The one model of this module is AWS's own
answer, which no handler sends. (:mod:`turnstop_local.openapi.spec` imports it, after putting
the layer on the path.)
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from turnstop.dialects.chat.answers import (
    ChatAction,
    ChatCancelled,
    ChatConfirmed,
    ChatError,
    ChatEventData,
    ChatMessage,
    ChatReply,
    ChatStreamEvent,
    ChatThread,
    SignedIn,
    SignedOut,
)
from turnstop.dialects.llm.answers import LlmCancelledBeforeStart, LlmError, LlmErrorDetail, LlmResponse, LlmStreamEvent
from turnstop.dialects.omni.answers import (
    OmniActiveResponseEnvelope,
    OmniCanceled,
    OmniCancelEnvelope,
    OmniContent,
    OmniCreated,
    OmniCreatedEnvelope,
    OmniError,
    OmniErrorDetail,
    OmniMessage,
    OmniMessagesEnvelope,
    OmniMetadata,
    OmniPageMetadata,
    OmniResponse,
    OmniResponseEnvelope,
    OmniThread,
    OmniThreadEnvelope,
    OmniThreadsEnvelope,
)
from turnstop.dialects.sessions.answers import (
    BulkCancelReport,
    DeletedSession,
    Ledger,
    LedgerEntry,
    Session,
    SessionsCancel,
    SessionsError,
    SessionsErrorDetail,
    TurnCreatedEvent,
    TurnDeltaEvent,
    TurnEndEvent,
    Usage,
)
from turnstop.dialects.tasks.answers import (
    TaskCancelledBeforeStart,
    TaskList,
    TaskObject,
    TasksError,
    TasksErrorDetail,
    TaskWarning,
)
from turnstop_local.openapi.requests import (
    AnyJson,
    BulkCancelRequest,
    BulkScope,
    CancelReason,
    ChatThreadRef,
    StrictCancelReason,
)


class GatewayError(BaseModel):
    """AWS's own answer, before any function runs: API Gateway's (unknown route, body over
    10 MB, a throttled invocation, an integration that failed or timed out) or a streaming
    Function URL's throttle (``{"Reason", "Type", "message"}``)."""

    model_config = ConfigDict(extra="allow")
    message: str


__all__ = [
    "AnyJson",
    "BulkCancelReport",
    "BulkCancelRequest",
    "BulkScope",
    "CancelReason",
    "ChatAction",
    "ChatCancelled",
    "ChatConfirmed",
    "ChatError",
    "ChatEventData",
    "ChatMessage",
    "ChatReply",
    "ChatStreamEvent",
    "ChatThread",
    "ChatThreadRef",
    "DeletedSession",
    "GatewayError",
    "Ledger",
    "LedgerEntry",
    "LlmCancelledBeforeStart",
    "LlmError",
    "LlmErrorDetail",
    "LlmResponse",
    "LlmStreamEvent",
    "OmniActiveResponseEnvelope",
    "OmniCancelEnvelope",
    "OmniCanceled",
    "OmniContent",
    "OmniCreated",
    "OmniCreatedEnvelope",
    "OmniError",
    "OmniErrorDetail",
    "OmniMessage",
    "OmniMessagesEnvelope",
    "OmniMetadata",
    "OmniPageMetadata",
    "OmniResponse",
    "OmniResponseEnvelope",
    "OmniThread",
    "OmniThreadEnvelope",
    "OmniThreadsEnvelope",
    "Session",
    "SessionsCancel",
    "SessionsError",
    "SessionsErrorDetail",
    "SignedIn",
    "SignedOut",
    "StrictCancelReason",
    "TaskCancelledBeforeStart",
    "TaskList",
    "TaskObject",
    "TaskWarning",
    "TasksError",
    "TasksErrorDetail",
    "TurnCreatedEvent",
    "TurnDeltaEvent",
    "TurnEndEvent",
    "Usage",
]
