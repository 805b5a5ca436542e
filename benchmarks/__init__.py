"""LinNét benchmarks: scripts that measure speed and quality and print Markdown tables.

Run them all with ``python -m benchmarks`` (or one area: ``python -m benchmarks pipeline``). Each module
``bench_<area>.py`` exposes ``run()`` returning its rows (a list of dicts, or a dict of named lists of
dicts); the runner prints one table per area and writes ``benchmarks/results/<date>.json``.
"""
