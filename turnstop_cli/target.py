"""Which API the command talks to, and with which key.

- ``--base-url`` / ``TURNSTOP_BASE_URL``: that API (a deployed stack's ``BaseUrl`` output, or a
  local instance), with ``--api-key`` / ``TURNSTOP_API_KEY``.
- Otherwise the running local instance: ``make run`` describes itself in ``.turnstop/local.json``
  (``$TURNSTOP_STATE_DIR/local.json`` when set) — its URL and the dev key it seeded. The file is
  looked for in the working directory and its parents, then in the checkout the command was
  installed from.
- Otherwise ``http://127.0.0.1:3000`` (the local runtime's default port).
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_URL = "http://127.0.0.1:3000"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
CHECKOUT = Path(__file__).resolve().parent.parent  # the repository an editable install points into


@dataclass(frozen=True)
class Target:
    base_url: str
    api_key: str | None
    local: bool  # a local runtime (discovered, or a loopback URL)
    source: str  # how base_url was chosen: "option", "local.json", "default"
    state_file: Path | None = None
    state: Mapping[str, Any] = field(default_factory=dict)

    @property
    def unreachable_hint(self) -> str:
        if self.source == "local.json":
            return f"{self.state_file} names {self.base_url}, which does not answer: is `make run` still running?"
        if self.source == "default":
            return (
                "no local instance found: start one with `make run`, or name an API with --base-url / TURNSTOP_BASE_URL"
            )
        return "check --base-url / TURNSTOP_BASE_URL (a deployed stack's BaseUrl output)"


def _state_candidates(environ: Mapping[str, str], cwd: Path) -> list[Path]:
    state_dir = environ.get("TURNSTOP_STATE_DIR")
    if state_dir:  # as the local runtime itself does: this directory and no other
        return [Path(state_dir) / "local.json"]
    return [d / ".turnstop" / "local.json" for d in (cwd, *cwd.parents)] + [CHECKOUT / ".turnstop" / "local.json"]


def untrusted_because(path: Path, state: Any) -> str | None:
    """Why a ``local.json`` is not to be believed, or None. It hands out the caller's key, so it
    must be the caller's own (a file planted in a shared parent directory such as /tmp, or in a
    cloned repository, would otherwise send the key anywhere): owned by the current user, neither
    group- nor world-accessible (the local runtime writes it 0600), naming a loopback http URL."""
    try:
        info = path.stat()
    except OSError as error:
        return f"cannot stat it ({error})"
    getuid = getattr(os, "getuid", None)
    if getuid is not None and info.st_uid != getuid():
        return "it belongs to another user"
    if stat.S_IMODE(info.st_mode) & 0o077:
        return (
            f"other users may read or write it (mode {stat.S_IMODE(info.st_mode):04o}; the local runtime writes 0600)"
        )
    if not isinstance(state, dict) or not isinstance(state.get("url"), str):
        return "it names no url"
    try:
        parts = urlsplit(state["url"].strip())
        loopback = parts.scheme == "http" and (parts.hostname or "") in LOOPBACK_HOSTS
    except ValueError:
        loopback = False
    if not loopback:
        return f"its url {state['url']!r} is not a loopback http URL"
    return None


def read_local_state(
    environ: Mapping[str, str] | None = None, cwd: Path | None = None
) -> tuple[Path, dict[str, Any]] | None:
    """The running local instance's ``local.json`` (path and content), if a trustworthy one is
    found; one that is not (see :func:`untrusted_because`) is skipped with a note on stderr."""
    environ = os.environ if environ is None else environ
    for path in _state_candidates(environ, (cwd or Path.cwd()).resolve()):
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        why = untrusted_because(path, state)
        if why is not None:
            sys.stderr.write(f"note: ignoring {path}: {why}\n")
            continue
        return path, state
    return None


def check_api_key(key: str | None) -> str | None:
    """A key is sent as an ``Authorization`` header: printable ASCII without whitespace."""
    if key is not None and (not key or not all("!" <= c <= "~" for c in key)):
        from turnstop_cli.errors import usage

        raise usage(
            "the API key must be printable ASCII without spaces or line breaks",
            hint="check --api-key / TURNSTOP_API_KEY (a key read from a file may carry its newline)",
        )
    return key


def normalize_url(url: str) -> str:
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        from turnstop_cli.errors import usage

        raise usage(f"--base-url must be an http(s) URL such as {DEFAULT_URL}, not {url!r}")
    return url


def is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in LOOPBACK_HOSTS


def discover(
    base_url: str | None, api_key: str | None, environ: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Target:
    """Resolve the API and key from the options (already merged with their environment
    variables) and the local instance's description."""
    check_api_key(api_key)
    found = read_local_state(environ, cwd)
    path, state = found if found is not None else (None, {})
    dev_key = state.get("dev_api_key") if isinstance(state.get("dev_api_key"), str) else None
    if base_url:
        url = normalize_url(base_url)
        # compared as text, never parsed: a local.json with a corrupt url must not block an explicit target
        same = bool(state) and str(state["url"]).strip().rstrip("/") == url
        if same and api_key is None:
            check_api_key(dev_key)
        return Target(
            url,
            api_key or (dev_key if same else None),
            same or is_loopback(url),
            "option",
            path if same else None,
            state if same else {},
        )
    if state:
        local_url = normalize_url(state["url"])
        if api_key is None:
            check_api_key(dev_key)
        return Target(local_url, api_key or dev_key, True, "local.json", path, state)
    return Target(DEFAULT_URL, api_key, True, "default")
