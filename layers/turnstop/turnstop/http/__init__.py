"""HTTP plumbing shared by every dialect: principals, request bodies, resolvers, SSE."""
