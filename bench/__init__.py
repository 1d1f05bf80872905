"""Benchmarks of the hub, each against a baseline in the same run (`python -m bench.run`)."""
