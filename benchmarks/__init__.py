"""Benchmarks for qfan (run as ``python -m benchmarks.<name>``)."""
