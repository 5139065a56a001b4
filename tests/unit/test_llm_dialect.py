"""LLM dialect on moto: the shared cases in tests/cases/llm_cases.py."""

from tests.cases.llm_cases import *  # noqa: F403
