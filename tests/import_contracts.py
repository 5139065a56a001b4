"""import-linter contract types for ``make lint``: a package's public surface is its ``__all__``
(``PublicSurfaceContract``), and no module imports itself back (``AcyclicModulesContract``).

Every package under the contract's ``packages`` declares ``__all__`` in its ``__init__`` (a
literal list: names it re-exports, or submodules other packages may import). A module outside a
package imports the package itself, or a submodule its ``__all__`` lists, and nothing else of
it, at every level: ``turnstop.dialects.llm.cancel`` imported from outside ``turnstop.dialects``
needs ``llm`` in ``turnstop.dialects.__all__`` and ``cancel`` in ``turnstop.dialects.llm.__all__``.
Inside a package its modules import each other freely. The import graph is grimp's (every
import statement, those inside functions included); ``__all__`` is read from the source, so
nothing is imported to check it.
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from grimp import ImportGraph
from importlinter import Contract, ContractCheck, fields, output


@dataclass(frozen=True)
class Breach:
    importer: str
    imported: str
    package: str
    name: str


@cache
def _root_dir(root: str) -> Path:
    spec = importlib.util.find_spec(root)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"{root} is not an importable package")
    return Path(next(iter(spec.submodule_search_locations)))


def declared_exports(package: str) -> list[str] | None:
    """The literal ``__all__`` of ``package``'s ``__init__``; None when it declares none."""
    root, *rest = package.split(".")
    init = _root_dir(root).joinpath(*rest, "__init__.py")
    if not init.is_file():
        return None
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            return [str(v) for v in ast.literal_eval(value)]
    return None


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


class PublicSurfaceContract(Contract):
    """Other packages import only what a package's ``__all__`` exports."""

    type_name = "public_surface"

    packages = fields.ListField(subfield=fields.StringField())
    ignore_imports = fields.SetField(subfield=fields.StringField(), required=False)

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        roots = [str(p) for p in self.packages]  # type: ignore[attr-defined]
        ignored = {" ".join(str(i).split()) for i in getattr(self, "ignore_imports", None) or ()}
        packages = sorted(m for m in graph.modules if any(_inside(m, r) for r in roots) and graph.find_children(m))
        exports = {p: declared_exports(p) for p in packages}
        undeclared = [p for p, names in exports.items() if names is None]
        breaches: list[Breach] = []
        for importer in sorted(graph.modules):
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                if f"{importer} -> {imported}" in ignored:
                    continue
                parts = imported.split(".")
                for depth in range(1, len(parts)):
                    package, name = ".".join(parts[:depth]), parts[depth]
                    if package not in exports or _inside(importer, package):
                        continue
                    if name not in (exports[package] or []):
                        breaches.append(Breach(importer, imported, package, name))
                        break
        return ContractCheck(
            kept=not breaches and not undeclared,
            metadata={"breaches": breaches, "undeclared": undeclared},
        )

    def render_broken_contract(self, check: ContractCheck) -> None:
        for package in check.metadata["undeclared"]:
            output.print_error(f"{package} declares no __all__ in its __init__")
            output.new_line()
        for b in check.metadata["breaches"]:
            output.print_error(f"{b.importer} -> {b.imported}: {b.name!r} is not in {b.package}.__all__")
            output.new_line()


def import_cycles(graph: ImportGraph, roots: list[str]) -> list[list[str]]:
    """The import cycles among the modules of ``roots``: each a strongly connected set of
    modules (Tarjan's algorithm, iterative), sorted."""
    modules = sorted(m for m in graph.modules if any(_inside(m, r) for r in roots))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for start in modules:
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if not any(_inside(nxt, r) for r in roots):
                    continue
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.find_modules_directly_imported_by(nxt)))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        cycles.append(sorted(component))
    return sorted(cycles)


class AcyclicModulesContract(Contract):
    """No module of ``packages`` imports itself back through others (the import lines that
    run, function-level ones included): a circle forces lazy imports to break it at load time."""

    type_name = "acyclic_modules"

    packages = fields.ListField(subfield=fields.StringField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        cycles = import_cycles(graph, [str(p) for p in self.packages])  # type: ignore[attr-defined]
        return ContractCheck(kept=not cycles, metadata={"cycles": cycles})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for cycle in check.metadata["cycles"]:
            output.print_error("an import circle: " + " <-> ".join(cycle))
            output.new_line()
