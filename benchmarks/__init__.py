"""ador's speed benchmarks: `python -m benchmarks [--quick]` prints a table and writes results.json."""
