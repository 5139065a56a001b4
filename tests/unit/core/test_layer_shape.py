"""The layer's shape, kept: small modules and functions, a core with no I/O, a dialects
package that loads no dialect until asked (lean cold starts for the cancel functions)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

LAYER = ROOT / "layers" / "turnstop" / "turnstop"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def modules() -> list[Path]:
    return sorted(LAYER.rglob("*.py"))


def test_no_module_in_the_layer_is_over_400_lines() -> None:
    big = {str(p.relative_to(LAYER)): n for p in modules() if (n := p.read_text().count("\n")) > MAX_MODULE_LINES}
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
