"""Tasks dialect on moto: the shared cases in tests/cases/tasks_cases.py."""

from tests.cases.tasks_cases import *  # noqa: F403
