"""One route style in the layer: a resolver's route is a decorator on a named function
(``@app.post("/v1/tasks/<task_id>/cancel")``), never a call that registers a lambda or a route
string split apart by a helper."""

from __future__ import annotations

import ast

from tests.unit.core.test_layer_shape import LAYER, modules

VERBS = {"get", "post", "put", "patch", "delete", "route"}


def route_registrations(tree: ast.AST) -> list[ast.Call]:
    """Calls of ``app.<verb>(...)`` whose result is called in turn: route registrations."""
    return [
        node.func
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Call)
        and isinstance(node.func.func, ast.Attribute)
        and node.func.func.attr in VERBS
        and isinstance(node.func.func.value, ast.Name)
        and node.func.func.value.id == "app"
    ]


def test_every_route_of_the_layer_is_a_decorator_on_a_named_function() -> None:
    undecorated = []
    for path in modules():
        tree = ast.parse(path.read_text())
        for call in route_registrations(tree):
            undecorated.append(f"{path.relative_to(LAYER)}:{call.lineno}")
    assert undecorated == []


def test_the_check_sees_a_route_registered_by_a_call() -> None:
    tree = ast.parse('app.post("/v1/x")(lambda: None)\n@app.get("/v1/y")\ndef y() -> None: ...\n')
    assert [c.lineno for c in route_registrations(tree)] == [1]
