"""A taxonomy's localized category names as extra labelled training examples.

A tree with names in several languages (Google's taxonomy files per locale, Shopify's ``dist/<locale>``)
already says, for every node, how that category is called in German, Japanese, ... Adding each of those
names as a labelled example of its node gives a multilingual model a first signal in languages that
have no labelled products yet: with a multilingual encoder (``use_multilingual_v3``) a German title
lands near the German category name it was trained on.

Nothing here imports TensorFlow.

Example:
    >>> from linnet.taxonomy import Node, Taxonomy
    >>> tree = Taxonomy([Node("1", "Shoes", None, 1, {"en-US": "Shoes", "de-DE": "Schuhe"}),
    ...                  Node("2", "Boots", "1", 2, {"en-US": "Boots", "de-DE": "Stiefel"})],
    ...                 locales=["en-US", "de-DE"])
    >>> examples = localized_name_examples(tree)
    >>> list(examples.texts), list(examples.node_ids)
    (['Schuhe', 'Stiefel'], ['1', '2'])
    >>> examples.labels.tolist()
    [[0, -1], [0, 0]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from linnet.errors import ConfigError

TEXT_CHOICES = ("name", "path", "name_and_path")
ID_PREFIX = "localized-name"


@dataclass(frozen=True)
class LocalizedNameExamples:
    """Category names as labelled examples; every array has one entry per example.

    Attributes:
        ids: ``[N]`` example ids, ``"localized-name:<locale>:<node id>"`` (``:path`` added for path texts).
        texts: ``[N]`` the name (or localized path) of the node.
        node_ids: ``[N]`` the node each text names.
        locales: ``[N]`` the locale of each text.
        labels: int32 ``[N, L]``: ``taxonomy.encode(node_ids)`` (``-1`` below the node's level).
    """

    ids: np.ndarray
    texts: np.ndarray
    node_ids: np.ndarray
    locales: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def to_frame(self, text_column: str = "title", category_column: str = "category_id"):
        """The examples as a pandas DataFrame (``id``, ``text_column``, ``category_column``, ``locale``)."""
        import pandas as pd  # lazy: pandas is only needed for this export, and slow to import

        return pd.DataFrame(
            {"id": self.ids, text_column: self.texts, category_column: self.node_ids, "locale": self.locales}
        )


def localized_name_examples(
    taxonomy,
    locales: Sequence[str] | None = None,
    *,
    include_primary: bool = False,
    text: str = "name",
    path_separator: str = " > ",
    max_level: int | None = None,
) -> LocalizedNameExamples:
    """Every node's names in the taxonomy's (other) locales as labelled examples of that node.

    A localized name equal to the node's primary name (case-insensitively; en-GB "Shoes" next to en-US
    "Shoes") adds nothing and is skipped, as is a repeated ``(text, node)`` pair.

    Args:
        taxonomy: a `linnet.taxonomy.Taxonomy` with localized names (``taxonomy.locales``).
        locales: the locales to take; default every locale but the primary one (``taxonomy.locales[0]``).
        include_primary: also add the primary names (useful when the tree has no labelled products).
        text: ``"name"`` (the node's own name), ``"path"`` (root-to-node names in that locale joined with
            ``path_separator``, which tells apart "Accessories" under two parents) or ``"name_and_path"``
            (both, two examples per node and locale).
        path_separator: joins a path's names.
        max_level: take nodes down to this level only (``None``: all).

    Returns:
        `LocalizedNameExamples`, ordered by locale, then by the taxonomy's canonical node order.

    Raises:
        ConfigError: the tree has no localized names, an unknown locale or ``text`` is asked for.

    Example:
        >>> from linnet.taxonomy import Node, Taxonomy
        >>> tree = Taxonomy([Node("1", "Shoes", None, 1, {"en": "Shoes", "fr": "Chaussures"}),
        ...                  Node("2", "Boots", "1", 2, {"en": "Boots", "fr": "Bottes"})], locales=["en", "fr"])
        >>> list(localized_name_examples(tree, text="path").texts)
        ['Chaussures', 'Chaussures > Bottes']
    """
    if text not in TEXT_CHOICES:
        raise ConfigError(f"localized_names: text must be one of {TEXT_CHOICES}, got {text!r}")
    available = tuple(taxonomy.locales)
    if not available:
        raise ConfigError(
            "localized_names: the taxonomy has no localized names; load it from several locale files "
            "(for example Taxonomy.from_shopify([...en/categories.txt, .../de/categories.txt]))"
        )
    primary = available[0]
    if locales is None:
        chosen = list(available if include_primary else available[1:])
    else:
        if isinstance(locales, str):
            locales = [locales]
        unknown = [locale for locale in locales if locale not in available]
        if unknown:
            raise ConfigError(f"localized_names: unknown locale(s) {unknown}; the taxonomy has {list(available)}")
        chosen = [locale for locale in locales if include_primary or locale != primary]
    if max_level is not None and (isinstance(max_level, bool) or not isinstance(max_level, int) or max_level < 1):
        raise ConfigError(f"localized_names: max_level must be a positive integer, got {max_level!r}")

    nodes = [node for node in taxonomy.nodes if max_level is None or node.level <= max_level]
    kinds = ("name", "path") if text == "name_and_path" else (text,)
    ids, texts, node_ids, example_locales = [], [], [], []
    seen: set[tuple[str, str]] = set()
    for locale in chosen:
        for node in nodes:
            localized = node.names.get(locale)
            if not localized:
                continue
            if locale != primary and localized.casefold() == node.name.casefold():
                continue
            for kind in kinds:
                value = localized if kind == "name" else path_separator.join(taxonomy.path(node.id, locale))
                if (value, node.id) in seen:
                    continue
                seen.add((value, node.id))
                suffix = ":path" if kind == "path" and text == "name_and_path" else ""
                ids.append(f"{ID_PREFIX}:{locale}:{node.id}{suffix}")
                texts.append(value)
                node_ids.append(node.id)
                example_locales.append(locale)
    labels = taxonomy.encode(node_ids) if node_ids else np.zeros((0, taxonomy.num_levels), dtype=np.int32)
    return LocalizedNameExamples(
        ids=np.asarray(ids, dtype=object),
        texts=np.asarray(texts, dtype=object),
        node_ids=np.asarray(node_ids, dtype=object),
        locales=np.asarray(example_locales, dtype=object),
        labels=np.asarray(labels, dtype=np.int32),
    )


def add_localized_names(catalog, text_field: str | None = None, **options):
    """A prepared catalog with the taxonomy's localized names appended as training rows.

    The new rows are in the ``"train"`` split: validation and test keep measuring real products. Their
    text goes into ``text_field`` (default the schema's first text field); other text fields are empty,
    images absent (``""``), values NaN.

    Args:
        catalog: a `linnet.data.PreparedCatalog` whose ``taxonomy`` has localized names.
        text_field: the feature that receives the names.
        **options: `localized_name_examples` arguments (``locales``, ``include_primary``, ``text``, ...).

    Returns:
        A new `PreparedCatalog` (the input is not changed).

    Raises:
        ConfigError: the catalog has no taxonomy, ``text_field`` is not one of its text fields, or the
            tree has no localized names.

    Example:
        >>> catalog = prepare_catalog("products.csv", schema, taxonomy=tree)  # doctest: +SKIP
        >>> catalog = add_localized_names(catalog, text="path")  # doctest: +SKIP
    """
    if catalog.taxonomy is None:
        raise ConfigError("localized_names: the catalog has no taxonomy to take names from")
    fields = list(catalog.texts)
    field = text_field or fields[0]
    if field not in catalog.texts:
        raise ConfigError(f"localized_names: text_field {field!r} is not a text field of the catalog ({fields})")
    examples = localized_name_examples(catalog.taxonomy, **options)
    count = len(examples)
    if count == 0:
        return catalog

    def append(array, new):
        if array.dtype.kind in "USO":  # strings stay variable-length (no truncation to the old width)
            return np.concatenate([array.astype(object), np.asarray(new, dtype=object)])
        return np.concatenate([array, np.asarray(new).astype(array.dtype)])

    def filled(value):
        return np.full(count, value, dtype=object)

    texts = {name: append(values, examples.texts if name == field else filled("")) for name, values in catalog.texts.items()}
    return type(catalog)(
        ids=append(catalog.ids, examples.ids),
        texts=texts,
        image_sources=None if catalog.image_sources is None else append(catalog.image_sources, filled("")),
        labels=append(catalog.labels, examples.labels),
        split=append(catalog.split, filled("train")),
        values=None if catalog.values is None else append(catalog.values, np.full(count, np.nan)),
        locations=append(catalog.locations, np.full(count, -1)),
        taxonomy=catalog.taxonomy,
        schema=catalog.schema,
        report=catalog.report,
        source=catalog.source,
    )
