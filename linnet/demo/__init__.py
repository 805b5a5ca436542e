"""`linnet demo`: the whole job on the public fashion catalogue (`run`), read by `catalog`."""

from __future__ import annotations

from linnet.lazy_exports import lazy_exports

_PUBLIC = {
    "run_demo": "linnet.demo.run",
    "DemoSettings": "linnet.demo.run",
    "write_demo_catalog": "linnet.demo.catalog",
}
__all__ = list(_PUBLIC)
__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
