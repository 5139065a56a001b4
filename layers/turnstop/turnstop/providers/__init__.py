"""The provider seam: how the runner talks to a model, chosen per turn by its route.

``base`` (``ModelRequest``, ``ModelCall`` with ``abort()``, ``ModelProvider``), ``config``
(routes from ``TURNSTOP_MODELS``), ``models`` (each route's provider, the upstream-cost
record), ``transport`` and ``calls`` (the abortable transport and call base), and the
providers: ``scripted``, ``openai_chat``, ``bedrock_converse``, ``openai_responses``,
``external`` and ``remote`` (docs/models.md). Nothing is imported here: a function loads only
the providers its routes use.
"""

__all__ = [
    "base",
    "bedrock_converse",
    "calls",
    "config",
    "external",
    "models",
    "openai_chat",
    "openai_responses",
    "remote",
    "scripted",
    "transport",
]
