"""Benchmarks: what candidates are scored on (adas/, discopop/) and engine performance figures (perf_*.py)."""
