"""The operators' stop button starts as lean as the dialects' (``test_layer_shape`` checks every
``*_cancel`` function): the admin bulk cancel loads no dialect, no request models and no runtime."""

from __future__ import annotations

from tests.unit.core.test_layer_shape import NEVER, modules_loaded_by


def test_the_admin_cancel_function_loads_no_dialect_and_nothing_heavy() -> None:
    loaded = modules_loaded_by("admin_cancel")  # AdminCancelFunction
    assert "turnstop.cancels.admin" in loaded and "turnstop.cancels.bulk" in loaded
    assert {m for m in loaded if m.startswith("turnstop.dialects.")} == set()
    assert {m for m in loaded if m in NEVER or m.startswith(tuple(f"{n}." for n in NEVER))} == set()
