"""The base of every answer's wire model (``turnstop.dialects.<name>.answers``).

Each answer a dialect sends is described once, by a pydantic model in its dialect's
``answers`` module: the handlers build the answer through it (``Model(...).wire()``), and the
OpenAPI generator (``turnstop_local.openapi``) takes the answer's schema from the same class.
A module a cancel function imports (a dialect's ``wire.py``, ``cancel.py``, ``renderer.py``)
loads no pydantic, for the cancel's cold start: what it answers is built as a plain dict, and
``tests/unit/test_answers.py`` checks that dict against the answer's model.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["WireModel"]


class WireModel(BaseModel):
    def wire(self) -> dict[str, Any]:
        """The answer's JSON object: the fields it was built with (a default never set is left
        out, as a builder of dicts would leave it out), in the model's order."""
        return self.model_dump(exclude_unset=True)
