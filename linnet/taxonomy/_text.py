"""Name normalisation and error messages shared by the taxonomy readers."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from linnet.errors import TaxonomyError

PATH_SEPARATOR = " > "

# Characters that separate levels in real category columns; a name holding the core of the separator in
# use means a line was written with another separator ("A >> B" or "A>B" in a " > " file).
SEPARATOR_CANDIDATES = (" > ", " >> ", " / ", " | ", " » ", ">>", ">", "/", "|", "»")


def normalize_name(name: str) -> str:
    """Return ``name`` in Unicode NFC with surrounding whitespace removed; nothing else is rewritten."""
    return unicodedata.normalize("NFC", name).strip()


def taxonomy_error(problem: str, text: object = None, *, file: object = None, line: int | None = None) -> TaxonomyError:
    """A `TaxonomyError` whose message reads ``file:line: problem: 'text'``."""
    where = ""
    if file is not None and line is not None:
        where = f"{file}:{line}: "
    elif file is not None:
        where = f"{file}: "
    elif line is not None:
        where = f"path {line}: "
    suffix = "" if text is None else f": {text!r}"
    return TaxonomyError(f"{where}{problem}{suffix}")


def separator_core(separator: str) -> str:
    return separator.strip() or separator


def split_path(
    path: str | Sequence[str],
    separator: str = PATH_SEPARATOR,
    *,
    file: object = None,
    line: int | None = None,
) -> tuple[str, ...]:
    """Split a path string (or take a sequence of names) into normalised names.

    Raises:
        TaxonomyError: on an empty path, an empty name, or a name holding another separator.
    """
    if isinstance(path, str):
        text = path
        raw_names = path.split(separator)
    else:
        if path is None or not isinstance(path, Sequence):
            raise taxonomy_error("a path must be a string or a sequence of names", path, file=file, line=line)
        raw_names = list(path)
        text = separator.join(str(name) for name in raw_names)
        for name in raw_names:
            if not isinstance(name, str):
                raise taxonomy_error("path names must be strings", text, file=file, line=line)
    names = tuple(normalize_name(name) for name in raw_names)
    if not names or names == ("",):
        raise taxonomy_error("empty path", text, file=file, line=line)
    core = separator_core(separator)
    stripped = text.strip()
    if any(name == "" for name in names) or (
        isinstance(path, str) and (stripped.startswith(core) or stripped.endswith(core))
    ):
        raise taxonomy_error("empty name in path", text, file=file, line=line)
    if isinstance(path, str):
        for name in names:
            if core in name:
                raise taxonomy_error(
                    f"mixed separators (a name holds {core!r}, the separator is {separator!r})",
                    text, file=file, line=line,
                )
    elif any(PATH_SEPARATOR in name for name in names):
        raise taxonomy_error(f"a name holds the id separator {PATH_SEPARATOR!r}", text, file=file, line=line)
    return names


def sniff_separator(lines: Sequence[str]) -> str:
    """The first separator candidate that occurs in ``lines`` (``" > "`` when none does)."""
    for candidate in SEPARATOR_CANDIDATES:
        if any(candidate in line for line in lines):
            return candidate
    return PATH_SEPARATOR
