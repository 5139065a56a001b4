"""The layer's shape, kept: small modules and functions, a core with no I/O, a dialects
package that loads no dialect until asked (lean cold starts for the cancel functions)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from turnstop_local.template import Template

LAYER = ROOT / "layers" / "turnstop" / "turnstop"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def modules() -> list[Path]:
    return sorted(LAYER.rglob("*.py"))


def test_no_module_in_the_layer_is_over_400_lines() -> None:
    big = {str(p.relative_to(LAYER)): n for p in modules() if (n := p.read_text().count("\n")) > MAX_MODULE_LINES}
    assert big == {}


# The rest of the shipped code: the functions, the local runtime (with the OpenAPI generator),
# the command line, the benchmarks and the scripts. The check above looked at the layer only,
# which is how the OpenAPI generator's answer models once grew into one 496-line file unnoticed.
MAX_FILE_LINES = 450
SHIPPED = ("functions", "turnstop_local", "turnstop_cli", "bench", "scripts")


def shipped_files() -> list[Path]:
    """Every shipped Python file, and the playground's scripts, page and stylesheet."""
    found = [p for top in SHIPPED for ext in ("py", "js", "css", "html") for p in (ROOT / top).rglob(f"*.{ext}")]
    scripts = [
        p for p in (ROOT / "scripts").iterdir() if p.is_file() and p.read_text().startswith("#!/usr/bin/env python")
    ]
    return sorted(set(found + scripts))


def test_no_other_shipped_file_is_over_450_lines() -> None:
    files = shipped_files()
    assert any(p.name == "spec.py" and "openapi" in p.parts for p in files)  # it looks into the OpenAPI tooling too
    assert any(p.name == "playground.js" for p in files)
    big = {str(p.relative_to(ROOT)): n for p in files if (n := p.read_text().count("\n")) > MAX_FILE_LINES}
    assert big == {}


def test_no_function_in_the_layer_or_the_functions_is_over_60_lines() -> None:
    long: dict[str, int] = {}
    for path in [*modules(), *sorted((ROOT / "functions").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.name}"] = lines
    assert long == {}


def test_core_imports_nothing_outside_the_standard_library_and_core() -> None:
    allowed = set(sys.stdlib_module_names) | {"turnstop"}
    foreign: set[str] = set()
    for path in (LAYER / "core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                if name.split(".")[0] not in allowed or (
                    name.startswith("turnstop.") and not name.startswith("turnstop.core")
                ):
                    foreign.add(f"{path.name}: {name}")
    assert foreign == set()


def test_a_cancel_function_loads_only_its_own_dialect() -> None:
    code = (
        "import sys; sys.path[:0] = ['layers/turnstop'];"
        "import turnstop.dialects.sessions.handlers;"
        "print(sorted(m for m in sys.modules if m.startswith('turnstop.dialects.') and 'sessions' not in m))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['turnstop.dialects.service']"


# every dialect's cancel function: the template's functions on the shared cancel handler
FUNCTIONS = {f.name: f for f in Template.load(ROOT / "template.yaml").functions.values()}
CANCEL_FUNCTIONS = sorted(name for name, f in FUNCTIONS.items() if f.code_dir == ROOT / "functions" / "cancel")
# What a cancel never needs: request and answer models (pydantic), the sign-in (JWT), the runtime that runs
# a turn, streaming, webhooks; and of its own dialect anything but the cancel's light modules.
# Nor the X-Ray SDK: it loads only to record a failed cancel (turnstop.observability.tracing), though tracing is on.
NEVER = (
    "pydantic",
    "jwt",
    "turnstop.runtime.runner",
    "turnstop.runtime.keeper",
    "turnstop.runtime.active",
    "turnstop.runtime.model",
    "turnstop.http.sse",
    "turnstop.http.streaming",
    "turnstop.webhooks",
    "aws_xray_sdk",
)
NOT_OF_ITS_DIALECT = ("handlers", "models", "answers", "service", "agent", "signin", "oidc")


def modules_loaded_by(function: str) -> set[str]:
    """The modules a fresh interpreter holds once the function's app.py is imported (its cold start)."""
    code = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('app', {str(FUNCTIONS[function].code_dir / 'app.py')!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    # As in Lambda with Tracing: Active (tracing on: nothing of it may load unless asked for)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "layers" / "turnstop"),
        "TURNSTOP_TABLE": "shape-table",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "shape",
        "LAMBDA_TASK_ROOT": str(ROOT),
        "POWERTOOLS_TRACE_DISABLED": "false",
        "TURNSTOP_APP": FUNCTIONS[function].app or "",
    }
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def dialect_of(template: Any, function: str) -> str:
    """The registered dialect whose routes the template's function ``function`` serves."""
    from turnstop.dialects.registry import api_of

    served = {r.path for r in template.routes if r.function_id == FUNCTIONS[function].logical_id}
    (dialect,) = {api.name for path in served if (api := api_of(path)) is not None}
    return dialect


def test_every_cancel_function_is_checked() -> None:
    assert {"chat_cancel", "llm_cancel", "omni_cancel", "response_cancel", "session_cancel", "tasks_cancel"} <= set(
        CANCEL_FUNCTIONS
    )


@pytest.mark.parametrize("function", CANCEL_FUNCTIONS)
def test_a_cancel_function_imports_its_dialects_cancel_module_and_nothing_heavy(function: str, template: Any) -> None:
    dialect = dialect_of(template, function)
    own = f"turnstop.dialects.{dialect}"
    loaded = modules_loaded_by(function)
    assert f"{own}.cancel" in loaded
    others = {
        m
        for m in loaded
        if m.startswith("turnstop.dialects.")
        and m != own
        and not m.startswith(own + ".")
        and m != "turnstop.dialects.registry"  # the list it names its app from: the standard library only
    }
    assert others == set()
    assert {m for m in loaded if m.startswith(own + ".") and m.split(".")[3] in NOT_OF_ITS_DIALECT} == set()
    assert {m for m in loaded if m in NEVER or m.startswith(tuple(f"{n}." for n in NEVER))} == set()


def test_with_tracing_on_the_other_functions_do_load_the_tracer() -> None:
    """The check above runs with tracing really on: a function that traces from its cold start loads the SDK."""
    assert "aws_xray_sdk.core" in modules_loaded_by("sessions_api")


# The API functions whose app runs no turn in the request: the shared handler adds nothing to what
# their app's own modules load (the composition root builds a runner only for a factory that takes one).
RUNNERLESS_APIS = ("sessions_api", "omni_api", "tasks_api", "chat_auth")


@pytest.mark.parametrize("function", RUNNERLESS_APIS)
def test_an_api_function_that_runs_no_turn_builds_no_runner(function: str) -> None:
    assert FUNCTIONS[function].code_dir == ROOT / "functions" / "api"
    loaded = modules_loaded_by(function)
    assert "turnstop.composition.apps" in loaded
    assert "turnstop.composition.runners" not in loaded


def test_an_api_function_whose_app_runs_turns_builds_its_runner() -> None:
    """The check above would pass for a function that builds nothing: chat's API runs its replies."""
    assert "turnstop.composition.runners" in modules_loaded_by("chat_api")
