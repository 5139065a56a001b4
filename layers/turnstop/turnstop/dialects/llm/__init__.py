"""The llm dialect: an OpenAI-compatible Responses API (create, retrieve, stream/resume, cancel)."""

__all__ = ["answers", "cancel", "handlers", "inputs", "models", "renderer", "service", "wire"]
