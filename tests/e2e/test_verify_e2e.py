"""``make verify`` against the local runtime: the smoke test a deployment is checked with passes
here, one stream-and-cancel per dialect and one cancel through the queue, reading the running
instance's local.json as it does after ``make run``."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT
from tests.e2e.conftest import LocalApi


def test_make_verify_passes_against_the_running_local_instance(local_api: LocalApi) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "turnstop_cli.verify"],
        cwd=ROOT,
        env={**os.environ, "TURNSTOP_STATE_DIR": str(local_api.state_dir)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines[1:-1]] == ["ok"] * 5, done.stdout
    assert {line.split()[1] for line in lines[1:-1]} == {"sessions:", "llm:", "omni:", "tasks:", "queue:"}
    assert lines[-1] == "5/5 checks passed"
