"""Runtime fault cases on DynamoDB Local."""

from tests.cases.fault_cases import *  # noqa: F401,F403
