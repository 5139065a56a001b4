"""The sessions dialect (seed 002): streaming session turns and stateless /v1/responses, SSE."""

__all__ = ["answers", "cancel", "handlers", "models", "renderer", "service", "wire"]
