"""Cold init of the cancel functions, against what any Python Lambda touching DynamoDB pays:
``import boto3; boto3.client("dynamodb")``. Each is measured in a fresh interpreter (CPU
time of the module's import and its first DynamoDB client, interpreter start excluded),
the median of several runs.

With SnapStart (the cancel functions in AWS) that whole init runs once, before the snapshot; a
new instance is restored from it and runs only the after-restore hook (turnstop/platform/snapstart.py)
before its first request. ``restore_ms`` is that hook's CPU time, measured in an interpreter
that has done the init: what is left of the init on the request path, besides the restore itself
(which Lambda does and a local run cannot)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from turnstop_local.template import Template

ROOT = Path(__file__).resolve().parent.parent
# every dialect's cancel function: the template's functions on the shared cancel handler, by name
FUNCTIONS = {f.name: f for f in Template.load(ROOT / "template.yaml").functions.values()}
CANCEL_FUNCTIONS = tuple(sorted(name for name, f in FUNCTIONS.items() if f.code_dir == ROOT / "functions" / "cancel"))
BASELINE = "import boto3\nboto3.client('dynamodb')"


def load_function(name: str) -> str:
    path = FUNCTIONS[name].code_dir / "app.py"
    return (
        f"import importlib.util, os\nos.environ['TURNSTOP_APP'] = {FUNCTIONS[name].app!r}\n"
        f"spec = importlib.util.spec_from_file_location('app', {str(path)!r})\n"
        "module = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(module)\n"
        "module.store.db.ddb\n"  # the first DynamoDB call creates the client: count it too
    )


def cpu_ms(code: str, runs: int) -> float:
    """Median CPU ms of running ``code`` in a fresh interpreter."""
    return _median_ms(f"import time\n_t = time.process_time()\n{code}\nprint((time.process_time() - _t) * 1000)", runs)


def restore_ms(name: str, runs: int) -> float:
    """Median CPU ms of the after-restore hook, in an interpreter where ``name`` has initialised."""
    hook = "from turnstop.platform import snapstart\nimport time\n_t = time.process_time()\nsnapstart.after_restore()"
    return _median_ms(f"{load_function(name)}{hook}\nprint((time.process_time() - _t) * 1000)", runs)


def _median_ms(timed: str, runs: int) -> float:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "layers" / "turnstop"),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "TURNSTOP_TABLE": "bench-table",
        "POWERTOOLS_SERVICE_NAME": "bench",
        # as in Lambda with Tracing: Active, so the cold start measured is the traced one
        "LAMBDA_TASK_ROOT": str(ROOT),
        "POWERTOOLS_TRACE_DISABLED": "false",
    }
    samples = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", timed], env=env, capture_output=True, text=True, check=True)
        samples.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


def measure(runs: int = 9) -> dict[str, Any]:
    cpu_ms(BASELINE, 2)  # warm the .pyc caches of both
    for name in CANCEL_FUNCTIONS:
        cpu_ms(load_function(name), 1)
    base = cpu_ms(BASELINE, runs)
    out: dict[str, Any] = {"baseline_ms": round(base, 1)}
    for name in CANCEL_FUNCTIONS:
        ms = cpu_ms(load_function(name), runs)
        out[name] = {"ms": round(ms, 1), "ratio": round(ms / base, 2), "restore_ms": round(restore_ms(name, runs), 3)}
    return out
