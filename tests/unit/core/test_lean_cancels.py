"""Every stop button starts lean: no cancel function, the cancels by Idempotency-Key and the
admin bulk cancel included, imports pydantic or the streaming runtime at cold start."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

CANCEL_FUNCTIONS = ["session_cancel", "response_cancel", "llm_cancel", "omni_cancel", "tasks_cancel", "admin_cancels"]
PROBE = """
import importlib.util, json, sys
sys.path[:0] = ["layers/turnstop"]
spec = importlib.util.spec_from_file_location("app", "functions/{name}/app.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
heavy = ("turnstop.runtime.runner", "turnstop.runtime.keeper", "turnstop.runtime.active", "turnstop.http.sse")
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "pydantic" or m in heavy)))
"""


@pytest.mark.parametrize("name", CANCEL_FUNCTIONS)
def test_a_cancel_function_imports_no_models_and_no_runtime(name: str) -> None:
    env = {**os.environ, "TURNSTOP_TABLE": "turnstop-lean", "AWS_DEFAULT_REGION": "us-east-1"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(name=name)], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
