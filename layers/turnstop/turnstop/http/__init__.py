"""HTTP plumbing shared by every dialect: principals, request bodies, resolvers, SSE."""

__all__ = ["api", "body", "errors", "response", "sse", "streaming", "wire_model"]
