"""One list of dialects (``turnstop.dialects.registry``), and nothing half-registered.

Every route of the template belongs to exactly one registered API; every registered API has
routes, an OpenAPI table of its own routes and, if it is a dialect, its renderers, error shape,
cancel function and docs page; the command line and the playground speak registered dialects
only. A toy dialect, kept in tests/toy_dialect/, registers itself in one entry and serves its
route through the same resolver, error shape, worker and after-finish hook as the others."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from moto import mock_aws

from tests.cases.fixtures import Env
from tests.conftest import ROOT
from tests.unit.test_template_policy import is_cancel
from turnstop.dialects import registry
from turnstop.dialects.registry import Api, Dialect
from turnstop.http.errors import ErrorShape
from turnstop.platform.settings import Settings
from turnstop.runtime.renderer import Renderer
from turnstop.store import Store
from turnstop_local.openapi.spec import Dialect as OpenApiTable
from turnstop_local.template import Template

TOY = Dialect(
    "toy",
    ("/v1/toy",),
    openapi="tests.toy_dialect.openapi:TOY",
    package="tests.toy_dialect",
    after_finish="renderer:after_finish",
)


def _loaded(what: str, load: Any, found: list[str]) -> Any:
    try:
        return load()
    except (ImportError, AttributeError) as e:
        found.append(f"{what}: {type(e).__name__}: {e}")
        return None


def problems(template: Template) -> list[str]:
    """What is half-registered, one line each (none: every API is whole)."""
    found: list[str] = []
    apis = registry.apis()
    for route in template.routes:
        owners = [a.name for a in apis if a.owns(route.path)]
        if len(owners) != 1:
            found.append(f"{route.route_key} ({route.function_id}) belongs to {owners or 'no registered API'}")
    for fid in {r.function_id for r in template.routes}:
        served = {a.name for r in template.routes if r.function_id == fid for a in apis if a.owns(r.path)}
        if len(served) > 1:
            found.append(f"{fid} serves routes of {sorted(served)}")
    for api in apis:
        for prefix in api.prefixes:
            if not any(Api(api.name, (prefix,)).owns(r.path) for r in template.routes):
                found.append(f"{api.name}: no template route under {prefix}")
        table = _loaded(f"{api.name}: its OpenAPI table", lambda a=api: registry.load(a.openapi), found)
        if table is not None and not (isinstance(table, OpenApiTable) and table.name == api.name):
            found.append(f"{api.name}: {api.openapi} is not its OpenAPI table")
        elif table is not None:
            found += [f"{api.name}: its OpenAPI table documents {op.path}" for op in table.ops if not api.owns(op.path)]
    kinds: dict[str, str] = {}
    for d in registry.dialects():
        renderers = _loaded(f"{d.name}: its renderers", d.renderers, found) or {}
        if not renderers or not all(isinstance(r, Renderer) for r in renderers.values()):
            found.append(f"{d.name}: no renderers")
        for kind in renderers:
            if kind in kinds:
                found.append(f"{d.name}: turn kind {kind!r} is {kinds[kind]}'s too")
            kinds[kind] = d.name
        shape = _loaded(f"{d.name}: its error shape", d.error_shape, found)
        if shape is not None and not (isinstance(shape, ErrorShape) and shape.dialect == d.name):
            found.append(f"{d.name}: its wire.SHAPE is not an ErrorShape of dialect {d.name!r}")
        if d.after_finish:  # the factory is given no store: a hook only uses it once a turn ends
            hook = _loaded(f"{d.name}: its after-finish hook", lambda d=d: d.hook(None), found)
            if hook is not None and not callable(hook):
                found.append(f"{d.name}: its after_finish is not a hook factory")
        if not any(d.owns(r.path) and is_cancel(r.path, r.method) for r in template.routes):
            found.append(f"{d.name}: no cancel route")
    return found


def with_toy_routes(template: Template) -> Template:
    """The template with the toy's one function and route (its template routes)."""
    doc = copy.deepcopy(template.document)
    event = {
        "Type": "HttpApi",
        "Properties": {"ApiId": {"Ref": "HttpApi"}, "Path": "/v1/toy/turns/{turn_id}/cancel", "Method": "POST"},
    }
    doc["Resources"]["ToyCancelFunction"] = {
        "Type": "AWS::Serverless::Function",
        "Properties": {
            "CodeUri": "functions/cancel/",  # the shared cancel handler: the toy brings no function code
            "Handler": "app.lambda_handler",
            "Environment": {"Variables": {"TURNSTOP_APP": "tests.toy_dialect.cancel:toy_cancel_app"}},
            "Events": {"Cancel": event},
        },
    }
    return Template(doc, template.path)


def http_event(method: str, path: str, tenant: str | None = "acme") -> dict[str, Any]:
    authorizer = {"lambda": {"tenant": tenant, "key_id": "key_1"}} if tenant else {}
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {},
        "requestContext": {
            "http": {"method": method, "path": path},
            "requestId": "r1",
            "stage": "$default",
            "authorizer": authorizer,
        },
        "isBase64Encoded": False,
    }


# ----------------------------------------------------------------- the registry as it is


def test_every_registered_api_is_whole_and_every_route_is_registered(template: Template) -> None:
    assert problems(template) == []


def test_the_worker_runs_every_dialects_turn_kinds_and_hooks(template: Template) -> None:
    renderers = registry.all_renderers()
    assert {"session", "response", "omni", "llm", "task", "chat_reply"} == set(renderers)
    assert [d.name for d in registry.dialects()] == ["sessions", "omni", "llm", "tasks", "chat"]
    assert [a.name for a in registry.apis()][-2:] == ["admin", "workers"]


SHARED_HANDLERS = {ROOT / "functions" / name for name in ("api", "stream", "cancel")}


def test_each_function_on_a_shared_handler_serves_an_app_of_the_dialect_its_routes_belong_to(
    template: Template,
) -> None:
    shared = [f for f in template.functions.values() if f.code_dir in SHARED_HANDLERS]
    assert len(shared) == 14  # every dialect's functions: no dialect brings function code of its own
    for f in shared:
        factory = registry.served({"TURNSTOP_APP": f.app or ""})
        dialect = registry.dialect_of_module(factory.__module__)
        routes = [r for r in template.routes if r.function_id == f.logical_id]
        assert routes and all(dialect.owns(r.path) for r in routes), f.logical_id
        cancels = {is_cancel(r.path, r.method) for r in routes}
        assert cancels == {f.code_dir.name == "cancel"}, f.logical_id  # the cancel handler serves cancels only
    # and a function with code of its own names no app
    assert [f.logical_id for f in template.functions.values() if f.code_dir not in SHARED_HANDLERS and f.app] == []


def test_each_function_on_a_shared_handler_routes_every_route_the_template_sends_it(template: Template) -> None:
    """The app a function's TURNSTOP_APP names answers each of the function's routes (unsigned, so
    its dialect's 401 or a public route's answer), never a "no such route" 404: a swapped app
    (the session cancel's for the response cancel's, the sessions API's for its stream) fails here."""
    from turnstop.composition import function_app

    unrouted: list[str] = []
    with mock_aws():
        store, settings = Store("routes-table"), Settings(table="routes-table")
        for f in [f for f in template.functions.values() if f.code_dir in SHARED_HANDLERS]:
            served = function_app(store, settings, {"TURNSTOP_APP": f.app or ""})
            for r in [r for r in template.routes if r.function_id == f.logical_id]:
                event = http_event(r.method, re.sub(r"\{[^}]+\}", "x_1", r.path), tenant=None)
                if f.code_dir.name == "stream":
                    status = served.app.stream(event).status_code
                else:
                    status = served.app.resolve(event, None)["statusCode"]
                if status == 404:
                    unrouted.append(f"{f.logical_id}: {r.method} {r.path}")
    assert unrouted == []


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("", "must name the app"),
        ("turnstop.dialects.omni.cancel", "must name the app"),
        ("turnstop.dialects.registry:APIS", "is not an app factory"),
    ],
)
def test_a_function_whose_app_is_unnamed_or_not_a_factory_fails_its_cold_start_saying_so(value: str, says: str) -> None:
    with pytest.raises(LookupError, match=says):
        registry.served({"TURNSTOP_APP": value})


def test_every_dialect_has_its_docs_page() -> None:
    assert [d.name for d in registry.dialects() if not (ROOT / "docs" / f"{d.name}.md").is_file()] == []


def test_the_command_line_and_the_playground_speak_registered_dialects_only() -> None:
    from turnstop_cli.dialects import DIALECT
    from turnstop_cli.routing import known

    names = {d.name for d in registry.dialects()}
    assert known() == tuple(DIALECT) and set(DIALECT) <= names
    script = (ROOT / "turnstop_local" / "playground" / "static" / "dialects.js").read_text()
    listed = re.search(r"^const DIALECTS = \{([^}]*)\};$", script, re.M)
    assert listed is not None
    assert {n.strip() for n in listed.group(1).split(",")} <= names


def test_the_openapi_documents_and_their_local_pages_are_the_registrys(template: Template) -> None:
    from turnstop_local.openapi.dialects import DIALECTS
    from turnstop_local.openapi.serve import _names

    assert list(DIALECTS) == _names() == [a.name for a in registry.apis()]


# ----------------------------------------------------------------- half-registered


def test_a_route_under_no_registered_prefix_is_found(template: Template) -> None:
    # Given the toy's routes in the template but no toy in the registry
    found = problems(with_toy_routes(template))
    # Then its route belongs to nobody
    assert found == ["POST /v1/toy/turns/{turn_id}/cancel (ToyCancelFunction) belongs to no registered API"]


def test_a_registered_dialect_without_routes_table_or_package_is_found(template: Template) -> None:
    # Given a dialect registered with nothing behind it
    with registry.registered(Dialect("ghost", ("/v1/ghost",))):
        found = problems(template)
    # Then each missing part is named
    assert [line.split(":")[0:2] for line in found] == [
        ["ghost", " no template route under /v1/ghost"],
        ["ghost", " its OpenAPI table"],
        ["ghost", " its renderers"],
        ["ghost", " no renderers"],
        ["ghost", " its error shape"],
        ["ghost", " no cancel route"],
    ]


def test_a_name_is_registered_once() -> None:
    with pytest.raises(ValueError, match="already registered"):
        with registry.registered(Dialect("sessions", ("/v2/sessions",))):
            pass


# ----------------------------------------------------------------- the toy dialect


def test_a_toy_dialect_registered_in_one_entry_is_whole_and_served_like_the_others(
    env: Env, template: Template
) -> None:
    from tests.toy_dialect.cancel import toy_cancel_app
    from tests.toy_dialect.renderer import ENDED, KIND
    from turnstop.core import scopes
    from turnstop.core.events import PendingEvent
    from turnstop.core.records import NewTurn
    from turnstop.providers.config import DEFAULT_ROUTES
    from turnstop.providers.models import Models
    from turnstop.runtime.keeper import Cadence
    from turnstop.runtime.runner import TurnRunner
    from turnstop_local.openapi.dialects import tables

    store = Store(env.store.table, dynamodb=env.client)  # the real clock: a worker runs a turn below
    with registry.registered(TOY):
        # Given the toy registered (one entry) and its routes in the template
        assert problems(with_toy_routes(template)) == []
        assert tables()["toy"].name == "toy"
        assert KIND in registry.all_renderers()

        # When its cancel route is called for a queued toy turn, for an unknown one, and without a key
        def toy_turn(turn_id: str) -> None:
            new = NewTurn(turn_id, KIND, "acme", scopes.STATELESS, grace_ms=60_000, input={"prompt": "one two three"})
            store.turns.start(new, lambda t: PendingEvent("toy.created", {}))

        toy_turn("toy_1")
        # (its app found as the shared cancel function finds it: by the template's TURNSTOP_APP)
        served = registry.served({"TURNSTOP_APP": with_toy_routes(template).function("ToyCancelFunction").app or ""})
        assert served is toy_cancel_app
        app = served(store, Settings(table=env.store.table))
        answers = [
            app.resolve(http_event("POST", f"/v1/toy/turns/{t}/cancel", tenant), None)
            for t, tenant in (("toy_1", "acme"), ("toy_404", "acme"), ("toy_1", None))
        ]

        # Then it answers through the shared resolver, in its own error shape
        ids = [a["headers"]["X-Request-Id"] for a in answers]
        assert [(a["statusCode"], json.loads(a["body"])) for a in answers] == [
            (200, {"id": "toy_1", "outcome": "cancelled"}),
            (404, {"toy_error": {"code": "not_found", "says": "No such toy turn", "request": ids[1]}}),
            (401, {"toy_error": {"code": "unauthorized", "says": "Missing or invalid API key", "request": ids[2]}}),
        ]

        # And a worker with the worker function's renderers and hook runs a toy turn, then its hook
        toy_turn("toy_2")
        models = Models(DEFAULT_ROUTES, scripted_step_ms=0)
        worker = TurnRunner(
            store,
            models.for_turn,
            renderers=registry.all_renderers(),
            lease_ms=30_000,
            cadence=Cadence(flush_ms=20, check_ms=5, lease_ms=30_000),
            on_finished=registry.after_finish(store),
        )
        worker.handle("toy_2")
        assert ("toy_2", "completed") in ENDED
    assert "toy" not in {a.name for a in registry.apis()}
