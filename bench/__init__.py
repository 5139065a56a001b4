"""Benchmarks: cancel latency, commit cost, calls per step, memory of a long turn."""
