"""The hashed n-gram featurizer moved out of the trained model into the tf.data pipeline.

The featurizer (layer ``featurizer``, `linnet.model.names.FEATURIZER`) has no trainable weights (its optional
IDF is fixed before fitting), so the layers after it can train on its outputs computed in ``tf.data``. The
trainer (`linnet.training.trainer`) and the embedding cache (`linnet.training.embedding_cache`) both cut the
model there; this module is the cut, below both.

Example:
    >>> from linnet.training.featurized import featurized_training_model
    >>> trained, featurize = featurized_training_model(model, ["title"])  # doctest: +SKIP
    >>> dataset = dataset.map(featurize)  # doctest: +SKIP
"""

from __future__ import annotations

import warnings

import keras
import tensorflow as tf

from linnet.encoders.ngram import EAGER_ADAPT_BATCHES
from linnet.model import names

#: A split of at most this many products is featurized once before ``fit`` (`featurized_once`) instead of
#: in the pipeline of every epoch: its n-grams (~100-600 per product, id + weight) fit in memory, and Keras's
#: two new iterators per epoch (plus validation's) then never instantiate the featurizer's thousands of ops.
FEATURIZE_ONCE_MAX_ROWS = 250_000
#: Products per featurizer call while featurizing a split once.
FEATURIZE_ONCE_BATCH = 1024


def featurizer_layer(model):
    """``model``'s hashed n-gram featurizer layer, or None when it has none."""
    try:
        return model.get_layer(names.FEATURIZER)
    except ValueError:
        return None


def has_featurizer(model) -> bool:
    """True when ``model`` has a hashed n-gram featurizer layer."""
    return featurizer_layer(model) is not None


def has_wide_path(model) -> bool:
    """True when ``model`` has a wide path (a ``wide_level_k`` layer)."""
    return any(layer.name.startswith(names.WIDE_LEVEL_PREFIX) for layer in model.layers)


def wide_featurizer_layer(model):
    """The n-gram featurizer feeding ``model``'s wide path (layer ``featurizer``), or None.

    It has no trainable weights (an IDF table, set before training, is read in tf.data as it is in the step).
    """
    layer = featurizer_layer(model)
    return layer if layer is not None and not layer.trainable_weights else None


def inputs_read_past(model, stop_tensors) -> set[int]:
    """``id()`` of each of ``model``'s input tensors its outputs depend on other than through ``stop_tensors``.

    An input is read past the stop tensors when a graph from the stop tensors and the *other* inputs to the
    outputs is disconnected (``keras.Function`` raises ``ValueError``) without it.
    """
    found = set()
    for candidate in model.inputs:
        others = [tensor for tensor in model.inputs if tensor is not candidate]
        try:
            keras.Function([*stop_tensors, *others], model.outputs)
        except ValueError:  # "Graph disconnected": an output needs ``candidate``
            found.add(id(candidate))
    return found


def featurized_training_model(trained, text_fields):
    """The training model with the n-gram featurizer moved into the tf.data pipeline, or None.

    The hashed n-gram featurizer has no trainable weights (its optional IDF is fixed before fitting), so the
    layers after it can train on its outputs computed in ``tf.data`` (in parallel, overlapping the training
    step) instead of inside the step. This is also what lets the model train under ``MirroredStrategy`` /
    ``MultiWorkerMirroredStrategy``: Keras 3.15 averages a sample batch across replicas before the first step,
    and string inputs cannot be averaged.

    Returns:
        ``(model, featurize)``: a model sharing every weight with ``trained`` whose inputs are
        ``ngram_ids``, ``ngram_weights``, the non-text inputs (image, image_present) and the text fields
        another layer still reads (a pretrained text encoder beside the wide path), and the map function
        turning the pipeline's ``(features, labels, sample_weights)`` into that model's inputs.
        None when ``trained`` has no hashed n-gram featurizer.
    """
    featurizer = featurizer_layer(trained)
    if featurizer is None:
        return None
    ids, weights = featurizer.output
    inputs = {names.NGRAM_IDS: ids, names.NGRAM_WEIGHTS: weights}
    original_inputs = trained.input if isinstance(trained.input, dict) else {}
    # A text field another layer still reads (a pretrained text encoder beside the wide path's featurizer,
    # ``model.wide.with_pretrained``) stays an input; only the n-grams move into the pipeline.
    still_read = inputs_read_past(trained, [ids, weights])
    other_inputs = [name for name in original_inputs
                    if name not in text_fields or id(original_inputs[name]) in still_read]
    inputs.update({name: original_inputs[name] for name in other_inputs})
    with warnings.catch_warnings():
        # Keras wants dict keys to equal the tensors' names; these are intermediate tensors, keyed on purpose.
        warnings.filterwarnings("ignore", message="When providing `inputs` as a dict")
        model = keras.Model(inputs=inputs, outputs=trained.output, name=f"{trained.name}_featurized")

    def featurize(features, *rest):
        ids, weights = featurizer({field: features[field] for field in text_fields})
        mapped = {names.NGRAM_IDS: ids, names.NGRAM_WEIGHTS: weights}
        mapped.update({name: features[name] for name in other_inputs})
        return (mapped, *rest)

    return model, featurize


def featurized_once(batches, featurize, batch_size: int, shuffle_seed: int | None = None):
    """``batches`` featurized once, as a tf.data of ``batch_size`` batches the featurized model reads.

    Args:
        batches: tf.data of ``(features, labels, sample_weights)`` batches of the split in catalog order
            (`linnet.data.make_dataset` without shuffle), without images.
        featurize: the map of `featurized_training_model`, run once over ``batches``: op by op for a few
            batches (tracing the featurizer costs seconds), in a parallel ``map`` for more.
        batch_size: rows per batch of the returned dataset.
        shuffle_seed: reshuffle the rows every epoch from this seed (None: catalog order).

    Returns:
        tf.data of ``(features, labels, sample_weights)`` whose n-gram ids and weights are padded with zeros
        per batch, as the featurizer pads them.
    """
    count = int(batches.cardinality())
    if 0 <= count <= EAGER_ADAPT_BATCHES:
        featurized = (featurize(*batch) for batch in batches)
    else:
        featurized = batches.map(featurize, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    parts = []
    for features, *rest in featurized:
        weights = tf.RaggedTensor.from_tensor(features[names.NGRAM_WEIGHTS], padding=0.0)
        ids = tf.RaggedTensor.from_tensor(features[names.NGRAM_IDS], lengths=weights.row_lengths())
        parts.append(({**features, names.NGRAM_IDS: ids, names.NGRAM_WEIGHTS: weights}, *rest))
    rows = tf.nest.map_structure(lambda *pieces: tf.concat(pieces, axis=0), *parts)
    dataset = tf.data.Dataset.from_tensor_slices(rows)
    if shuffle_seed is not None:
        total = int(tf.nest.flatten(rows[1])[0].shape[0])
        dataset = dataset.shuffle(max(total, 1), seed=shuffle_seed, reshuffle_each_iteration=True)

    def padded(features, *rest):
        return ({name: value.to_tensor() if isinstance(value, tf.RaggedTensor) else value
                 for name, value in features.items()}, *rest)

    return dataset.ragged_batch(batch_size).map(padded).prefetch(tf.data.AUTOTUNE)
