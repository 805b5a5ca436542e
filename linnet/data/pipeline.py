"""`make_dataset`: a `PreparedCatalog` as a ``tf.data`` pipeline of ``(features, labels, sample_weights)``.

Work per example runs as TF ops in parallel (file reads in a parallel interleave, image decode and
augmentation in a parallel map over batches) and the pipeline prefetches, so the model never waits on
Python.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from linnet.data.augment import AugmentConfig, build_augmenter
from linnet.data.images import (
    IMAGE_FIELD,
    IMAGE_PRESENT_FIELD,
    decode_image,
    decode_image_or_raise,
)
from linnet.data.weights import class_weights as compute_class_weights
from linnet.errors import ConfigError

_PATH_KEY = "__image_path"
_BYTES_KEY = "__image_bytes"
_LABELS_KEY = "__labels"


def _image_columns(sources: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    paths = np.array([source if isinstance(source, str) else "" for source in sources], dtype=object)
    inline = np.array([source if isinstance(source, bytes) else b"" for source in sources], dtype=object)
    return paths, inline


def _image_loader(image_size: int):
    """Interleave function: one element with its image read and decoded, or blank when that fails.

    Reading and decoding happen in one ``ignore_errors()`` stage (see `linnet.data.images`), so a file
    deleted since preparation, or corrupt bytes, give ``image_present = 0`` instead of an error.
    """
    import tensorflow as tf  # lazy: linnet.data promises no TensorFlow at import

    def load(element: dict):
        rest = {key: value for key, value in element.items() if key not in (_PATH_KEY, _BYTES_KEY)}
        path, inline = element[_PATH_KEY], element[_BYTES_KEY]

        def read_and_decode(_):
            data = tf.cond(tf.strings.length(path) > 0, lambda: tf.io.read_file(path), lambda: inline)
            image, present = decode_image_or_raise(data, image_size)
            return {**rest, IMAGE_FIELD: image, IMAGE_PRESENT_FIELD: present}

        blank = {**rest, IMAGE_FIELD: tf.zeros([image_size, image_size, 3], tf.float32),
                 IMAGE_PRESENT_FIELD: tf.constant(0.0)}
        decoded = tf.data.Dataset.from_tensors(path).map(read_and_decode).ignore_errors()
        return decoded.concatenate(tf.data.Dataset.from_tensors(blank)).take(1)

    return load


def make_dataset(
    catalog,
    batch_size: int = 256,
    shuffle: bool = False,
    image_size: int | None = None,
    augment: Any = False,
    class_weighting: str = "none",
    with_labels: bool = True,
    *,
    class_weights: dict[str, np.ndarray] | None = None,
    seed: int | None = None,
    deterministic: bool | None = None,
    shuffle_buffer: int | None = None,
    drop_remainder: bool = False,
    repeat: bool = False,
):
    """Builds the ``tf.data`` pipeline the model trains and evaluates on.

    Args:
        catalog: A `PreparedCatalog` (often ``catalog.subset("train")``).
        batch_size: Examples per batch.
        shuffle: Shuffle examples (reshuffled every epoch; seeded by ``seed``).
        image_size: Decode images to ``S x S``; None means no image features even if the schema has an
            image column.
        augment: False, True (default augmentation), or an `AugmentConfig` / dict of its fields. Applies to
            images only.
        class_weighting: ``"none"``, ``"balanced"`` or ``"sqrt"``; weights are computed from ``catalog``'s
            own labels unless ``class_weights`` is given (pass the training split's to a validation set).
        with_labels: False yields only ``features`` (for prediction).
        class_weights: Precomputed ``{"level_k": [n_k]}`` weights (see `linnet.data.class_weights`).
        seed: Shuffle and augmentation seed.
        deterministic: Force (True) or relax (False) element order of the parallel stages; tf.data's
            default when None. Ignored (always deterministic order) when ``seed`` is set and this is None.
        shuffle_buffer: Shuffle buffer size (default: whole catalog up to 100,000 examples).
        drop_remainder: Drop the last incomplete batch.
        repeat: Repeat forever.

    Returns:
        ``tf.data.Dataset`` of ``(features, labels, sample_weights)`` (or ``features``). ``features``
        holds one ``tf.string [B]`` per ``schema.feature_text_fields`` entry, and with images
        ``image`` ``float32 [B, S, S, 3]`` in ``[0, 255]`` and ``image_present`` ``float32 [B]``.
        ``labels`` is ``{"level_k": int32 [B]}`` (``-1`` = no label) and ``sample_weights``
        ``{"level_k": float32 [B]}`` (0 where the label is ``-1``).

    Example:
        >>> dataset = make_dataset(catalog.subset("train"), batch_size=64, shuffle=True, image_size=96,
        ...                        class_weighting="sqrt")  # doctest: +SKIP
        >>> features, labels, weights = next(iter(dataset))  # doctest: +SKIP
    """
    import tensorflow as tf  # lazy: linnet.data promises no TensorFlow at import

    schema = catalog.schema
    # object arrays stay variable-length tf.strings; astype(str) would pad every value to the longest one
    columns: dict[str, Any] = {name: np.asarray(catalog.texts[name], dtype=object)
                               for name in schema.feature_text_fields}
    with_images = image_size is not None
    if with_images:
        if catalog.image_sources is None:
            raise ConfigError("image_size is set but the schema has no image column (--image-column)")
        paths, inline = _image_columns(catalog.image_sources)
        columns[_PATH_KEY] = paths
        columns[_BYTES_KEY] = inline
    weights = None
    if with_labels:
        if catalog.num_levels == 0:
            raise ConfigError("with_labels=True needs a catalog with categories (or pass with_labels=False)")
        weights = class_weights
        if weights is None:
            weights = compute_class_weights(catalog.labels, catalog.taxonomy.level_sizes(), class_weighting)
        columns[_LABELS_KEY] = catalog.labels.astype(np.int32)

    dataset = tf.data.Dataset.from_tensor_slices(columns)
    options = tf.data.Options()
    if deterministic is None and seed is not None:
        deterministic = True
    if deterministic is not None:
        options.deterministic = deterministic
    dataset = dataset.with_options(options)
    if shuffle:
        buffer = shuffle_buffer or min(max(len(catalog), 1), 100_000)
        dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    if with_images:
        dataset = dataset.interleave(_image_loader(image_size), cycle_length=tf.data.AUTOTUNE,
                                     num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)

    augmenter = _augmenter(augment, seed) if with_images else None
    finish = batch_finisher(schema.feature_text_fields, image_size, augmenter, weights if with_labels else None)
    dataset = dataset.map(finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _augmenter(augment, seed):
    if not augment:
        return None
    return build_augmenter(AugmentConfig.from_value(augment), seed=seed)


def batch_finisher(text_fields, image_size: int | None, augmenter, weights: dict[str, np.ndarray] | None):
    """The map function turning a raw batch into ``(features, labels, sample_weights)`` (or ``features``).

    The raw batch holds the text fields, either decoded ``image`` / ``image_present`` or encoded
    ``__image_bytes`` (when ``image_size`` is set), and ``__labels`` (int32 ``[B, L]``, when ``weights`` is
    given). Shared by `make_dataset` and the TFRecord reader.
    """
    import tensorflow as tf  # lazy: linnet.data promises no TensorFlow at import

    tables = None if weights is None else [tf.constant(np.asarray(weights[f"level_{level}"], dtype=np.float32))
                                           for level in range(1, len(weights) + 1)]

    def finish(batch):
        features = {name: batch[name] for name in text_fields}
        if image_size is not None:
            if IMAGE_FIELD in batch:
                image, present = batch[IMAGE_FIELD], batch[IMAGE_PRESENT_FIELD]
            else:
                image, present = decode_image(batch[_BYTES_KEY], image_size)
            if augmenter is not None:
                # blank images stay blank: brightness shifts would otherwise invent content
                image = augmenter(image, training=True) * present[:, None, None, None]
            features[IMAGE_FIELD] = image
            features[IMAGE_PRESENT_FIELD] = present
        if tables is None:
            return features
        labels, sample_weights = {}, {}
        for level, table in enumerate(tables, start=1):
            column = tf.cast(batch[_LABELS_KEY][:, level - 1], tf.int32)
            labels[f"level_{level}"] = column
            sample_weights[f"level_{level}"] = tf.where(column >= 0, tf.gather(table, tf.maximum(column, 0)), 0.0)
        return features, labels, sample_weights

    return finish
