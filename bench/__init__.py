"""Benchmarks of the Central API (issue 7): ``.venv/bin/python -m bench.run [--quick]``.

See ``docs/performance.md`` for what each benchmark measures, its same-run baseline, the
targets and the latest numbers.
"""
