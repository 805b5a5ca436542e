"""The tf.data pipelines ``fit`` reads: catalog batches shaped for the model being trained.

`catalog_datasets` builds the ``(features, labels, sample_weights)`` batches of the train and validation
splits (`linnet.data.make_dataset`), with the n-grams computed in the pipeline when the trained model starts
from them (`linnet.training.featurized`), n-gram dropout, the wide path's own targets and, under a
distribution strategy, padding to whole replica batches.

Example:
    >>> from linnet.training.datasets import select_model_inputs
    >>> dataset = select_model_inputs(make_dataset(catalog, with_labels=False), run.model)  # doctest: +SKIP
"""

from __future__ import annotations

import warnings

import tensorflow as tf

from linnet.data import make_dataset
from linnet.model import names
from linnet.training.distribute import shard_by_data
from linnet.training.featurized import (
    FEATURIZE_ONCE_BATCH,
    FEATURIZE_ONCE_MAX_ROWS,
    featurized_once,
    has_featurizer,
)
from linnet.training.regularizers import copy_level_targets, ngram_dropout, wide_levels


def catalog_datasets(train_catalog, validation_catalog, config, image_size, weights_by_level, trained,
                     featurize=None):
    """``(train, validation)`` tf.data of ``(features, labels, sample_weights)`` read from the catalog.

    Args:
        train_catalog, validation_catalog: the splits (validation None when it is empty).
        config: the `TrainingConfig` (batch size, seed, augmentation, shuffle buffer, n-gram dropout).
        image_size: the image input's side (None: no image).
        weights_by_level: per-level class weights (`linnet.data.class_weights`).
        trained: the model ``fit`` trains (its inputs decide what the batches hold).
        featurize: the map computing the n-grams in the pipeline (`featurized_training_model`), or None.
    """
    fit = config.training
    if featurize is not None and image_size is None and len(train_catalog) <= FEATURIZE_ONCE_MAX_ROWS:
        return _featurized_once_datasets(train_catalog, validation_catalog, fit, weights_by_level, featurize)
    train_data = make_dataset(
        train_catalog, batch_size=fit.batch_size, shuffle=True, image_size=image_size, augment=config.data.augment,
        class_weights=weights_by_level, seed=fit.seed, shuffle_buffer=config.data.shuffle_buffer,
    )
    validation_data = (
        make_dataset(validation_catalog, batch_size=fit.batch_size, image_size=image_size,
                     class_weights=weights_by_level)
        if len(validation_catalog) else None
    )
    if featurize is not None:
        train_data = train_data.map(featurize, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if fit.ngram_dropout:
            train_data = train_data.apply(ngram_dropout(fit.ngram_dropout, fit.seed, names.NGRAM_WEIGHTS))
        train_data = train_data.prefetch(tf.data.AUTOTUNE)
        if validation_data is not None:
            validation_data = validation_data.map(featurize, num_parallel_calls=tf.data.AUTOTUNE).prefetch(
                tf.data.AUTOTUNE)
        return train_data, validation_data
    if fit.ngram_dropout and has_featurizer(trained):
        # stacklevel 4: the warning points at train() (through _fit_and_save and _datasets), as it did before.
        warnings.warn("training.ngram_dropout applies only with training.featurize_in_dataset; "
                      "training without it", stacklevel=4)
    # The pipeline yields every schema field; a model that reads fewer (image-only) gets only its own.
    train_data = select_model_inputs(train_data, trained)
    if validation_data is not None:
        validation_data = select_model_inputs(validation_data, trained)
    return train_data, validation_data


def _featurized_once_datasets(train_catalog, validation_catalog, fit, weights_by_level, featurize):
    """``(train, validation)`` of a text-only split small enough to featurize once (`featurized_once`)."""

    def once(catalog, shuffle_seed):
        batches = make_dataset(catalog, batch_size=FEATURIZE_ONCE_BATCH, class_weights=weights_by_level)
        return featurized_once(batches, featurize, fit.batch_size, shuffle_seed)

    train_data = once(train_catalog, fit.seed)
    if fit.ngram_dropout:
        train_data = train_data.apply(ngram_dropout(fit.ngram_dropout, fit.seed, names.NGRAM_WEIGHTS))
    validation_data = once(validation_catalog, None) if len(validation_catalog) else None
    return train_data, validation_data


def for_replicas_and_wide_outputs(datasets, trained, num_levels: int, wide_outputs: bool, replicas: int):
    """``datasets`` (train, validation) with the wide outputs' targets (``training.wide_loss_weight``) and,
    over several replicas, padded to whole replica batches and sharded by data."""
    train_data, validation_data = datasets
    if wide_outputs:
        copy_targets = copy_level_targets(wide_levels(trained, num_levels))
        train_data = train_data.map(copy_targets)
        if validation_data is not None:
            validation_data = validation_data.map(copy_targets)
    if replicas > 1:
        train_data = shard_by_data(pad_batches_to_multiple(train_data, replicas))
        if validation_data is not None:
            validation_data = shard_by_data(pad_batches_to_multiple(validation_data, replicas))
    return train_data, validation_data


def select_model_inputs(dataset, model):
    """``dataset`` of ``(features, ...)`` with only the feature keys ``model`` takes (unchanged if it takes all).

    Keras matches a dict of more inputs than the model has by position, not by name, so extra fields
    (the text of an image-only model) must be dropped before ``fit``.
    """
    if not isinstance(model.input, dict):
        return dataset
    wanted = list(model.input)
    features_spec = dataset.element_spec[0] if isinstance(dataset.element_spec, tuple) else dataset.element_spec
    if not isinstance(features_spec, dict) or set(features_spec) == set(wanted):
        return dataset

    def select(features, *rest):
        return ({name: features[name] for name in wanted}, *rest)

    return dataset.map(select)


def pad_batches_to_multiple(dataset, multiple: int):
    """Pads every ``(features, labels, sample_weights)`` batch to a multiple of ``multiple`` rows.

    Under a distribution strategy Keras 3.15 averages the first batch's per-replica parts before training
    (and evaluating), which fails when a batch does not split evenly (the last one, or a validation split
    smaller than a batch). Padded rows are zeros with label ``-1`` and sample weight 0, so the masked
    losses and accuracies ignore them.
    """

    def pad(features, labels, sample_weights):
        rows = tf.shape(tf.nest.flatten(labels)[0])[0]
        missing = (multiple - rows % multiple) % multiple

        def pad_one(tensor, value):
            paddings = tf.concat([[[0, missing]], tf.zeros([tf.rank(tensor) - 1, 2], tf.int32)], axis=0)
            fill = value if tensor.dtype == tf.string else tf.constant(value, tensor.dtype)
            return tf.pad(tensor, paddings, constant_values=fill)

        features = tf.nest.map_structure(lambda tensor: pad_one(tensor, "" if tensor.dtype == tf.string else 0),
                                         features)
        labels = tf.nest.map_structure(lambda tensor: pad_one(tensor, -1), labels)
        sample_weights = tf.nest.map_structure(lambda tensor: pad_one(tensor, 0), sample_weights)
        return features, labels, sample_weights

    return dataset.map(pad, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
