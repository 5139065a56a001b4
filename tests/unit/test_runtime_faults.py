"""Runtime fault cases on moto (the same cases run on DynamoDB Local in tests/integration)."""

from tests.cases.fault_cases import *  # noqa: F401,F403
