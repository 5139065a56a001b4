"""Chat dialect on moto: the shared cases in tests/cases/chat_cases.py and chat_signin_cases.py."""

from tests.cases.chat_cases import *  # noqa: F403
from tests.cases.chat_signin_cases import *  # noqa: F403
