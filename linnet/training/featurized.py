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

from linnet.model import names


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
