"""Speed benchmarks: each prints ratios against a baseline measured in the same process (docs/benchmarks.md).

Run one from the repository root as a module, ``python -m benchmarks.bench_meshing --help`` (a benchmark
may use another's helpers, ``from benchmarks.device_info import device_line``), or all of them with
``python -m benchmarks.run_all``.
"""
