"""Mappings between two trees, e.g. Shopify -> Google, so a model trained on one tree can report in the other.

Shopify publishes its mappings by name (``dist/en/integrations/shopify_<v>_to_google_<v>.txt``)::

    → Animals & Pet Supplies > Live Animals
    ⇒ Animals & Pet Supplies > Live Animals

Those names are resolved against both trees. A table ``shopify_gid, shopify_path, google_id, google_path``
(TSV/CSV, ids already joined) is read as well.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from pathlib import Path

from linnet.errors import TaxonomyError
from linnet.taxonomy._text import PATH_SEPARATOR, split_path, taxonomy_error
from linnet.taxonomy.core import Taxonomy
from linnet.taxonomy.formats import _read_lines

SOURCE_MARK = "→"
TARGET_MARK = "⇒"


def read_name_mapping(path) -> list[tuple[int, tuple[str, ...], tuple[str, ...]]]:
    """``(line, source names, target names)`` of a Shopify ``→``/``⇒`` mapping file.

    Raises:
        TaxonomyError: naming file, line and text of a line that is neither, a ``⇒`` without a ``→`` before
            it, or a ``→`` without a target.
    """
    path = Path(path)
    pairs = []
    pending: tuple[int, tuple[str, ...]] | None = None
    for number, raw in enumerate(_read_lines(path), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(SOURCE_MARK):
            if pending is not None:
                raise taxonomy_error(f"category without a {TARGET_MARK} target", PATH_SEPARATOR.join(pending[1]),
                                     file=path, line=pending[0])
            pending = (number, split_path(line[len(SOURCE_MARK):], file=path, line=number))
        elif line.startswith(TARGET_MARK):
            if pending is None:
                raise taxonomy_error(f"{TARGET_MARK} target without a {SOURCE_MARK} category", raw, file=path, line=number)
            pairs.append((pending[0], pending[1], split_path(line[len(TARGET_MARK):], file=path, line=number)))
            pending = None
        else:
            raise taxonomy_error(f"malformed line (expected '{SOURCE_MARK} <path>' or '{TARGET_MARK} <path>')",
                                 raw, file=path, line=number)
    if pending is not None:
        raise taxonomy_error(f"category without a {TARGET_MARK} target", PATH_SEPARATOR.join(pending[1]),
                             file=path, line=pending[0])
    return pairs


def _read_id_table(path: Path) -> list[tuple[int, str, str]]:
    lines = _read_lines(path)
    delimiter = "\t" if lines and "\t" in lines[0] else ","
    reader = csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter)
    header = None
    rows = []
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        if header is None:
            header = [cell.strip() for cell in cells]
            if "shopify_gid" not in header or "google_id" not in header:
                raise taxonomy_error("header lacks shopify_gid or google_id", delimiter.join(cells),
                                     file=path, line=reader.line_num)
            continue
        row = dict(zip(header, (cell.strip() for cell in cells)))
        if not row.get("shopify_gid") or not row.get("google_id"):
            raise taxonomy_error("row lacks a shopify_gid or google_id", delimiter.join(cells), file=path, line=reader.line_num)
        rows.append((reader.line_num, row["shopify_gid"], row["google_id"]))
    return rows


def load_shopify_google_mapping(path, shopify: Taxonomy | None = None, google: Taxonomy | None = None) -> dict[str, str]:
    """Shopify GID -> Google id.

    Args:
        path: Shopify's ``→``/``⇒`` file (needs both trees to resolve the names) or an id table with the
            columns ``shopify_gid`` and ``google_id``.
        shopify: The Shopify tree the mapping's source paths live in.
        google: The Google tree of the target paths.

    Raises:
        TaxonomyError: naming file and line of a path missing from its tree, an id the given tree does not
            have, or a Shopify category mapped twice.

    Example:
    >>> mapping = load_shopify_google_mapping("shopify_2025-08_to_google_2021-09-21.txt",
    ...                                       shopify=shopify_tree, google=google_tree)  # doctest: +SKIP
    >>> mapping["gid://shopify/TaxonomyCategory/ap-1"]  # doctest: +SKIP
    '3237'
    """
    path = Path(path)
    if path.suffix.lower() in (".tsv", ".csv"):
        rows = _read_id_table(path)
    else:
        if shopify is None or google is None:
            raise TaxonomyError(f"{path}: a mapping by names needs the shopify= and google= trees to resolve them")
        rows = []
        for line, source_names, target_names in read_name_mapping(path):
            source = shopify.find_path(source_names)
            if source is None:
                raise taxonomy_error("Shopify path not in the Shopify tree", PATH_SEPARATOR.join(source_names),
                                     file=path, line=line)
            target = google.find_path(target_names)
            if target is None:
                raise taxonomy_error("Google path not in the Google tree", PATH_SEPARATOR.join(target_names),
                                     file=path, line=line + 1)
            rows.append((line, source.id, target.id))
    mapping: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for line, source_id, target_id in rows:
        if source_id in mapping:
            raise taxonomy_error(f"Shopify category mapped twice (first on line {first_line[source_id]})", source_id,
                                 file=path, line=line)
        if shopify is not None and source_id not in shopify:
            raise taxonomy_error("Shopify id not in the Shopify tree", source_id, file=path, line=line)
        if google is not None and target_id not in google:
            raise taxonomy_error("Google id not in the Google tree", target_id, file=path, line=line)
        mapping[source_id] = target_id
        first_line[source_id] = line
    return mapping


class TaxonomyMapping:
    """Reports nodes of one tree in another; a node without a pair uses its nearest mapped ancestor.

    Args:
        source: The tree the labels come from (e.g. Shopify).
        target: The tree to report in (e.g. Google).
        pairs: Source id -> target id.

    Raises:
        TaxonomyError: when a pair names an id that is not in its tree.

    Example:
    >>> from linnet.taxonomy import Taxonomy
    >>> shop = Taxonomy.from_paths(["Pets > Birds > Cages", "Pets > Fish"])
    >>> goog = Taxonomy.from_paths(["Animals > Bird Supplies", "Animals"])
    >>> mapping = TaxonomyMapping(shop, goog, {"Pets": "Animals", "Pets > Birds": "Animals > Bird Supplies"})
    >>> mapping.map("Pets > Birds > Cages"), mapping.map("Pets > Fish")
    ('Animals > Bird Supplies', 'Animals')
    """

    def __init__(self, source: Taxonomy, target: Taxonomy, pairs: Mapping[str, str]) -> None:
        self.source = source
        self.target = target
        for source_id, target_id in pairs.items():
            if source_id not in source:
                raise TaxonomyError(f"mapping names source id {source_id!r}, which the source tree does not have")
            if target_id not in target:
                raise TaxonomyError(f"mapping names target id {target_id!r}, which the target tree does not have")
        self.pairs = dict(pairs)
        # Resolve every source node once, parents first (canonical order), so map() is a dict lookup.
        self._resolved: dict[str, str | None] = {}
        for node in source.nodes:
            inherited = None if node.parent_id is None else self._resolved[node.parent_id]
            self._resolved[node.id] = self.pairs.get(node.id, inherited)

    @classmethod
    def shopify_to_google(cls, mapping_file, shopify: Taxonomy, google: Taxonomy) -> TaxonomyMapping:
        """Read Shopify's mapping file (names or id table) and resolve it against both trees."""
        return cls(shopify, google, load_shopify_google_mapping(mapping_file, shopify=shopify, google=google))

    @property
    def unmapped(self) -> list[str]:
        """Source ids without a pair of their own (they report through an ancestor, or as None)."""
        return [node.id for node in self.source.nodes if node.id not in self.pairs]

    def map(self, node_id: str | None) -> str | None:
        """Target id for a source id (None for None, or when neither the node nor an ancestor is mapped)."""
        if node_id is None:
            return None
        if node_id not in self._resolved:
            raise TaxonomyError(f"unknown source node id {node_id!r}")
        return self._resolved[node_id]

    def map_many(self, node_ids: Iterable[str | None]) -> list[str | None]:
        """`map` for many labels."""
        return [self.map(node_id) for node_id in node_ids]

    def map_path(self, node_id: str, locale: str | None = None) -> str | None:
        """Target path string of a source node, in the target's names (``locale`` when given)."""
        target = self.map(node_id)
        return None if target is None else self.target.path_string(target, locale=locale)
