"""The stateful property test on DynamoDB Local."""

from tests.cases.stateful_cases import *  # noqa: F401,F403
