"""Run an example agent as a remote worker: in a process (container, host) of its own, serving a
remote route's turns through turnstop's worker API (docs/agents.md#remote-workers-an-agent-in-its-own-process).

    TURNSTOP_WORKER_KEY=<the route's worker key> \
        python -m examples.remote_worker http://127.0.0.1:3000 <queue> examples.strands_agent:handle

The handler is the same function an in-process route names: a handler does not know where it
runs. The key comes from the environment, never the command line (which other users can read).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from turnstop.worker.remote import RemoteWorker


def handler(spec: str) -> Callable[[Any], None]:
    """``"package.module:function"`` → the function."""
    module, _, name = spec.partition(":")
    found: Callable[[Any], None] = getattr(importlib.import_module(module), name)
    return found


def main(argv: list[str]) -> None:
    if len(argv) != 3 or "TURNSTOP_WORKER_KEY" not in os.environ:
        raise SystemExit(
            "usage: TURNSTOP_WORKER_KEY=<key> python -m examples.remote_worker <base url> <queue> <module:function>"
        )
    logging.basicConfig(level=logging.INFO)
    base_url, queue, spec = argv
    RemoteWorker(base_url, os.environ["TURNSTOP_WORKER_KEY"], queue).run(handler(spec))


if __name__ == "__main__":
    main(sys.argv[1:])
