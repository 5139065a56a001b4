"""Agent-framework tier (`make test-agents`): the unit tier's in-process store, with the
frameworks of requirements-agents.txt installed."""

from __future__ import annotations

from tests.cases.fixtures import env  # noqa: F401
from tests.unit.conftest import ddb_client, one_aws_call_at_a_time  # noqa: F401
