"""Task callbacks on moto: the shared cases in tests/cases/task_callbacks_cases.py."""

from tests.cases.task_callbacks_cases import *  # noqa: F403
