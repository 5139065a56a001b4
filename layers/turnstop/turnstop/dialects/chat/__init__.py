"""The chat dialect (seed 001): a browser-facing chat whose agent plans actions that wait for
the user's confirmation; ``POST /chat/cancel``; OAuth sign-in with cookie sessions."""

__all__ = [
    "agent",
    "answers",
    "cancel",
    "handlers",
    "models",
    "oidc",
    "renderer",
    "service",
    "signin",
    "threads",
    "web",
    "wire",
]
