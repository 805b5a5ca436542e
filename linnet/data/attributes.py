"""Render product attributes into one ``key: value; key: value`` text field.

Attributes come either as columns (``colour``, ``size``) or as one column holding a JSON object
(``{"colour": "red"}``) or ready-made ``key: value; key: value`` text; any mix renders the same way, in
column order, so the model sees one stable format at training and serving time.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

PAIR_SEPARATOR = "; "
KEY_VALUE_SEPARATOR = ": "
# "k: v; k: v" text: at least one "key: value" pair whose key has no punctuation that JSON/paths use.
_PAIRS_PATTERN = re.compile(r"^\s*[^:;{}\[\]]+:\s*[^;]*(;\s*[^:;{}\[\]]+:\s*[^;]*)*;?\s*$")


def _clean(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, tuple)):
        return ", ".join(part for part in (_clean(item) for item in value) if part)
    if isinstance(value, Mapping):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    # separators inside a value would split it into fake pairs when read back
    return " ".join(str(value).replace(";", ",").split())


def parse_pairs(text: str) -> list[tuple[str, str]] | None:
    """``key: value`` pairs of a JSON-object or ``k: v; k: v`` string, or None when it is neither.

    Example:
        >>> parse_pairs('{"colour": "red", "size": 42}')
        [('colour', 'red'), ('size', '42')]
        >>> parse_pairs("colour: red; size: M")
        [('colour', 'red'), ('size', 'M')]
        >>> parse_pairs("red") is None
        True
    """
    stripped = text.strip()
    if stripped.startswith("{") and stripped.endswith("}"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError:
            return None
        if isinstance(data, dict):
            return [(_clean(key), _clean(value)) for key, value in data.items()]
        return None
    if ":" in stripped and _PAIRS_PATTERN.match(stripped) and "://" not in stripped:
        pairs = []
        for part in stripped.split(";"):
            if part.strip():
                key, _, value = part.partition(":")
                pairs.append((_clean(key), _clean(value)))
        return pairs
    return None


def render_attributes(record: Mapping[str, Any], columns: Sequence[str]) -> str:
    """The ``key: value; key: value`` text of one record's attribute columns; empty values are left out.

    Example:
        >>> render_attributes({"colour": "Navy Blue", "extra": '{"size": "M"}', "season": ""},
        ...                   ["colour", "season", "extra"])
        'colour: Navy Blue; size: M'
    """
    pairs: list[tuple[str, str]] = []
    for column in columns:
        value = record.get(column)
        if type(value) is str and ":" not in value and "{" not in value:  # the common case, fast
            if value and not value.isspace():
                pairs.append((column, " ".join(value.replace(";", ",").split())))
            continue
        if isinstance(value, Mapping):
            pairs.extend((_clean(key), _clean(item)) for key, item in value.items())
            continue
        if isinstance(value, str):
            parsed = parse_pairs(value)
            if parsed is not None:
                pairs.extend(parsed)
                continue
        pairs.append((column, _clean(value)))
    return PAIR_SEPARATOR.join(f"{key}{KEY_VALUE_SEPARATOR}{value}" for key, value in pairs if key and value)
