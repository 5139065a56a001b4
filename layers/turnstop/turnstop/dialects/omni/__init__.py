"""The omni dialect (seed 000): threads, pollable responses, DELETE cancel, thread history.

Wire contract: the official ``clearstreet`` SDK (``client.v1.omni_ai``); see docs/omni.md.
"""

__all__ = ["answers", "cancel", "handlers", "models", "renderer", "service", "wire"]
