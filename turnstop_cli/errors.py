"""Exit codes and the one error type the commands raise (docs/cli.md, *Exit codes*)."""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    OK = 0
    API_ERROR = 1  # the API answered with an error other than the ones below (or a bulk cancel left failures)
    USAGE = 2  # bad arguments: the command was not sent
    NOT_FOUND = 3  # no such turn (unknown, another tenant's, or past its grace window)
    AUTH = 4  # no key, an unknown key (401), or a key not allowed to do this (403)
    UNREACHABLE = 5  # no answer: nothing listens there, the connection failed or timed out


class CliError(Exception):
    """What a command prints (on stderr) before it exits with ``code``."""

    def __init__(
        self, message: str, code: ExitCode, *, status: int | None = None, body: Any = None, hint: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.body = body
        self.hint = hint

    def to_json(self) -> dict[str, Any]:
        return {
            "error": {
                "exit_code": int(self.code),
                "kind": self.code.name.lower(),
                "message": self.message,
                "http_status": self.status,
                "body": self.body,
                "hint": self.hint,
            }
        }


def usage(message: str, hint: str | None = None) -> CliError:
    return CliError(message, ExitCode.USAGE, hint=hint)
