"""btk's benchmarks, run from the repository root: ``python -m bench.<name>`` (see docs/benchmarks.md)."""
