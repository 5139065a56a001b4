"""The public-surface contract ``make lint`` runs (tests/import_contracts.py) refuses what it
should: a module of another package importing something its ``__all__`` does not list."""

from __future__ import annotations

from grimp import ImportGraph

from tests.import_contracts import PublicSurfaceContract, declared_exports, import_cycles


def graph(*imports: tuple[str, str]) -> ImportGraph:
    g = ImportGraph()
    for package in ("turnstop", "turnstop.store", "turnstop.dialects", "turnstop.dialects.llm"):
        g.add_module(package)
    for module in ("turnstop.store.turn_reads", "turnstop.store.codec", "turnstop.dialects.llm.wire"):
        g.add_module(module)
    for importer, imported in imports:
        g.add_import(importer=importer, imported=imported)
    return g


def contract() -> PublicSurfaceContract:
    return PublicSurfaceContract("surfaces", {}, {"packages": ["turnstop"]})


def test_every_package_of_the_layer_declares_what_it_exports() -> None:
    assert "Store" in (declared_exports("turnstop.store") or [])
    assert "turn_reads" not in (declared_exports("turnstop.store") or [])
    assert declared_exports("turnstop.dialects.llm") is not None


def test_an_import_of_an_exported_module_keeps_the_contract() -> None:
    check = contract().check(graph(("turnstop.dialects.llm.wire", "turnstop.store.codec")), verbose=False)
    assert check.kept


def test_an_import_of_a_private_module_of_another_package_breaks_it() -> None:
    check = contract().check(graph(("turnstop.dialects.llm.wire", "turnstop.store.turn_reads")), verbose=False)
    assert not check.kept
    (breach,) = check.metadata["breaches"]
    assert (breach.package, breach.name) == ("turnstop.store", "turn_reads")


def test_a_package_imports_its_own_private_modules_freely() -> None:
    check = contract().check(graph(("turnstop.store.codec", "turnstop.store.turn_reads")), verbose=False)
    assert check.kept


def test_an_import_circle_is_found_and_a_chain_is_not() -> None:
    g = graph(
        ("turnstop.store.codec", "turnstop.store.turn_reads"),
        ("turnstop.store.turn_reads", "turnstop.dialects.llm.wire"),
    )
    assert import_cycles(g, ["turnstop"]) == []
    g.add_import(importer="turnstop.dialects.llm.wire", imported="turnstop.store.codec")
    assert import_cycles(g, ["turnstop"]) == [
        ["turnstop.dialects.llm.wire", "turnstop.store.codec", "turnstop.store.turn_reads"]
    ]


def test_every_name_a_package_exports_exists() -> None:
    """Each ``__all__`` entry is a submodule of the package or a name its ``__init__`` binds (at
    once, or on first use: a module ``__getattr__`` and the names it serves imported for the type
    checker, as ``composition`` loads its runners)."""
    import ast

    from tests.conftest import ROOT

    stale: dict[str, list[str]] = {}
    for init in sorted((ROOT / "layers" / "turnstop" / "turnstop").rglob("__init__.py")):
        package = init.parent
        tree = ast.parse(init.read_text())
        bound = {p.stem for p in package.glob("*.py")} | {
            p.name for p in package.iterdir() if (p / "__init__.py").is_file()
        }
        lazy = any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in tree.body)
        for node in tree.body:
            if lazy and isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
                bound |= {(a.asname or a.name) for i in node.body if isinstance(i, ast.ImportFrom) for a in i.names}
            if isinstance(node, ast.Import | ast.ImportFrom):
                bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
            elif isinstance(node, ast.FunctionDef | ast.ClassDef):
                bound.add(node.name)
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                bound |= {t.id for t in targets if isinstance(t, ast.Name)}
        exported = declared_exports(".".join(package.relative_to(ROOT / "layers" / "turnstop").parts)) or []
        if missing := sorted(set(exported) - bound):
            stale[str(package.relative_to(ROOT))] = missing
    assert stale == {}
