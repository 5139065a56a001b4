"""Examples of agents behind turnstop (docs/agents.md)."""
