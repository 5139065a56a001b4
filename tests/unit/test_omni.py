"""The omni dialect on moto (the same cases run on DynamoDB Local in tests/integration)."""

from tests.cases.omni_cases import *  # noqa: F401,F403
