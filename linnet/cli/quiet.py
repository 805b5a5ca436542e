"""Quiet by default: TensorFlow's C++ start-up logs and Keras's chatter stay out of a command's output.

`quiet_tensorflow` runs before any command imports TensorFlow. It sets ``TF_CPP_MIN_LOG_LEVEL=3`` (the
C++ logs after start-up) and hides what TensorFlow's native libraries print to file descriptor 2 while
``import tensorflow`` runs (the CUDA-stub lines come before absl reads any setting); a failed import still
shows everything it printed. ``--verbose`` skips all of it. This module does not import TensorFlow.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
import tempfile
import warnings

#: Python warnings a command never needs to show (Keras's end-of-dataset notice on a finite tf.data input).
QUIET_WARNINGS = ("Your input ran out of data",)


class _SilentImport(importlib.abc.MetaPathFinder):
    """Finds ``name`` once, through the other finders, and runs its module code with fd 2 set aside."""

    def __init__(self, name: str):
        self.name = name

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # one-off: the real finders take it from here
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        real_exec = spec.loader.exec_module

        def exec_module(module):
            with tempfile.TemporaryFile() as captured:
                saved = os.dup(2)
                sys.stderr.flush()
                os.dup2(captured.fileno(), 2)
                try:
                    real_exec(module)
                except BaseException:
                    os.dup2(saved, 2)
                    captured.seek(0)
                    os.write(2, captured.read())  # a failed import keeps its messages
                    raise
                finally:
                    os.dup2(saved, 2)
                    os.close(saved)

        spec.loader.exec_module = exec_module
        return spec


def quiet_tensorflow() -> None:
    """TensorFlow's C++ logs off, its start-up lines hidden, and `QUIET_WARNINGS` ignored (see the module)."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    for message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    if "tensorflow" not in sys.modules and not any(isinstance(finder, _SilentImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _SilentImport("tensorflow"))
