"""Public names of a package, imported from their modules on first use.

A package's ``__init__`` lists which module defines each public name, so ``import linnet`` (and the
`linnet taxonomy` commands) stay free of TensorFlow while ``from linnet.training import train`` still
works.

Example:
    >>> import linnet
    >>> linnet.Taxonomy.__name__
    'Taxonomy'
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping


def lazy_exports(package: str, modules: Mapping[str, str]) -> tuple[Callable, Callable]:
    """The ``__getattr__`` and ``__dir__`` of ``package`` for names defined in ``modules``.

    Args:
        package: the package's ``__name__`` (named in the error for an unknown attribute).
        modules: public name -> dotted module that defines it.
    """

    def __getattr__(name: str):
        if name not in modules:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(modules[name]), name)

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(modules))

    return __getattr__, __dir__
