"""The stateful property test on moto (bounded here; many more examples in make soak)."""

from tests.cases.stateful_cases import *  # noqa: F401,F403
