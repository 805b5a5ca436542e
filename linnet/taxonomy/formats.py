"""Readers and writers of taxonomy files: Google, Shopify, id/parent/name tables, path lists, LinNét JSON.

The ``Taxonomy.from_*`` classmethods are these readers: importing this module registers them on
`linnet.taxonomy.core` (``linnet.taxonomy`` imports it, so they are there whenever `Taxonomy` is).

Every reader names the file, the line number and the offending text of a bad line in its `TaxonomyError`;
nothing is dropped silently (ids that only a secondary locale file has are reported with a warning).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import warnings
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from linnet.atomic_files import write_text_atomically
from linnet.errors import TaxonomyError
from linnet.taxonomy._text import (
    PATH_SEPARATOR,
    normalize_name,
    sniff_separator,
    split_path,
    taxonomy_error,
)
from linnet.taxonomy.core import (
    JSON_FORMAT,
    Node,
    Taxonomy,
    folded_names,
    register_readers,
)

GOOGLE_HEADER = "# Google_Product_Taxonomy_Version:"
SHOPIFY_HEADER = "# Shopify Product Taxonomy"
SHOPIFY_GID_PREFIX = "gid://shopify/TaxonomyCategory/"

_GOOGLE_LINE = re.compile(r"^(\d+) - (.*)$")
_SHOPIFY_LINE = re.compile(r"^(gid://shopify/TaxonomyCategory/\S+)\s+:\s(.*)$")
_SHOPIFY_VERSION = re.compile(r"^# Shopify Product Taxonomy - Categories:\s*(\S+)")
# Locale in a file name (taxonomy-with-ids.de-DE.2015-02-19.txt) or a folder name (dist/zh-CN/categories.txt).
_LOCALE = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z]{2,4})?$")


# ---------------------------------------------------------------------------------------------- helpers
def _read_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise TaxonomyError(f"{path}:{line}: not UTF-8 text ({error.reason})") from None
    except OSError as error:
        raise TaxonomyError(f"cannot read taxonomy {path}: {error}") from None
    return text.splitlines()


def _as_paths(path_or_paths) -> list[Path]:
    if isinstance(path_or_paths, (str, os.PathLike)):
        return [Path(path_or_paths)]
    paths = [Path(path) for path in path_or_paths]
    if not paths:
        raise TaxonomyError("no taxonomy file given")
    return paths


def _locale_of(path: Path, *, folder: bool) -> str | None:
    if folder:
        return path.parent.name if _LOCALE.match(path.parent.name) else None
    for part in path.name.split("."):
        if _LOCALE.match(part) and "-" in part:
            return part
    return None


def _tree_from_name_paths(numbered: Iterable[tuple[int, tuple[str, ...]]], source, sort: bool) -> Taxonomy:
    """Nodes for every prefix of every path; ids are the prefixes joined with ``" > "``.

    Names that differ only in case are one node (stores spell the same category ``Apparel & Accessories`` and
    ``apparel & accessories``); it takes the spelling most of the paths through it use, the first seen on a tie.
    """
    spellings: dict[tuple[str, ...], Counter] = {}  # by folded prefix, parents first, in order of first appearance
    for _line, names in numbered:
        for depth in range(1, len(names) + 1):
            spellings.setdefault(folded_names(names[:depth]), Counter())[names[depth - 1]] += 1
    nodes: dict[tuple[str, ...], tuple[tuple[str, ...], Node]] = {}
    for folded, counts in spellings.items():
        parent = nodes.get(folded[:-1])
        canonical = (parent[0] if parent else ()) + (counts.most_common(1)[0][0],)
        nodes[folded] = (canonical, Node(PATH_SEPARATOR.join(canonical), canonical[-1],
                                         parent[1].id if parent else None, len(canonical)))
    entries = list(nodes.values())
    if sort:
        # Sorting by the name tuple gives a pre-order with siblings by name.
        entries.sort(key=lambda entry: entry[0])
    return Taxonomy((node for _, node in entries), source=source)


def read_paths(numbered_paths, *, separator: str = PATH_SEPARATOR, source=None, sort: bool = True, file=None) -> Taxonomy:
    """Tree inferred from ``(line_number, path)`` pairs (see `Taxonomy.from_paths`)."""
    numbered = [
        (line, split_path(path, separator, file=file, line=line)) for line, path in numbered_paths
    ]
    return _tree_from_name_paths(numbered, source, sort)


def _is_empty_cell(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (
        isinstance(value, str) and value.strip() == ""
    )


def read_level_columns(rows, *, source=None, sort: bool = True, file=None) -> Taxonomy:
    """Tree inferred from one cell per level per row (see `Taxonomy.from_level_columns`)."""
    numbered = []
    for line, row in enumerate(rows, start=1):
        cells = list(row)
        depth = next((position for position, cell in enumerate(cells) if _is_empty_cell(cell)), len(cells))
        if depth == 0:
            raise taxonomy_error("row has no first level", cells, file=file, line=line)
        if any(not _is_empty_cell(cell) for cell in cells[depth:]):
            raise taxonomy_error("a level is filled after an empty one", cells, file=file, line=line)
        numbered.append((line, split_path([str(cell) for cell in cells[:depth]], file=file, line=line)))
    return _tree_from_name_paths(numbered, source, sort)


def _nodes_from_id_paths(entries: list[tuple[int, str, tuple[str, ...]]], file) -> list[Node]:
    """Nodes of a file whose lines give an id and a full path; the parent is the node at the path minus one."""
    by_path: dict[tuple[str, ...], tuple[str, int]] = {}
    seen_ids: dict[str, int] = {}
    for line, node_id, names in entries:
        if node_id in seen_ids:
            raise taxonomy_error(f"duplicate id (first on line {seen_ids[node_id]})", node_id, file=file, line=line)
        seen_ids[node_id] = line
        if names in by_path:
            raise taxonomy_error(
                f"duplicate path (first on line {by_path[names][1]})", PATH_SEPARATOR.join(names), file=file, line=line
            )
        by_path[names] = (node_id, line)
    nodes = []
    for line, node_id, names in entries:
        parent_id = None
        if len(names) > 1:
            parent = by_path.get(names[:-1])
            if parent is None:
                raise taxonomy_error(
                    f"unknown parent {PATH_SEPARATOR.join(names[:-1])!r}", PATH_SEPARATOR.join(names), file=file, line=line
                )
            parent_id = parent[0]
        nodes.append(Node(node_id, names[-1], parent_id, len(names)))
    return nodes


def _join_locales(primary_nodes: list[Node], primary_locale, secondary: list[tuple[str, dict[str, str], Path]]):
    """Names per locale, joined by id; ids only a secondary file has are reported, not added."""
    names = {node.id: ({primary_locale: node.name} if primary_locale else {}) for node in primary_nodes}
    for locale, names_by_id, path in secondary:
        extra = [node_id for node_id in names_by_id if node_id not in names]
        if extra:
            warnings.warn(
                f"{path}: {len(extra)} ids are not in the primary locale's tree and were not added "
                f"(first: {extra[:5]!r})",
                stacklevel=3,
            )
        for node_id, name in names_by_id.items():
            if node_id in names:
                names[node_id][locale] = name
    return [Node(node.id, node.name, node.parent_id, node.level, names[node.id]) for node in primary_nodes]


def _order_locales(paths: list[Path], locales, primary_locale, *, folder: bool) -> list[tuple[str | None, Path]]:
    if locales is not None:
        if len(locales) != len(paths):
            raise TaxonomyError(f"got {len(locales)} locales for {len(paths)} files")
        pairs = list(zip(locales, paths))
    else:
        pairs = [(_locale_of(path, folder=folder), path) for path in paths]
    if len(pairs) > 1:
        missing = [str(path) for locale, path in pairs if locale is None]
        if missing:
            raise TaxonomyError(f"cannot tell the locale of {missing}; pass locales=")
        seen = {}
        for locale, path in pairs:
            if locale in seen:
                raise TaxonomyError(f"two files for locale {locale!r}: {seen[locale]} and {path}")
            seen[locale] = path
    wanted = primary_locale or ("en-US" if any(locale == "en-US" for locale, _ in pairs) else None)
    wanted = wanted or ("en" if any(locale == "en" for locale, _ in pairs) else None)
    if wanted is not None:
        if not any(locale == wanted for locale, _ in pairs):
            raise TaxonomyError(f"no file for primary locale {wanted!r} among {[locale for locale, _ in pairs]}")
        pairs.sort(key=lambda pair: pair[0] != wanted)
    return pairs


# ---------------------------------------------------------------------------------------------- Google, Shopify
def _data_lines(path: Path, version_in_comment) -> tuple[str | None, list[tuple[int, str, str]]]:
    """The version (from a comment line) and ``(line number, raw, stripped)`` of every non-comment line."""
    version = None
    lines = []
    for line_number, raw in enumerate(_read_lines(path), start=1):
        line = raw.strip()
        if not line:
            continue
        # Comments form the header; after the first category a leading "#" is part of a name ("#1 Hits").
        if not lines and line.startswith("#"):
            version = version_in_comment(line) or version
            continue
        lines.append((line_number, raw, line))
    if not lines:
        raise TaxonomyError(f"{path}: no categories in the file")
    return version, lines


def _joined_tree(kind: str, parsed: list[tuple[str | None, Path, str | None, list]]) -> Taxonomy:
    """One tree from ``(locale, path, version, entries)`` per file; the first file is the primary locale."""
    versions = {version for _, _, version, _ in parsed if version is not None}
    if len(versions) > 1:
        raise TaxonomyError(f"files of different versions cannot be joined: {sorted(versions)}")
    primary_locale, primary_path, version, entries = parsed[0]
    nodes = _nodes_from_id_paths(entries, primary_path)
    if primary_locale is not None:
        secondary = [(locale, {node_id: names[-1] for _, node_id, names in rows}, path)
                     for locale, path, _, rows in parsed[1:]]
        nodes = _join_locales(nodes, primary_locale, secondary)
    source = f"{kind}:" + ",".join(str(path) for _, path, _, _ in parsed)
    locale_list = [locale for locale, _, _, _ in parsed] if primary_locale is not None else []
    try:
        return Taxonomy(nodes, source=source, version=version, locales=locale_list)
    except TaxonomyError as error:
        raise TaxonomyError(f"{primary_path}: {error}") from None


def _google_version(comment: str) -> str | None:
    return comment[len(GOOGLE_HEADER):].strip() or None if comment.startswith(GOOGLE_HEADER) else None


def _parse_google(path: Path) -> tuple[str | None, bool, list[tuple[int, str, tuple[str, ...]]]]:
    """Version, whether lines carry ids, and ``(line, id, names)`` entries."""
    version, lines = _data_lines(path, _google_version)
    with_ids = _GOOGLE_LINE.match(lines[0][2]) is not None
    entries = []
    for line_number, raw, line in lines:
        match = _GOOGLE_LINE.match(line)
        if with_ids and match is None:
            raise taxonomy_error("malformed line (expected '<id> - <path>')", raw, file=path, line=line_number)
        if not with_ids and match is not None:
            raise taxonomy_error("line with an id in a file without ids", raw, file=path, line=line_number)
        names = split_path(match.group(2) if with_ids else line, PATH_SEPARATOR, file=path, line=line_number)
        entries.append((line_number, match.group(1) if with_ids else PATH_SEPARATOR.join(names), names))
    return version, with_ids, entries


def read_google(path_or_paths, *, primary_locale=None, locales=None) -> Taxonomy:
    """Google Product Taxonomy file(s); several locales of one version join by id (see `Taxonomy.from_google`)."""
    pairs = _order_locales(_as_paths(path_or_paths), locales, primary_locale, folder=False)
    parsed = [(locale, path, *_parse_google(path)) for locale, path in pairs]
    if len(parsed) > 1 and not all(with_ids for _, _, _, with_ids, _ in parsed):
        raise TaxonomyError("only files with ids (taxonomy-with-ids.<locale>.txt) can be joined across locales")
    return _joined_tree("google", [(locale, path, version, entries) for locale, path, version, _, entries in parsed])


def _shopify_version(comment: str) -> str | None:
    match = _SHOPIFY_VERSION.match(comment)
    return match.group(1) if match else None


def _parse_shopify(path: Path) -> tuple[str | None, list[tuple[int, str, tuple[str, ...]]]]:
    version, lines = _data_lines(path, _shopify_version)
    entries = []
    for line_number, raw, line in lines:
        match = _SHOPIFY_LINE.match(line)
        if match is None:
            raise taxonomy_error("malformed line (expected 'gid://shopify/TaxonomyCategory/<id> : <path>')",
                                 raw, file=path, line=line_number)
        entries.append((line_number, match.group(1), split_path(match.group(2), PATH_SEPARATOR, file=path, line=line_number)))
    return version, entries


def read_shopify(path_or_paths, *, primary_locale=None, locales=None) -> Taxonomy:
    """Shopify ``categories.txt`` file(s), several locales joined by GID (see `Taxonomy.from_shopify`)."""
    pairs = _order_locales(_as_paths(path_or_paths), locales, primary_locale, folder=True)
    return _joined_tree("shopify", [(locale, path, *_parse_shopify(path)) for locale, path in pairs])


# ---------------------------------------------------------------------------------------------- tables
def _table_rows(path: Path) -> list[tuple[int, dict]]:
    """``(line, row)`` of a CSV/TSV/JSON/JSON Lines table."""
    suffix = path.suffix.lower()
    if suffix in (".json", ".jsonl", ".ndjson"):
        lines = _read_lines(path)
        text = "\n".join(lines)
        if suffix == ".json" and text.lstrip().startswith("["):
            try:
                data = json.loads(text)
            except json.JSONDecodeError as error:
                raise TaxonomyError(f"{path}:{error.lineno}: invalid JSON: {error.msg}") from None
            # json.loads keeps no positions; entry n is reported as line n+1 of a one-entry-per-line file
            # only when that is how the file is laid out, otherwise as "entry n".
            entry_lines = [number for number, line in enumerate(lines, start=1) if line.strip() not in ("[", "]", "")]
            if len(entry_lines) != len(data):
                entry_lines = [f"entry {position}" for position in range(len(data))]
            return list(zip(entry_lines, data))
        rows = []
        for line_number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                rows.append((line_number, json.loads(line)))
            except json.JSONDecodeError as error:
                raise taxonomy_error(f"invalid JSON ({error.msg})", line, file=path, line=line_number) from None
        return rows
    lines = _read_lines(path)
    delimiter = "\t" if suffix in (".tsv", ".tab") or (lines and "\t" in lines[0]) else ","
    reader = csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter)
    header = None
    rows = []
    for cells in reader:
        line_number = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if header is None:
            header = [cell.strip() for cell in cells]
            for required in ("id", "parent_id", "name"):
                if required not in header:
                    raise taxonomy_error(f"header lacks column {required!r}", lines[0], file=path, line=line_number)
            continue
        if len(cells) != len(header):
            raise taxonomy_error(f"expected {len(header)} fields, got {len(cells)}",
                                 delimiter.join(cells), file=path, line=line_number)
        rows.append((line_number, dict(zip(header, cells))))
    return rows


def read_table(path) -> Taxonomy:
    """A table of ``id, parent_id, name`` (+ ``name_<locale>`` columns or a ``names`` object)."""
    path = Path(path)
    rows = _table_rows(path)
    entries: dict[str, tuple[object, str | None, str, dict]] = {}
    locales: list[str] = []
    for line, row in rows:
        if not isinstance(row, dict):
            raise taxonomy_error("expected an object with id, parent_id, name", row, file=path, line=line)
        node_id = row.get("id")
        node_id = "" if node_id is None else str(node_id).strip()
        if node_id == "":
            raise taxonomy_error("empty id", row, file=path, line=line)
        if node_id in entries:
            raise taxonomy_error(f"duplicate id (first on line {entries[node_id][0]})", node_id, file=path, line=line)
        parent = row.get("parent_id")
        parent = None if parent is None or str(parent).strip() == "" else str(parent).strip()
        raw_name = row.get("name")
        name = normalize_name(str(raw_name)) if raw_name is not None else ""
        if name == "":
            raise taxonomy_error("empty name", row, file=path, line=line)
        names = {}
        for key, value in (row.get("names") or {}).items() if isinstance(row.get("names"), dict) else ():
            names[str(key)] = normalize_name(str(value))
        for key, value in row.items():
            if key.startswith("name_") and value is not None and str(value).strip():
                names[key[len("name_"):]] = normalize_name(str(value))
        for locale in names:
            if locale not in locales:
                locales.append(locale)
        entries[node_id] = (line, parent, name, names)
    if not entries:
        raise TaxonomyError(f"{path}: no rows")
    for node_id, (line, parent, _, _) in entries.items():
        if parent is not None and parent not in entries:
            raise taxonomy_error(f"unknown parent {parent!r}", node_id, file=path, line=line)
    levels = _levels_or_cycle(entries, path)
    nodes = [Node(node_id, name, parent, levels[node_id], names) for node_id, (_, parent, name, names) in entries.items()]
    return Taxonomy(nodes, source=f"table:{path}", locales=locales)


def _levels_or_cycle(entries: dict, path: Path) -> dict[str, int]:
    """Depth of every id, walking each parent chain once; a chain that meets itself is a cycle."""
    levels: dict[str, int] = {}
    for start in entries:
        chain = []
        on_chain = set()
        current = start
        while current is not None and current not in levels:
            if current in on_chain:
                line = entries[current][0]
                cycle = chain[chain.index(current):]
                raise taxonomy_error("cycle in parent links", " -> ".join(cycle + [current]), file=path, line=line)
            chain.append(current)
            on_chain.add(current)
            current = entries[current][1]
        level = 0 if current is None else levels[current]
        for node_id in reversed(chain):
            level += 1
            levels[node_id] = level
    return levels


def write_table(taxonomy: Taxonomy, path) -> Path:
    """Write ``id, parent_id, name, name_<locale>...`` as CSV (TSV when the suffix is ``.tsv``), atomically."""
    path = Path(path)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t" if path.suffix.lower() == ".tsv" else ",", lineterminator="\n")
    writer.writerow(["id", "parent_id", "name", *(f"name_{locale}" for locale in taxonomy.locales)])
    for node in taxonomy.nodes:
        writer.writerow([node.id, node.parent_id or "", node.name, *(node.names.get(locale, "") for locale in taxonomy.locales)])
    return write_text_atomically(path, buffer.getvalue())


def write_google(taxonomy: Taxonomy, path, locale: str | None = None) -> Path:
    """Write the Google layout atomically: ``<id> - <path>`` lines when every id is a number (Google's own
    ids), else the layout without ids (``<path>`` lines), whose readers derive ids from the paths."""
    with_ids = all(node.id.isdigit() for node in taxonomy.nodes)
    lines = [f"{GOOGLE_HEADER} {taxonomy.version or 'unknown'}"]
    lines += [
        (f"{node.id} - " if with_ids else "") + taxonomy.path_string(node.id, locale=locale) for node in taxonomy.nodes
    ]
    return write_text_atomically(path, "\n".join(lines) + "\n")


def write_paths(taxonomy: Taxonomy, path, separator: str = PATH_SEPARATOR, locale: str | None = None) -> Path:
    """Write one full path per line, atomically."""
    lines = [taxonomy.path_string(node.id, separator, locale) for node in taxonomy.nodes]
    return write_text_atomically(path, "\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------- sniffing
def sniff_format(path) -> str:
    """``"json"``, ``"google"``, ``"shopify"``, ``"table"`` or ``"paths"`` from a file's name and first lines."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "table"
    lines = _read_lines(path)
    if suffix == ".json":
        head = "\n".join(lines[:5])
        return "json" if f'"{JSON_FORMAT}"' in head or '"format"' in head else "table"
    content = [line.strip() for line in lines if line.strip()]
    if any(line.startswith(GOOGLE_HEADER) for line in content[:3]):
        return "google"
    if any(line.startswith(SHOPIFY_HEADER) for line in content[:3]):
        return "shopify"
    data = content[_header_length(content):][:20]
    if not data:
        raise TaxonomyError(f"{path}: no categories in the file")
    if data[0].startswith(SHOPIFY_GID_PREFIX):
        return "shopify"
    if suffix in (".csv", ".tsv", ".tab"):
        header = re.split(r"[\t,]", data[0])
        if "id" in [cell.strip() for cell in header] and "parent_id" in [cell.strip() for cell in header]:
            return "table"
        return "paths"
    if _GOOGLE_LINE.match(data[0]):
        return "google"
    return "paths"


def _header_length(lines: list[str]) -> int:
    """Number of leading comment lines (``#``) among non-empty stripped lines."""
    return next((position for position, line in enumerate(lines) if not line.startswith("#")), len(lines))


def read_path_list(path, separator: str | None = None) -> Taxonomy:
    """A file with one category path per line; the separator is sniffed when not given."""
    path = Path(path)
    numbered = [(number, line) for number, line in enumerate(_read_lines(path), start=1) if line.strip()]
    numbered = numbered[_header_length([line.strip() for _, line in numbered]):]
    if separator is None:
        separator = sniff_separator([line for _, line in numbered[:200]])
    return read_paths(numbered, separator=separator, source=f"paths:{path}", file=path)


def load_taxonomy(path_or_paths, *, format: str | None = None, **options) -> Taxonomy:
    """Read a taxonomy in any supported format, sniffed from the file(s).

    Formats: Google ``taxonomy-with-ids.<locale>.txt`` (several locales of one version join by id) and
    ``taxonomy.<locale>.txt`` without ids; Shopify ``categories.txt`` (several locales join by GID); the JSON
    that `Taxonomy.save` writes; an ``id, parent_id, name`` table (CSV/TSV/JSON/JSON Lines); a plain list of
    paths, one per line.

    Args:
        path_or_paths: A file or a list of files of one taxonomy (locales).
        format: Force ``"google"``, ``"shopify"``, ``"json"``, ``"table"`` or ``"paths"``.
        **options: Passed to the reader (``primary_locale``, ``locales`` for Google/Shopify; ``separator``
            for path lists).

    Raises:
        TaxonomyError: naming file, line and text of the first bad line.

    Example:
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "tree.txt").write_text("# Google_Product_Taxonomy_Version: 2021-09-21\\n"
    ...                                      "1 - Animals\\n3237 - Animals > Live Animals\\n")
    >>> load_taxonomy(folder / "tree.txt").level_sizes()
    [1, 1]
    """
    paths = _as_paths(path_or_paths)
    for path in paths:
        if not path.is_file():
            raise TaxonomyError(f"taxonomy file not found: {path}")
    formats = [format] * len(paths) if format else [sniff_format(path) for path in paths]
    if len(set(formats)) > 1:
        raise TaxonomyError(f"files of different formats cannot be joined: {dict(zip(map(str, paths), formats))}")
    kind = formats[0]
    if kind not in ("google", "shopify") and len(paths) > 1:
        raise TaxonomyError(f"only Google and Shopify files join across locales, not {kind!r} files")
    single = paths[0] if len(paths) == 1 else paths
    if kind == "google":
        return read_google(single, **options)
    if kind == "shopify":
        return read_shopify(single, **options)
    if kind == "json":
        return Taxonomy.load(paths[0])
    if kind == "table":
        return read_table(paths[0])
    if kind == "paths":
        return read_path_list(paths[0], **options)
    raise TaxonomyError(f"unknown taxonomy format {kind!r}")


# The Taxonomy.from_* classmethods call these (core cannot import this module: it imports core).
register_readers(
    paths=read_paths,
    level_columns=read_level_columns,
    google=read_google,
    shopify=read_shopify,
    table=read_table,
)
