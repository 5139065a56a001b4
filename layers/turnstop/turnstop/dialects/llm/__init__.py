"""The llm dialect: an OpenAI-compatible Responses API (create, retrieve, stream/resume, cancel)."""
