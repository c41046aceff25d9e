"""Benchmark harness: pyoci against runc on the same bundle (`python -m bench`, issue 5).
See bench/README.md and docs/performance.md."""
