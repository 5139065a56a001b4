"""The OpenAPI tables, one module per dialect (and one each for the operators' admin endpoints and the remote workers' API)."""

from __future__ import annotations

from turnstop_local.openapi.dialects.admin import ADMIN
from turnstop_local.openapi.dialects.chat import CHAT
from turnstop_local.openapi.dialects.llm import LLM
from turnstop_local.openapi.dialects.omni import OMNI
from turnstop_local.openapi.dialects.sessions import SESSIONS
from turnstop_local.openapi.dialects.tasks import TASKS
from turnstop_local.openapi.dialects.workers import WORKERS
from turnstop_local.openapi.spec import Dialect

DIALECTS: dict[str, Dialect] = {d.name: d for d in (SESSIONS, OMNI, LLM, TASKS, CHAT, ADMIN, WORKERS)}
