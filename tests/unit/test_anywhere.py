"""Cancel from anywhere on moto (the same cases run on DynamoDB Local in tests/integration)."""

from tests.cases.anywhere_cases import *  # noqa: F401,F403
