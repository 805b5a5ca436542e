"""LinNét benchmarks: scripts that measure speed and quality and print Markdown tables.

Run them all with ``python -m benchmarks`` (or one area: ``python -m benchmarks pipeline``). Each module
``bench_<area>.py`` exposes ``run()`` returning its rows (a list of dicts, or a dict of named lists of
dicts); the runner prints one table per area and writes ``benchmarks/results/<date>.json``.
"""

import os
from pathlib import Path

# The shared public data (read only, never copied into the repository); LINNET_SHARED_DATA overrides it.
SHARED = Path(os.environ.get("LINNET_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
FASHION = SHARED / "fashion_product_images"
