"""The committed OpenAPI documents are what the handlers' models build now.

``make openapi`` writes ``openapi/*.json`` from :mod:`turnstop_local.openapi.build`; a model
changed without regenerating them fails here.
"""

from __future__ import annotations

import json

from tests.conftest import ROOT
from turnstop.dialects import registry
from turnstop_local.openapi.__main__ import OUT, stale
from turnstop_local.openapi.build import DIALECTS, documents, merged


def test_the_committed_documents_match_what_the_models_build() -> None:
    assert OUT == ROOT / "openapi"
    out_of_date = stale()
    assert not out_of_date, f"openapi/ is out of date ({', '.join(out_of_date)}): run make openapi"


def test_every_dialect_has_its_document_and_the_queue_message_its_schema() -> None:
    assert set(documents()) == {f"{name}.json" for name in DIALECTS} | {"queue-cancel.schema.json"}
    assert list(DIALECTS) == [api.name for api in registry.apis()]
    assert set(DIALECTS) >= {"sessions", "omni", "llm", "tasks", "chat", "admin", "workers"}


def test_every_route_of_the_template_that_callers_use_is_documented_once() -> None:
    from turnstop_local.template.facts import Template

    documented = {(m.upper(), p) for p, ops in merged()["paths"].items() for m in ops}
    routes = {(r.method, r.path) for r in Template.load(ROOT / "template.yaml").routes if r.method != "OPTIONS"}
    assert routes == documented


def test_the_documents_are_valid_openapi_3_1_and_the_queue_message_valid_json_schema() -> None:
    import jsonschema
    from openapi_spec_validator import validate

    for name, doc in documents().items():
        if name.endswith(".schema.json"):
            jsonschema.Draft202012Validator.check_schema(doc)
        else:
            assert doc["openapi"] == "3.1.0"
            validate(doc)
    validate(merged())


def test_the_queue_schema_accepts_both_kinds_of_message_and_refuses_others() -> None:
    import jsonschema

    schema = json.loads((OUT / "queue-cancel.schema.json").read_text())
    valid = jsonschema.Draft202012Validator(schema).is_valid
    assert valid({"turn_id": "resp_1", "tenant": "acme", "reason": "user left"})
    assert valid({"scope": {"tenant": "acme", "end_user": "user-42"}, "reason": "account suspended"})
    assert not valid({"turn_id": "resp_1"})
    assert not valid({"scope": {"tenant": "acme", "planet": "mars"}})


def test_the_seeds_error_bodies_are_in_the_documents() -> None:
    omni = json.dumps(documents()["omni.json"])
    chat = json.dumps(documents()["chat.json"])
    assert "Failed to deserialize query string: missing field `account_id`" in omni
    assert "The caller does not have permission to execute the specified operation" in omni
    assert "Failed to cancel action: <error details>" in chat


def test_numeric_bounds_use_json_schemas_own_keywords() -> None:
    """pydantic writes bounds on a union as ``ge``/``le``, which no validator reads."""

    def keys(obj: object) -> set[str]:
        if isinstance(obj, dict):
            return set(obj) | {k for v in obj.values() for k in keys(v)}
        if isinstance(obj, list):
            return {k for v in obj for k in keys(v)}
        return set()

    temperature = documents()["llm.json"]["components"]["schemas"]["CreateResponse"]["properties"]["temperature"]
    assert "maximum" in json.dumps(temperature)
    for doc in documents().values():
        assert not keys(doc) & {"ge", "le", "gt", "lt"}


def test_the_local_runtime_serves_the_committed_files_with_its_own_address() -> None:
    from turnstop_local.openapi.serve import answer

    one = answer("GET", "/openapi/chat.json", {"Host": "127.0.0.1:4000"})
    assert one is not None and one.status == 200
    doc = json.loads(one.body)
    assert doc["servers"] == [{"url": "http://127.0.0.1:4000", "description": "this local runtime"}]
    assert doc["paths"] == json.loads((OUT / "chat.json").read_text())["paths"]

    everything = answer("GET", "/openapi.json", {"host": "localhost:3000"})
    assert everything is not None
    assert set(json.loads(everything.body)["paths"]) == set(merged()["paths"])

    missing = answer("GET", "/openapi/../template.yaml", {})
    assert missing is None or missing.status == 404
    assert answer("POST", "/openapi.json", {}) is None
    assert answer("GET", "/v1/sessions", {}) is None


def test_every_example_body_the_documents_show_fits_its_own_schema() -> None:
    """The seeds' bodies, shown as examples, are answers the schemas accept."""
    import jsonschema

    checked = 0
    for name, doc in documents().items():
        if name.endswith(".schema.json"):
            continue
        for path, ops in doc["paths"].items():
            for method, op in ops.items():
                for status, answer in op["responses"].items():
                    media = answer.get("content", {}).get("application/json", {})
                    for example in media.get("examples", {}).values():
                        schema = {**media["schema"], "components": doc["components"]}
                        errors = list(jsonschema.Draft202012Validator(schema).iter_errors(example["value"]))
                        assert not errors, f"{name} {method} {path} {status}: {errors[0].message}"
                        checked += 1
    assert checked >= 15
