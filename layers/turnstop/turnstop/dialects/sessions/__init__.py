"""The sessions dialect (seed 002): streaming session turns and stateless /v1/responses, SSE."""
