"""Every dialect's renderers by turn kind, for the code that runs turns of any dialect (the
worker). Functions that serve one dialect import that dialect's renderers only."""

from __future__ import annotations

from turnstop.runtime.renderer import Renderer


def all_renderers() -> dict[str, Renderer]:
    from turnstop.dialects.llm.renderer import RENDERERS as llm
    from turnstop.dialects.omni.renderer import RENDERERS as omni
    from turnstop.dialects.sessions.renderer import RENDERERS as sessions

    return {**sessions, **omni, **llm}
