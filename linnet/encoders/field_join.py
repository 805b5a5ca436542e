"""Joining a product's text fields into one string per row, as TF ops, for the sentence encoders.

Sentence encoders (USE, BERT) read one text, so ``{"title": ..., "description": ...}`` becomes
``"title. description"``. Empty fields are dropped first, so a product without a description is
encoded exactly like its title alone (no dangling separator that would shift its vector).
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from linnet.encoders.ngram import fields_in_order

DEFAULT_FIELD_SEPARATOR = ". "


def join_text_fields(inputs, text_fields: Sequence[str], separator: str, layer_name: str):
    """``{field: tf.string [B]}`` (or a list in ``text_fields`` order) -> ``tf.string [B]``.

    Args:
        inputs: the text features; extra keys are ignored.
        text_fields: the fields to join, in order.
        separator: put between two non-empty fields.
        layer_name: named in the error when a field is missing.

    Returns:
        One string per row: the non-empty (after stripping) fields joined with ``separator``.

    Raises:
        ConfigError: a field of ``text_fields`` is missing from ``inputs``.

    Example:
        >>> import tensorflow as tf
        >>> join_text_fields({"title": tf.constant(["Red shirt", "Mug"]), "brand": tf.constant(["Acme", " "])},
        ...                  ["title", "brand"], ". ", "encoder").numpy()
        array([b'Red shirt. Acme', b'Mug'], dtype=object)
    """
    fields = [tf.reshape(tf.convert_to_tensor(field, dtype=tf.string), [-1]) for field in
              fields_in_order(inputs, text_fields, layer_name)]
    if len(fields) == 1:
        return fields[0]
    stacked = tf.stack(fields, axis=1)
    non_empty = tf.ragged.boolean_mask(stacked, tf.strings.length(tf.strings.strip(stacked)) > 0)
    return tf.strings.reduce_join(non_empty, axis=1, separator=separator)
