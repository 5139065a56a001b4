"""What the handlers answer, as pydantic models: the response side of the documents.

The handlers build their answers as dicts (``dialects/*/wire.py``, ``renderer.py``); these
models describe those dicts. They name every field a client can rely on and leave the objects
open (an answer may carry more), so the schemathesis run (tests/e2e/test_openapi_fuzz_e2e.py)
checks every answer against them and fails when a handler and its document part ways.

One module per dialect (and the errors, and the bodies read by hand); every model is
imported here, so ``responses.<Model>`` names it wherever it lives.
"""

from __future__ import annotations

from turnstop_local.openapi.responses.bodies import (
    AnyJson,
    CancelReason,
    ChatEventData,
    ChatStreamEvent,
    ChatThreadRef,
    LlmStreamEvent,
    StrictCancelReason,
    TurnCreatedEvent,
    TurnDeltaEvent,
    TurnEndEvent,
    Usage,
)
from turnstop_local.openapi.responses.chat import (
    ChatAction,
    ChatCancelled,
    ChatConfirmed,
    ChatMessage,
    ChatReply,
    ChatThread,
    SignedIn,
    SignedOut,
)
from turnstop_local.openapi.responses.errors import (
    ChatError,
    GatewayError,
    LlmError,
    LlmErrorDetail,
    OmniError,
    OmniErrorDetail,
    OmniMetadata,
    SessionsError,
    SessionsErrorDetail,
    TasksError,
    TasksErrorDetail,
)
from turnstop_local.openapi.responses.llm import LlmCancelledBeforeStart, LlmResponse
from turnstop_local.openapi.responses.omni import (
    OmniActiveResponseEnvelope,
    OmniCanceled,
    OmniCancelEnvelope,
    OmniContent,
    OmniCreated,
    OmniCreatedEnvelope,
    OmniMessage,
    OmniMessagesEnvelope,
    OmniPageMetadata,
    OmniResponse,
    OmniResponseEnvelope,
    OmniThread,
    OmniThreadEnvelope,
    OmniThreadsEnvelope,
)
from turnstop_local.openapi.responses.sessions import (
    BulkCancelReport,
    BulkCancelRequest,
    BulkScope,
    DeletedSession,
    Ledger,
    LedgerEntry,
    Session,
    SessionsCancel,
)
from turnstop_local.openapi.responses.tasks import TaskCancelledBeforeStart, TaskList, TaskObject, TaskWarning

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
