"""What the handlers check beyond their models (bounds, allowed names, non-blank text), taken
from the layer's own constants and merged into the generated schemas.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

import turnstop_local.openapi.spec  # noqa: F401  (puts the layer on sys.path first)
from turnstop.dialects.llm import models as llm_models
from turnstop.dialects.omni import models as omni_models
from turnstop.dialects.sessions import models as sessions_models
from turnstop.dialects.tasks import models as tasks_models
from turnstop.dialects.tasks import pricing
from turnstop.http.body import MAX_DURATION_SECONDS
from turnstop_local.openapi.spec import (
    REF,
)

NON_BLANK = "\\S"  # at least one character that is not white space
TASK_MODELS = sorted({"auto", *(m for ms in pricing.CAPABILITIES.values() for m in ms)})

# Rules a handler or a model validator enforces that the model's own schema cannot say,
# merged into the model's schema (their values come from the layer's own constants).
DEADLINE = {
    "properties": {
        "max_duration_seconds": {
            "anyOf": [{"type": "number", "exclusiveMinimum": 0, "maximum": MAX_DURATION_SECONDS}, {"type": "null"}],
            "description": "Seconds after which the runtime cancels the turn itself (or the "
            "Turnstop-Max-Duration header; both must agree)",
        }
    }
}
CHECKED_BEYOND: dict[str, dict[type[BaseModel], dict[str, Any]]] = {
    "sessions": {
        sessions_models.SendMessage: DEADLINE,
        sessions_models.CreateResponse: {
            **DEADLINE,
            "description": "`input` is the prompt (`message` is accepted too): one of them is required.",
            "anyOf": [
                {"properties": {"input": {"type": "string"}}, "required": ["input"]},
                {"properties": {"message": {"type": "string"}}, "required": ["message"]},
            ],
        },
    },
    "llm": {
        llm_models.CreateResponse: {
            "properties": {
                **DEADLINE["properties"],
                "model": {"enum": sorted(llm_models.MODELS)},
                "input": {
                    "anyOf": [
                        {"type": "string", "pattern": NON_BLANK},
                        {"type": "array", "items": {"$ref": REF.format(model="MessageItem")}, "minItems": 1},
                    ],
                    "description": "The prompt, or messages; it must contain some text",
                },
            }
        }
    },
    "tasks": {
        tasks_models.CreateTask: {
            "properties": {
                **DEADLINE["properties"],
                "capability": {"enum": sorted(pricing.CAPABILITIES)},
                "model": {"enum": TASK_MODELS, "description": "`auto`, or one of the capability's models"},
                "metadata": {
                    "maxProperties": tasks_models.MAX_METADATA_KEYS,
                    "propertyNames": {"minLength": 1, "maxLength": tasks_models.MAX_METADATA_KEY_CHARS},
                    "additionalProperties": {"type": "string", "maxLength": tasks_models.MAX_METADATA_VALUE_CHARS},
                },
            }
        },
        tasks_models.TaskInput: {"properties": {"prompt": {"pattern": NON_BLANK}}},
        tasks_models.CallbackSpec: {"properties": {"url": {"format": "uri"}}},
    },
    "omni": {
        omni_models.CreateThread: {
            "description": "`instant` takes `text`; `deep_insights` takes a `target` (and an optional `thesis`).",
            "properties": {"text": {"pattern": NON_BLANK}},
            "oneOf": [
                {"properties": {"type": {"const": "instant"}, "text": {"type": "string"}}, "required": ["text"]},
                {
                    "properties": {"type": {"const": "deep_insights"}, "target": {"type": "object"}},
                    "required": ["target"],
                },
            ],
        },
        omni_models.CreateMessage: {"properties": {"text": {"pattern": NON_BLANK}}},
        omni_models.ContextItem: {"properties": {"kind": {"pattern": NON_BLANK}, "label": {"pattern": NON_BLANK}}},
        omni_models.Target: {"properties": {"ticker": {"pattern": NON_BLANK}}},
    },
}


def deep_merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            deep_merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)
