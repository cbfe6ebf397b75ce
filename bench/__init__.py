"""leanpool's benchmark suite (`make bench`): every scenario of issue 9 on the REPL simulator.

`python -m bench.run --mode quick|full|smoke` runs it and writes `bench/results/` (see
bench/README.md for the meaning of every key in `latest.json`).
"""
