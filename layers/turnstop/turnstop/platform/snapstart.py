"""SnapStart for the synchronous cancel functions: do the slow work once, before the snapshot,
and give each restored instance what must not be shared.

A function imports this module (``from turnstop.platform import snapstart``); that is all. Where the Lambda
runtime has SnapStart (its ``snapshot_restore_py`` module, present only in Lambda's managed
Python runtimes), importing it here:

- creates the DynamoDB client during init, so the snapshot holds boto3's imports and the client
  (the bulk of a cold start: ``make bench``'s cold init), and a restored instance's first cancel
  pays neither;
- registers :func:`after_restore`, which every restored instance runs before its first request:
  many instances are restored from one snapshot, so anything random or unique drawn at init
  would be the same in all of them. ``random`` (the transaction retries' jitter, botocore's
  backoff jitter) is re-seeded from the OS. ``secrets`` and ``uuid.uuid4`` read the OS each
  call and need nothing; the client holds no connection yet (none is opened at init), and it
  reads the execution role's credentials from the environment Lambda refreshes on restore.

Elsewhere (the local runtime, tests, a function without SnapStart) the import does nothing, so a
cold start stays lazy there.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

__all__ = ["ENABLED", "after_restore", "prepare"]

log = logging.getLogger(__name__)


def after_restore() -> None:
    """What each instance restored from the snapshot runs before serving."""
    random.seed()  # from os.urandom: no two restored instances share a sequence


def prepare(register: Callable[..., Any]) -> None:
    """Warm what the snapshot should hold, then register the restore hook with ``register``."""
    from turnstop.store.db import client

    client("dynamodb")
    register(after_restore)


def _register() -> bool:
    try:
        from snapshot_restore_py import register_after_restore
    except ImportError:  # not in Lambda (or a runtime without SnapStart): nothing to prepare
        return False
    prepare(register_after_restore)
    return True


ENABLED = _register()
