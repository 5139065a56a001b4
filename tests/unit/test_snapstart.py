"""SnapStart on the synchronous cancel path: each cancel function imports the one module that
warms its client before the snapshot and registers the restore hook, and the hook gives every
restored instance a random sequence of its own."""

from __future__ import annotations

import random
import re
from typing import Any

from tests.conftest import ROOT
from tests.unit.test_template_policy import cancel_functions
from turnstop.platform import snapstart
from turnstop.store import db
from turnstop_local.template import Template


def test_instances_restored_from_one_snapshot_draw_different_random_numbers() -> None:
    random.seed(7)
    snapshot = random.getstate()
    draws = []
    for _ in range(2):  # two instances restored from the same memory
        random.setstate(snapshot)
        snapstart.after_restore()
        draws.append(random.random())
    assert draws[0] != draws[1]


def test_prepare_creates_the_client_before_the_snapshot_and_registers_the_hook(monkeypatch: Any) -> None:
    monkeypatch.setattr(db, "_clients", {})
    registered: list[Any] = []
    snapstart.prepare(registered.append)
    assert registered == [snapstart.after_restore]
    assert "dynamodb" in db._clients


def test_outside_lambda_the_import_prepares_nothing() -> None:
    assert snapstart.ENABLED is False


def test_every_synchronous_cancel_function_has_snapstart_on_its_alias(template: Template) -> None:
    for fid in cancel_functions(template):
        props = template.function(fid).properties
        assert props.get("SnapStart") == {"ApplyOn": "PublishedVersions"}, fid
        assert props.get("AutoPublishAlias"), fid  # SAM points the API's integrations at the alias
        app = (template.function(fid).code_dir / "app.py").read_text()
        assert re.search(r"^from turnstop.platform import snapstart\b", app, re.M), fid
    assert ROOT.joinpath("layers/turnstop/turnstop/platform/snapstart.py").is_file()
