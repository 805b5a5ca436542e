"""The category tree: an immutable set of nodes with per-level class indices.

A `Taxonomy` is the label space of LinNét. Level ``k`` (1-based) holds every node of depth ``k``; real trees
are unbalanced (Google's leaves sit at depths 1 to 7), so a product labelled at depth 3 has no label
(``-1``) at levels 4 and deeper. Nodes are kept in one canonical order, a depth-first pre-order that keeps
the children of every node in the order they were given; the class index of a node is its position among
the nodes of its level in that order, so classes of one parent are contiguous.

This module imports neither TensorFlow nor the readers of taxonomy files: `linnet.taxonomy.formats` imports
it and registers its readers (`register_readers`) when `linnet.taxonomy` is imported, and the ``from_*``
classmethods below look them up there.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from linnet.atomic_files import write_text_atomically
from linnet.errors import TaxonomyError
from linnet.taxonomy._text import PATH_SEPARATOR, normalize_name, split_path

JSON_FORMAT = "linnet-taxonomy"
JSON_FORMAT_VERSION = 1

_AMBIGUOUS = object()

# Reader name ("paths", "level_columns", "google", "shopify", "table") -> function of linnet.taxonomy.formats.
_READERS: dict[str, Callable[..., Taxonomy]] = {}


def register_readers(**readers: Callable[..., Taxonomy]) -> None:
    """Make the ``Taxonomy.from_<name>`` classmethods call these readers (`linnet.taxonomy.formats` does)."""
    _READERS.update(readers)


def _reader(name: str) -> Callable[..., Taxonomy]:
    try:
        return _READERS[name]
    except KeyError:
        raise TaxonomyError(
            f"no taxonomy reader {name!r} is registered; import linnet.taxonomy (its formats module registers them)"
        ) from None


@dataclass(frozen=True)
class Node:
    """One category.

    Attributes:
        id: Unique id (Google: ``"3237"``; Shopify: ``"gid://shopify/TaxonomyCategory/ap-2"``; inferred
            trees: the full path joined with ``" > "``).
        name: Name in the primary locale (NFC, stripped).
        parent_id: Id of the parent, ``None`` for a root.
        level: Depth, 1 for roots.
        names: Name per locale (``{"en-US": ..., "de-DE": ...}``); empty for trees without locales.
    """

    id: str
    name: str
    parent_id: str | None
    level: int
    names: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", MappingProxyType(dict(self.names)))

    def __reduce__(self):  # MappingProxyType does not pickle; a plain dict does.
        return (Node, (self.id, self.name, self.parent_id, self.level, dict(self.names)))


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def folded_names(names) -> tuple[str, ...]:
    """A path's names with case folded: the key under which names that differ only in case are one."""
    return tuple(name.casefold() for name in names)


class Taxonomy:
    """An immutable category tree with per-level class indices, label encoding and JSON persistence.

    Build one with a reader (`from_paths`, `from_level_columns`, `from_google`, `from_shopify`,
    `from_table`, `linnet.taxonomy.load_taxonomy`) or directly from `Node` objects.

    Args:
        nodes: The nodes, parents before or after children; children keep the order given here.
        source: Free-text description of where the tree came from (not part of the fingerprint).
        version: Version of the source taxonomy, e.g. ``"2021-09-21"``.
        locales: Locales of ``Node.names``; the first is the primary one (``Node.name``).

    Raises:
        TaxonomyError: on a duplicate id, an unknown parent, a cycle, an empty name, two siblings with the
            same name or a wrong level.

    Example:
    >>> tax = Taxonomy.from_paths(["Shoes > Boots", "Shoes > Sandals", "Bags"])
    >>> tax.num_levels, tax.level_sizes()
    (2, [2, 2])
    >>> tax.classes(1)
    ['Bags', 'Shoes']
    >>> tax.encode(["Shoes > Boots", "Bags", None]).tolist()
    [[1, 0], [0, -1], [-1, -1]]
    >>> tax.decode([[1, 1]])
    ['Shoes > Sandals']
    """

    def __init__(
        self,
        nodes: Iterable[Node],
        *,
        source: str | None = None,
        version: str | None = None,
        locales: Sequence[str] = (),
    ) -> None:
        given = list(nodes)
        self.source = source
        self.version = version
        self._locales = tuple(locales)
        by_id: dict[str, Node] = {}
        for node in given:
            if not isinstance(node.id, str) or node.id == "":
                raise TaxonomyError(f"node id must be a non-empty string, got {node.id!r}")
            if node.id in by_id:
                raise TaxonomyError(f"duplicate id: {node.id!r}")
            if not node.name:
                raise TaxonomyError(f"empty name for node {node.id!r}")
            by_id[node.id] = node
        children: dict[str | None, list[str]] = {None: []}
        for node in given:
            if node.parent_id is not None and node.parent_id not in by_id:
                raise TaxonomyError(f"unknown parent {node.parent_id!r} of node {node.id!r}")
            children.setdefault(node.parent_id, []).append(node.id)
        for parent_id, siblings in children.items():
            named: dict[str, str] = {}
            for node_id in siblings:
                name = by_id[node_id].name
                if name in named:  # a path could not tell them apart: every label would be "unknown" later
                    where = f"{source}: " if source else ""
                    under = f"under {parent_id!r}" if parent_id is not None else "at the top level"
                    raise TaxonomyError(f"{where}nodes {named[name]!r} and {node_id!r} {under} are both named "
                                        f"{name!r}; sibling names must differ")
                named[name] = node_id
        order: list[str] = []
        stack = list(reversed(children[None]))
        while stack:
            node_id = stack.pop()
            order.append(node_id)
            stack.extend(reversed(children.get(node_id, ())))
        if len(order) != len(given):
            reached = set(order)
            cyclic = sorted(node.id for node in given if node.id not in reached)
            raise TaxonomyError(f"cycle in parent links among nodes {cyclic[:10]!r}")
        self._nodes = tuple(by_id[node_id] for node_id in order)
        self._by_id = by_id
        self._children = {key: tuple(value) for key, value in children.items() if key is not None}
        self._roots = tuple(children[None])
        for node in self._nodes:
            expected = 1 if node.parent_id is None else by_id[node.parent_id].level + 1
            if node.level != expected:
                raise TaxonomyError(f"node {node.id!r} has level {node.level}, expected {expected}")
        self._num_levels = max((node.level for node in self._nodes), default=0)
        self._classes: list[list[str]] = [[] for _ in range(self._num_levels)]
        self._class_index: dict[str, tuple[int, int]] = {}
        for node in self._nodes:
            level_classes = self._classes[node.level - 1]
            self._class_index[node.id] = (node.level, len(level_classes))
            level_classes.append(node.id)
        # codes[row] = the class index of the node's ancestor at each level; the extra last row is "no label".
        self._row = {node.id: row for row, node in enumerate(self._nodes)}
        codes = np.full((len(self._nodes) + 1, self._num_levels), -1, dtype=np.int32)
        for row, node in enumerate(self._nodes):
            if node.parent_id is not None:
                codes[row] = codes[self._row[node.parent_id]]
            codes[row, node.level - 1] = self._class_index[node.id][1]
        self._codes = codes
        self._path_indexes: dict[Any, dict[tuple[str, ...], Any]] = {}  # by locale, and ("casefold", locale)

    # ------------------------------------------------------------------ readers (in formats.py, registered)
    @classmethod
    def from_paths(
        cls,
        paths: Iterable[str | Sequence[str]],
        separator: str = PATH_SEPARATOR,
        source: str | None = None,
        *,
        sort: bool = True,
    ) -> Taxonomy:
        """Infer a tree from category paths, the way hiclass does, and keep it as an explicit object.

        Every prefix of every path becomes a node whose id is the prefix joined with ``" > "``. Repeated
        paths are fine (a catalog column repeats them). Names that differ only in case are one node, spelled
        as most of the paths through it spell it.

        Args:
            paths: Path strings split on ``separator``, or sequences of names.
            separator: Level separator of the strings (``" > "``, ``" >> "``, ``"/"`` ...).
            source: Description stored on the tree.
            sort: Order siblings by name, so the class indices do not depend on row order. With
                ``False`` siblings keep their order of first appearance.

        Raises:
            TaxonomyError: naming the path number and text of an empty path or name, or of a name that
                holds the separator's character (mixed separators such as ``A >> B`` in a ``" > "`` column).

        Example:
        >>> Taxonomy.from_paths(["A >> B", "A >> C"], separator=" >> ").classes(2)
        ['A > B', 'A > C']
        >>> Taxonomy.from_paths(["Bags > Totes", "bags > totes", "Bags"]).classes(2)
        ['Bags > Totes']
        """
        return _reader("paths")(enumerate(paths, start=1), separator=separator, source=source, sort=sort)

    @classmethod
    def from_level_columns(cls, rows: Iterable[Sequence[str | None]], source: str | None = None, *, sort: bool = True) -> Taxonomy:
        """Infer a tree from one column per level (``["Shoes", "Boots", None]``); an empty cell ends the path.

        Raises:
            TaxonomyError: when a row has no first level, or a name after an empty cell (row number given).

        Example:
        >>> Taxonomy.from_level_columns([["Shoes", "Boots"], ["Bags", None]]).classes(2)
        ['Shoes > Boots']
        """
        return _reader("level_columns")(rows, source=source, sort=sort)

    @classmethod
    def from_google(cls, path_or_paths, *, primary_locale: str | None = None, locales: Sequence[str] | None = None) -> Taxonomy:
        """Read Google Product Taxonomy files.

        ``taxonomy-with-ids.<locale>.txt`` files of one version join by id into one tree with names per
        locale (the tree comes from ``primary_locale``, by default en-US when given, else the first file).
        The file without ids (``taxonomy.<locale>.txt``) gets ids from the full path (``"A > B"``).

        Args:
            path_or_paths: One file or several files of the same version.
            primary_locale: Locale whose file defines the nodes and `Node.name`.
            locales: Locale of each file, when the file names do not carry one.

        Example:
        >>> tax = Taxonomy.from_google("taxonomy-with-ids.en-US.txt")  # doctest: +SKIP
        >>> tax.path_string("3237")  # doctest: +SKIP
        'Animals & Pet Supplies > Live Animals'
        """
        return _reader("google")(path_or_paths, primary_locale=primary_locale, locales=locales)

    @classmethod
    def from_shopify(cls, path_or_paths, *, primary_locale: str | None = None, locales: Sequence[str] | None = None) -> Taxonomy:
        """Read Shopify ``categories.txt`` files (one or several locales, joined by GID).

        The locale of ``dist/<locale>/categories.txt`` is its folder name.

        Example:
        >>> tax = Taxonomy.from_shopify("shopify/en/categories.txt")  # doctest: +SKIP
        >>> tax.node("gid://shopify/TaxonomyCategory/ap-2").name  # doctest: +SKIP
        'Pet Supplies'
        """
        return _reader("shopify")(path_or_paths, primary_locale=primary_locale, locales=locales)

    @classmethod
    def from_table(cls, path: str | os.PathLike) -> Taxonomy:
        """Read a table of ``id, parent_id, name`` (CSV, TSV, JSON list or JSON Lines).

        Extra columns ``name_<locale>`` (JSON: a ``names`` object) give localized names. An empty
        ``parent_id`` marks a root.

        Raises:
            TaxonomyError: naming file, line and text of a malformed row, duplicate id, empty name,
                unknown parent or cycle.
        """
        return _reader("table")(path)

    # ------------------------------------------------------------------ basic properties
    @property
    def num_levels(self) -> int:
        """Depth of the deepest node."""
        return self._num_levels

    @property
    def nodes(self) -> tuple[Node, ...]:
        """All nodes in canonical order (depth-first pre-order)."""
        return self._nodes

    @property
    def roots(self) -> tuple[Node, ...]:
        """The level-1 nodes."""
        return tuple(self._by_id[node_id] for node_id in self._roots)

    @property
    def locales(self) -> tuple[str, ...]:
        """Locales with names; the first is the primary one. Empty for trees without locales."""
        return self._locales

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._by_id

    def __iter__(self):
        return iter(self._nodes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Taxonomy):
            return NotImplemented
        return self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(self.fingerprint())

    def __repr__(self) -> str:
        return (
            f"Taxonomy({len(self)} nodes, {len(self._roots)} roots, {self._num_levels} levels"
            + (f", source={self.source!r}" if self.source else "")
            + ")"
        )

    def node(self, node_id: str) -> Node:
        """The node with this id.

        Raises:
            TaxonomyError: when the id is unknown.
        """
        try:
            return self._by_id[node_id]
        except (KeyError, TypeError):
            raise TaxonomyError(f"unknown node id {node_id!r}") from None

    def name(self, node_id: str, locale: str | None = None) -> str:
        """Name of a node in ``locale`` (primary name when ``locale`` is None or has no translation)."""
        node = self.node(node_id)
        if locale is None:
            return node.name
        self._check_locale(locale)
        return node.names.get(locale, node.name)

    def children(self, node_id: str | None) -> tuple[str, ...]:
        """Ids of the children of ``node_id`` (of the roots when ``None``)."""
        if node_id is None:
            return self._roots
        self.node(node_id)
        return self._children.get(node_id, ())

    def is_leaf(self, node_id: str) -> bool:
        return not self.children(node_id)

    def leaves(self) -> list[str]:
        """Ids of the nodes without children, in canonical order."""
        return [node.id for node in self._nodes if node.id not in self._children]

    def ancestors(self, node_id: str, include_self: bool = True) -> list[str]:
        """Ids from the root down to ``node_id`` (hierarchical metrics use these sets).

        Example:
        >>> Taxonomy.from_paths(["A > B > C"]).ancestors("A > B > C", include_self=False)
        ['A', 'A > B']
        """
        node = self.node(node_id)
        chain = [node.id] if include_self else []
        while node.parent_id is not None:
            node = self._by_id[node.parent_id]
            chain.append(node.id)
        chain.reverse()
        return chain

    def descendants(self, node_id: str, include_self: bool = False) -> list[str]:
        """Ids of the subtree below ``node_id`` in canonical order."""
        result = [node_id] if include_self else []
        stack = list(reversed(self.children(node_id)))
        while stack:
            current = stack.pop()
            result.append(current)
            stack.extend(reversed(self._children.get(current, ())))
        return result

    def path(self, node_id: str, locale: str | None = None) -> tuple[str, ...]:
        """Names from the root down to ``node_id`` in ``locale`` (primary names by default)."""
        return tuple(self.name(ancestor, locale) for ancestor in self.ancestors(node_id))

    def path_string(self, node_id: str, separator: str = PATH_SEPARATOR, locale: str | None = None) -> str:
        """`path` joined with ``separator``."""
        return separator.join(self.path(node_id, locale))

    def level_sizes(self) -> list[int]:
        """Number of classes at each level, level 1 first."""
        return [len(level_classes) for level_classes in self._classes]

    # ------------------------------------------------------------------ lookups by path
    def _check_locale(self, locale: str) -> None:
        if locale not in self._locales:
            raise TaxonomyError(f"unknown locale {locale!r}; this taxonomy has {list(self._locales)!r}")

    def _path_index(self, locale: str | None) -> dict[tuple[str, ...], Any]:
        index = self._path_indexes.get(locale)
        if index is None:
            index = {}
            paths: dict[str, tuple[str, ...]] = {}
            for node in self._nodes:
                name = node.name if locale is None else node.names.get(locale, node.name)
                parent = () if node.parent_id is None else paths[node.parent_id]
                key = parent + (name,)
                paths[node.id] = key
                index[key] = _AMBIGUOUS if key in index else node.id
            self._path_indexes[locale] = index
        return index

    def _folded_path_index(self, locale: str | None) -> dict[tuple[str, ...], Any]:
        key = ("casefold", locale)
        index = self._path_indexes.get(key)
        if index is None:
            index = {}
            for names, found in self._path_index(locale).items():
                folded = folded_names(names)
                index[folded] = _AMBIGUOUS if folded in index else found
            self._path_indexes[key] = index
        return index

    def _lookup(self, names: tuple[str, ...], locale: str | None) -> str | None:
        found = self._path_index(locale).get(names)
        if found is None:  # the same names in another case ("apparel & accessories"), when only one node fits
            found = self._folded_path_index(locale).get(folded_names(names))
        if found is _AMBIGUOUS:
            folded = folded_names(names)
            matches = [node.id for node in self._nodes if folded_names(self.path(node.id, locale)) == folded]
            raise TaxonomyError(f"path {' > '.join(names)!r} is ambiguous: nodes {matches!r}")
        return found

    def find_path(self, path: str | Sequence[str], locale: str | None = None, separator: str = PATH_SEPARATOR) -> Node | None:
        """The node at a path of names, or None when no node has that path.

        Names match exactly first; a path no node spells exactly matches the one node whose names differ only in
        case (two such nodes: `TaxonomyError`).

        Args:
            path: A string split on ``separator`` or a sequence of names (NFC-normalised before lookup).
            locale: Look the names up in this locale (``"de-DE"``); primary names when None.

        Example:
        >>> Taxonomy.from_paths(["Shoes > Boots"]).find_path("Shoes > Boots").level
        2
        """
        if locale is not None:
            self._check_locale(locale)
        names = split_path(path, separator)
        found = self._lookup(names, locale)
        return None if found is None else self._by_id[found]

    def deepest_known_ancestor(self, path: str | Sequence[str], locale: str | None = None, separator: str = PATH_SEPARATOR) -> Node | None:
        """The node at the longest known prefix of ``path`` (the node itself when the path is known).

        Example:
        >>> Taxonomy.from_paths(["Shoes > Boots"]).deepest_known_ancestor("Shoes > Clogs").id
        'Shoes'
        """
        if locale is not None:
            self._check_locale(locale)
        names = split_path(path, separator)
        for length in range(len(names), 0, -1):
            found = self._lookup(names[:length], locale)
            if found is not None:
                return self._by_id[found]
        return None

    # ------------------------------------------------------------------ per-level classes
    def _check_level(self, level: int, minimum: int = 1) -> None:
        if not isinstance(level, (int, np.integer)) or not minimum <= level <= self._num_levels:
            raise ValueError(f"level must be an int from {minimum} to {self._num_levels}, got {level!r}")

    def classes(self, level: int) -> list[str]:
        """Node ids of depth ``level`` in canonical order; the class index is the position in this list."""
        self._check_level(level)
        return list(self._classes[level - 1])

    def class_index(self, node_id: str) -> tuple[int, int]:
        """``(level, index)`` of a node."""
        self.node(node_id)
        return self._class_index[node_id]

    def parent_index(self, level: int) -> np.ndarray:
        """For ``level > 1``: int32 array of the level-1 class index of each class's parent."""
        self._check_level(level, minimum=2)
        return np.array(
            [self._class_index[self._by_id[node_id].parent_id][1] for node_id in self._classes[level - 1]],
            dtype=np.int32,
        )

    def child_mask(self, level: int) -> np.ndarray:
        """Bool matrix ``[n(level-1), n(level)]``: ``mask[p, c]`` is True when class ``c`` is a child of ``p``.

        Rows of leaves at ``level - 1`` are all False; the top-down descent stops there.
        """
        parents = self.parent_index(level)
        mask = np.zeros((len(self._classes[level - 2]), len(parents)), dtype=bool)
        mask[parents, np.arange(len(parents))] = True
        return mask

    def child_mask_tensor(self, level: int):
        """`child_mask` as a ``tf.constant`` of dtype bool (imports TensorFlow on first use)."""
        import tensorflow as tf  # lazy: linnet.taxonomy promises not to import TensorFlow

        return tf.constant(self.child_mask(level), dtype=tf.bool)

    # ------------------------------------------------------------------ label encoding
    def encode(self, node_ids: Iterable[str | None]) -> np.ndarray:
        """Class index per level of each label: int32 ``[N, num_levels]``, ``-1`` below the label's depth.

        ``None``, ``""`` and NaN mean "no label" (a row of ``-1``). Integers are read as ids (``3237``).

        Raises:
            TaxonomyError: naming the first unknown id.
        """
        values = list(node_ids)
        row_of = self._row
        try:  # the common case, every label a known id string: one dict lookup per label
            return self._codes[np.fromiter((row_of[value] for value in values), dtype=np.int64, count=len(values))]
        except (KeyError, TypeError):
            pass
        keys = np.empty(len(values), dtype=object)
        for position, value in enumerate(values):
            if _is_missing(value):
                keys[position] = None
            elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
                keys[position] = str(value)
            else:
                keys[position] = value
        missing_row = len(self._nodes)
        rows = np.fromiter(
            (missing_row if key is None else self._row.get(key, -1) for key in keys), dtype=np.int64, count=len(keys)
        )
        unknown = np.flatnonzero(rows < 0)
        if unknown.size:
            raise TaxonomyError(
                f"unknown node id {keys[unknown[0]]!r} at position {int(unknown[0])} "
                f"({unknown.size} unknown labels in all)"
            )
        return self._codes[rows].copy()

    def encode_paths(self, paths: Iterable[str | Sequence[str] | None], separator: str = PATH_SEPARATOR, locale: str | None = None) -> np.ndarray:
        """`encode` for labels given as paths of names (``None`` or ``""`` means no label).

        Raises:
            TaxonomyError: naming the first unknown path and its position.
        """
        if locale is not None:
            self._check_locale(locale)
        cache: dict[Any, str] = {}
        ids: list[str | None] = []
        for position, path in enumerate(paths):
            if _is_missing(path):
                ids.append(None)
                continue
            key = path if isinstance(path, str) else tuple(path)
            if key not in cache:
                found = self._lookup(split_path(path, separator, line=position + 1), locale)
                if found is None:
                    raise TaxonomyError(f"unknown category path at position {position}: {path!r}")
                cache[key] = found
            ids.append(cache[key])
        return self.encode(ids)

    def decode(self, codes) -> list[str | None]:
        """Deepest node id of each row of per-level codes (None for a row of ``-1``).

        Raises:
            TaxonomyError: when a code is out of range for its level.
        """
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[1] != self._num_levels:
            raise ValueError(f"codes must have shape [N, {self._num_levels}], got {codes.shape}")
        codes = codes.astype(np.int64)
        sizes = np.array(self.level_sizes(), dtype=np.int64)
        if np.any(codes >= sizes) or np.any(codes < -1):
            bad_row, bad_level = np.argwhere((codes >= sizes) | (codes < -1))[0]
            raise TaxonomyError(
                f"code {int(codes[bad_row, bad_level])} out of range at row {int(bad_row)}, level {int(bad_level) + 1}"
            )
        valid = codes >= 0
        has_label = valid.any(axis=1)
        deepest = self._num_levels - 1 - np.argmax(valid[:, ::-1], axis=1)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        flat_ids = np.array([node_id for level_classes in self._classes for node_id in level_classes] + [None], dtype=object)
        rows = np.arange(len(codes))
        flat = np.where(has_label, offsets[deepest] + codes[rows, deepest], len(flat_ids) - 1)
        return flat_ids[flat].tolist()

    # ------------------------------------------------------------------ truncation and pruning
    def _subtree(self, keep: set[str]) -> Taxonomy:
        return Taxonomy(
            (node for node in self._nodes if node.id in keep),
            source=self.source,
            version=self.version,
            locales=self._locales,
        )

    def _nearest_kept(self, keep: set[str]) -> dict[str, str]:
        mapping: dict[str, str] = {}
        for node in self._nodes:  # parents come first in canonical order
            mapping[node.id] = node.id if node.id in keep else mapping[node.parent_id]
        return mapping

    def truncation_map(self, depth: int) -> dict[str, str]:
        """Old id -> id of its ancestor at ``depth`` (nodes at or above ``depth`` map to themselves)."""
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        return self._nearest_kept({node.id for node in self._nodes if node.level <= depth})

    def truncate(self, depth: int) -> Taxonomy:
        """The tree of levels 1..``depth``; map labels with `truncation_map`.

        Example:
        >>> Taxonomy.from_paths(["A > B > C"]).truncate(2).num_levels
        2
        """
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        return self._subtree({node.id for node in self._nodes if node.level <= depth})

    def subtree_counts(self, label_counts: Mapping[str, int]) -> dict[str, int]:
        """Labels at or below each node, from counts of labels per node."""
        totals = {node.id: 0 for node in self._nodes}
        for node_id, count in label_counts.items():
            if node_id not in self._by_id:
                raise TaxonomyError(f"label_counts names unknown node id {node_id!r}")
            if count < 0:
                raise ValueError(f"negative count {count} for node {node_id!r}")
            totals[node_id] += int(count)
        for node in reversed(self._nodes):  # children come after parents, so walk backwards
            if node.parent_id is not None:
                totals[node.parent_id] += totals[node.id]
        return totals

    def prune(self, label_counts: Mapping[str, int], min_count: int) -> tuple[Taxonomy, dict[str, str]]:
        """Merge every node with fewer than ``min_count`` labels at or below it into its parent.

        Roots always stay, so no label is lost. Support only shrinks going down, so a merged node takes
        its whole subtree with it.

        Args:
            label_counts: Number of products labelled at each node id (ids not named count 0).
            min_count: Least support a non-root node needs to stay.

        Returns:
            The pruned tree and a map from every old id to the id that now holds its labels.

        Example:
        >>> tax = Taxonomy.from_paths(["A > B", "A > C"])
        >>> pruned, mapping = tax.prune({"A > B": 5, "A > C": 1}, min_count=2)
        >>> pruned.classes(2), mapping["A > C"]
        (['A > B'], 'A')
        """
        totals = self.subtree_counts(label_counts)
        keep = {node.id for node in self._nodes if node.parent_id is None or totals[node.id] >= min_count}
        # A node is only kept when its parent is; support is monotone, so this only matters for roots.
        keep = {node_id for node_id in keep if all(a in keep for a in self.ancestors(node_id))}
        return self._subtree(keep), self._nearest_kept(keep)

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; `from_json` rebuilds an equal tree and ``to_json`` of that is identical."""
        return {
            "format": JSON_FORMAT,
            "format_version": JSON_FORMAT_VERSION,
            "source": self.source,
            "version": self.version,
            "locales": list(self._locales),
            "nodes": [
                {
                    "id": node.id,
                    "parent_id": node.parent_id,
                    "level": node.level,
                    "name": node.name,
                    "names": dict(node.names),
                }
                for node in self._nodes
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Taxonomy:
        """Rebuild a tree from `to_json` output.

        Raises:
            TaxonomyError: when the dict is not a LinNét taxonomy or a node entry is malformed.
        """
        if not isinstance(data, Mapping) or data.get("format") != JSON_FORMAT:
            raise TaxonomyError(f"not a LinNét taxonomy JSON (expected format {JSON_FORMAT!r})")
        if data.get("format_version") != JSON_FORMAT_VERSION:
            raise TaxonomyError(f"unsupported taxonomy JSON format_version {data.get('format_version')!r}")
        nodes = []
        for position, entry in enumerate(data.get("nodes", [])):
            try:
                names = entry.get("names") or {}
                nodes.append(Node(str(entry["id"]), normalize_name(entry["name"]), entry["parent_id"], int(entry["level"]), names))
            except (KeyError, TypeError, ValueError, AttributeError) as error:
                raise TaxonomyError(f"malformed node entry {position}: {entry!r} ({error})") from None
        return cls(nodes, source=data.get("source"), version=data.get("version"), locales=data.get("locales") or ())

    def save(self, path: str | os.PathLike) -> Path:
        """Write `to_json` to ``path`` atomically (temporary file, then rename)."""
        text = json.dumps(self.to_json(), ensure_ascii=False, indent=1)
        return write_text_atomically(path, text + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> Taxonomy:
        """Read a file written by `save`."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise TaxonomyError(f"{path}:{error.lineno}: invalid JSON: {error.msg}") from None
        except UnicodeDecodeError as error:
            raise TaxonomyError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
        except OSError as error:
            raise TaxonomyError(f"cannot read taxonomy {path}: {error}") from None
        try:
            return cls.from_json(data)
        except TaxonomyError as error:
            raise TaxonomyError(f"{path}: {error}") from None

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON of the nodes (ids, parents, levels, names and their order).

        Metadata (``source``, ``version``) does not count: two trees with the same label space and names
        share a fingerprint.
        """
        canonical = json.dumps(
            {"locales": list(self._locales), "nodes": self.to_json()["nodes"]},
            ensure_ascii=False, sort_keys=True, separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
