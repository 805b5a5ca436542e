"""Atomic writes: a temporary file beside the target, then ``os.replace``, so a reader (or a run killed
half way) sees the old file or the whole new one, never a part.

Every room writes its files through these functions. The few writers that rename files of their own
(batch prediction's two partial files, TFRecord shards named once their count is known, the taxonomy
download's checked ``.part`` file) say why where they do it.

Example:
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> print(write_json_atomically(folder / "a.json", {"k": 1}).read_text().strip())
    {
      "k": 1
    }
    >>> with atomic_path(folder / "b.txt") as temporary:
    ...     _ = temporary.write_text("done")
    >>> (folder / "b.txt").read_text()
    'done'
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _umask() -> int:
    """The process's umask (read by setting and restoring it: there is no getter before Python 3.13's
    ``os.umask`` alternatives)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def shared_mode(directory: bool = False) -> int:
    """The mode a plain ``open``/``mkdir`` would give: 0644/0755 under the usual umask 022.

    ``tempfile.mkstemp``/``mkdtemp`` create 0600/0700 (private until renamed), so every atomic write sets
    this mode before the rename: exports and run files stay readable by a TF Serving process running as
    another user, as any file the user writes would be.
    """
    return (0o777 if directory else 0o666) & ~_umask()


def write_atomically(path: str | os.PathLike, data: str | bytes) -> Path:
    """Writes ``data`` (text as UTF-8) to ``path``; returns the path."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


def write_text_atomically(path: str | os.PathLike, text: str) -> Path:
    """Writes ``text`` as UTF-8 to ``path``; returns the path."""
    return write_atomically(path, text)


def write_json_atomically(path: str | os.PathLike, payload: Any) -> Path:
    """Writes ``payload`` as indented JSON (values JSON does not know as ``str``) to ``path``."""
    return write_atomically(path, json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")


def write_yaml_atomically(path: str | os.PathLike, payload: Any) -> Path:
    """Writes ``payload`` as YAML (keys in their order, Unicode kept) to ``path``."""
    import yaml  # PyYAML is imported by the writers of YAML only

    return write_atomically(path, yaml.safe_dump(payload, sort_keys=False, allow_unicode=True))


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that needs a file name (``model.save``, ``savefig``,
    ``np.savez``...): moved onto ``path`` when the block ends, removed if it raises.

    ``suffix`` is the temporary file's ending, for writers that choose the format by it (``.keras``,
    ``.png``, ``.npz``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        if temporary.exists():  # a writer may have replaced it; its own mode is then kept as the writer left it
            os.chmod(temporary, shared_mode())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary folder beside ``path``, renamed to ``path`` when the block ends (``path`` must not
    exist then), removed with its contents if the block raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        yield temporary
        os.chmod(temporary, shared_mode(directory=True))
        os.replace(temporary, path)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
