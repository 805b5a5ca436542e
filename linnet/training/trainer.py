"""Training: ``train(catalog, out_dir, ...)`` fits the hierarchical model and writes a run directory.

One call does the whole job: read and split the catalog (`linnet.data`), build the model
(`linnet.model.build_model`) inside a ``tf.distribute`` strategy, fit it with masked per-level losses whose
level weights follow the configured schedule, track the run in MLflow, and write the run directory
(`linnet.training.run_directory`) that ``export``, ``evaluate``, ``predict`` and ``embed`` read.

When every encoder is frozen, the encoders run once over the catalog and the heads train on the cached
vectors (`linnet.training.embedding_cache`); the full model is then assembled from encoders and trained heads. When
only the image encoder is frozen, its vectors are cached the same way and the rest of the model trains on them.

Example:
    >>> from linnet.data import CatalogSchema
    >>> schema = CatalogSchema(text_columns=["title"], category_column="category")
    >>> run = train("catalog.csv", "runs/first", schema=schema, epochs=2)  # doctest: +SKIP
    >>> run.metrics["validation"]["level_1_accuracy"]  # doctest: +SKIP
    0.97
"""

from __future__ import annotations

import math
import os
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import keras
import numpy as np

from linnet.errors import ConfigError
from linnet.model.builder import (
    NGRAM_IDS_INPUT,
    NGRAM_WEIGHTS_INPUT,
    WIDE_FEATURIZER_LAYER,
)
from linnet.training.run_directory import (
    CONFIG_FILE,
    METRICS_FILE,
    MODEL_FILE,
    README_FILE,
    SCHEMA_FILE,
    STATE_DIR,
    TAXONOMY_FILE,
    LoadedRun,
    check_run_directory,
    load_run,
    prepare_run_directory,
    write_json_atomically,
    write_text_atomically,
)
from linnet.training.config import (
    DataConfig,
    FitConfig,
    OptimizerConfig,
    TrainingConfig,
)

__all__ = [
    "DataConfig",
    "FitConfig",
    "OptimizerConfig",
    "Run",
    "TrainingConfig",
    "load_run",
    "make_optimizer",
    "make_strategy",
    "resolve_config",
    "train",
]

Run = LoadedRun
# Keras 3's epoch iterator (finite dataset, no steps_per_epoch) opens a new iterator at the start of every
# epoch and another one when the epoch's batches are used up.
ITERATORS_PER_EPOCH = 2
DEFAULT_IMAGE_SIZE = 224


def resolve_config(config=None, epochs: int | None = None) -> TrainingConfig:
    """A `TrainingConfig` from a config, a dict, a YAML path or None (defaults), with ``epochs`` applied."""
    if config is None:
        config = TrainingConfig()
    elif isinstance(config, (str, os.PathLike)):
        config = TrainingConfig.from_yaml(config)
    elif isinstance(config, dict):
        config = TrainingConfig.from_dict(config)
    elif not isinstance(config, TrainingConfig):
        raise ConfigError(f"config must be a TrainingConfig, a dict or a YAML path, got {type(config).__name__}")
    if epochs is not None:
        if epochs < 1:
            raise ConfigError(f"--epochs must be positive, got {epochs}")
        config = TrainingConfig.from_dict({**config.to_dict(), "training": {**config.to_dict()["training"], "epochs": epochs}})
    return config


def make_strategy(fit: FitConfig):
    """The ``tf.distribute`` strategy named by ``training.strategy``.

    ``multi_worker`` reads the cluster from ``TF_CONFIG`` (see ``training/launch_multi_worker.py``).
    """
    import tensorflow as tf

    if fit.strategy == "mirrored":
        return tf.distribute.MirroredStrategy(devices=fit.devices)
    if fit.strategy == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ConfigError("training.strategy 'multi_worker' needs TF_CONFIG (see training/README.md)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def resolve_precision(fit: FitConfig) -> str:
    """The Keras dtype policy name for ``training.precision`` (``auto``: mixed_float16 on a GPU)."""
    if fit.precision != "auto":
        return fit.precision
    import tensorflow as tf

    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "float32"


def learning_rate_schedule(optimizer: OptimizerConfig, peak: float, total_steps: int):
    """Linear warm-up to ``peak`` then cosine decay (or constant), as a Keras schedule or float."""
    warmup_steps = int(optimizer.warmup_fraction * total_steps)
    if optimizer.decay == "none" and warmup_steps == 0:
        return peak
    if optimizer.decay == "none":
        return keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=1, alpha=1.0, warmup_target=peak, warmup_steps=warmup_steps
        )
    return keras.optimizers.schedules.CosineDecay(
        0.0 if warmup_steps else peak,
        decay_steps=max(1, total_steps - warmup_steps),
        alpha=optimizer.min_learning_rate_fraction,
        warmup_target=peak if warmup_steps else None,
        warmup_steps=warmup_steps,
    )


def make_optimizer(optimizer: OptimizerConfig, total_steps: int, num_replicas: int = 1, text_variables=None):
    """The optimizer named by ``training.optimizer`` with warm-up + decay, its rate scaled by replicas.

    Args:
        optimizer: the optimizer section.
        total_steps: optimizer steps of the whole run (for the schedule).
        num_replicas: replicas in sync (the rate is multiplied by it when ``scale_with_replicas``).
        text_variables: ``separate`` only: the text encoder's variables (they get AdamW, the rest SGD).
    """
    from linnet.encoders import LazyAdamW

    scale = num_replicas if optimizer.scale_with_replicas else 1
    peak = optimizer.learning_rate * scale
    schedule = learning_rate_schedule(optimizer, peak, total_steps)
    clip = {"global_clipnorm": optimizer.global_clipnorm} if optimizer.global_clipnorm else {}
    if optimizer.name == "adamw":
        return LazyAdamW(learning_rate=schedule, weight_decay=optimizer.weight_decay, **clip)
    sgd = keras.optimizers.SGD(learning_rate=schedule, momentum=optimizer.momentum, **clip)
    if optimizer.name == "sgd":
        return sgd
    from linnet.training.optimizers import VariableSplitOptimizer

    text_peak = (optimizer.text_encoder_learning_rate or optimizer.learning_rate) * scale
    text_optimizer = LazyAdamW(
        learning_rate=learning_rate_schedule(optimizer, text_peak, total_steps),
        weight_decay=optimizer.weight_decay,
        **clip,
    )
    return VariableSplitOptimizer(
        first=text_optimizer, second=sgd, first_variable_paths=[variable.path for variable in text_variables or []]
    )


def _text_encoder_variables(model) -> list:
    """Variables of the text encoder inside a built model (the featurizer's table, BERT, ...)."""
    names = ("embedding_bag", "text_encoder")
    return [variable for variable in model.trainable_variables if variable.path.split("/")[0] in names]


def _load_taxonomy_argument(taxonomy):
    if taxonomy is None:
        return None
    if isinstance(taxonomy, (str, os.PathLike)):
        from linnet.taxonomy import load_taxonomy

        return load_taxonomy(taxonomy)
    return taxonomy


def _image_size(config: TrainingConfig, schema) -> int | None:
    if config.model.image_encoder is None:
        return None
    if not schema.has_image:
        raise ConfigError("model.image_encoder is set but the schema has no image column (--image-column)")
    return int(config.data.image_size or config.model.image_encoder.get("image_size") or DEFAULT_IMAGE_SIZE)


def train(
    catalog_path,
    out_dir,
    schema=None,
    config=None,
    taxonomy=None,
    epochs: int | None = None,
    *,
    resume: bool = False,
    catalog=None,
    max_rows: int | None = None,
    progress: bool = True,
    callbacks=(),
) -> Run:
    """Trains a model on a catalog and writes a run directory.

    Args:
        catalog_path: the catalog file (CSV/TSV/JSONL/Parquet).
        out_dir: the run directory to create; an existing run is never overwritten (``resume=True``
            continues an unfinished one from its last completed epoch).
        schema: a `linnet.data.CatalogSchema` (default: ``id``, ``title``, ``category``).
        config: a `TrainingConfig`, a dict of one, a YAML path, or None for the defaults.
        taxonomy: a `Taxonomy` or a taxonomy file; None infers the tree from the category column.
        epochs: overrides ``training.epochs``.
        resume: continue an unfinished run in ``out_dir``.
        catalog: an already prepared `linnet.data.PreparedCatalog` (skips reading ``catalog_path``).
        max_rows: read at most this many catalog rows (quick looks).
        progress: progress bars and the closing summary on stdout.
        callbacks: extra Keras callbacks for ``fit`` (after the run's own).

    Returns:
        The loaded run (`linnet.training.run_directory.LoadedRun`: ``.path .model .taxonomy .schema .config .metrics``).

    Raises:
        ConfigError: bad config key or value, taxonomy deeper than the config allows, unknown encoder,
            ``out_dir`` already holding a run.
        CatalogError: an unusable catalog (file, row and field named).
    """
    from linnet.data import CatalogSchema, prepare_catalog
    from linnet.model import check_taxonomy_depth

    config = resolve_config(config, epochs)
    schema = schema if schema is not None else CatalogSchema(category_column="category")
    taxonomy = _load_taxonomy_argument(taxonomy)
    if taxonomy is not None:
        check_taxonomy_depth(config.model, taxonomy)
    image_size = _image_size(config, schema)
    # Encoder names, options and weights files are checked before any data is read.
    _check_encoders(config, schema, image_size)
    check_run_directory(Path(out_dir), resume=resume)

    if catalog is None:
        catalog = prepare_catalog(
            catalog_path, schema, taxonomy=taxonomy, unknown_labels=config.data.unknown_labels,
            split=tuple(config.data.split), split_salt=config.data.split_salt, max_rows=max_rows, progress=progress,
        )
    taxonomy = catalog.taxonomy
    if taxonomy is None:
        raise ConfigError("the catalog has no categories and no taxonomy was given: nothing to train on")
    check_taxonomy_depth(config.model, taxonomy)
    train_catalog = catalog.subset("train")
    validation_catalog = catalog.subset("validation")
    if len(train_catalog) == 0:
        raise ConfigError(f"the training split of {catalog_path} is empty (data.split = {config.data.split})")
    run_dir = prepare_run_directory(Path(out_dir), resume=resume)

    keras.utils.set_random_seed(config.training.seed)
    policy = resolve_precision(config.training)
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        return _fit_and_write(config, schema, taxonomy, catalog, train_catalog, validation_catalog, image_size,
                              run_dir, catalog_path, resume, progress, list(callbacks))
    finally:
        keras.config.set_dtype_policy(previous_policy)


def _check_encoders(config: TrainingConfig, schema, image_size) -> None:
    from linnet import encoders

    if config.model.text_encoder is not None:
        encoders.build_text_encoder(dict(config.model.text_encoder), list(schema.feature_text_fields))
    if config.model.image_encoder is not None:
        options = dict(config.model.image_encoder)
        options.setdefault("image_size", image_size)
        encoders.build_image_encoder(options)


def _fit_and_write(config, schema, taxonomy, catalog, train_catalog, validation_catalog, image_size, run_dir,
                   catalog_path, resume, progress, extra_callbacks) -> Run:
    import tensorflow as tf

    from linnet.training import embedding_cache
    from linnet.data import class_weights as compute_class_weights
    from linnet.data import make_dataset
    from linnet.encoders.ngram import adapt_featurizers, copy_featurizer_weights
    from linnet.model import (
        build_model,
        level_weight_scheduler,
        level_weights_for_epoch,
        make_level_weight_variables,
    )
    from linnet.model.builder import classifier_outputs_model
    from linnet.training.distribute import keras_multi_worker_fixes, shard_by_data
    from linnet.training.tracking import MlflowTracker

    fit = config.training
    num_levels = taxonomy.num_levels
    strategy = make_strategy(fit)
    replicas = strategy.num_replicas_in_sync
    steps_per_epoch = math.ceil(len(train_catalog) / fit.batch_size)
    weights_by_level = compute_class_weights(train_catalog.labels, taxonomy.level_sizes(), config.data.class_weighting)
    text_fields = list(schema.feature_text_fields)
    completed_epochs = completed_epochs_of(run_dir) if resume and fit.backup_and_restore else 0

    with strategy.scope():
        model = build_model(config.model, taxonomy, text_fields=text_fields, image_size=image_size)
        # IDF of the n-gram featurizers from the training texts, before the cache fingerprints the encoders.
        adapt_featurizers(model, train_catalog.texts, progress=progress)
        cache_plan = (embedding_cache.plan(model, config, taxonomy=taxonomy, text_fields=text_fields,
                                           image_size=image_size) if fit.embedding_cache else None)
        trained = cache_plan.heads_model if cache_plan is not None else classifier_outputs_model(model)
        copy_featurizer_weights(model, trained)  # a cache plan's rebuilt model has featurizers of its own
        wide_outputs = None
        if fit.wide_loss_weight:
            from linnet.training.regularizers import with_wide_outputs

            wide_outputs = with_wide_outputs(trained, num_levels)
            trained = wide_outputs if wide_outputs is not None else trained
        featurized = None
        if cache_plan is None and (fit.featurize_in_dataset or fit.strategy != "default"):
            featurized = featurized_training_model(trained, text_fields)
            if featurized is not None:
                trained = featurized[0]
        # A resumed run gets its frozen tables back from the backup with the other weights: no second solve.
        _init_wide_path(model, trained, config, train_catalog, progress, restored=completed_epochs > 0)
        level_weight_variables = make_level_weight_variables(level_weights_for_epoch(fit.level_weights, 0, num_levels))
        optimizer = make_optimizer(fit.optimizer, steps_per_epoch * fit.epochs, replicas,
                                   text_variables=_text_encoder_variables(trained))
        _compile(trained, optimizer, level_weight_variables, num_levels, fit.steps_per_execution, config.model,
                 fit.label_smoothing, fit.wide_loss_weight if wide_outputs is not None else 0.0)

    if cache_plan is not None:
        train_data, validation_data = cache_plan.datasets(
            train_catalog, validation_catalog, fit, config.data, image_size, weights_by_level, progress=progress,
            cache_dir=fit.cache_dir,
        )
    else:
        train_data = make_dataset(
            train_catalog, batch_size=fit.batch_size, shuffle=True, image_size=image_size, augment=config.data.augment,
            class_weights=weights_by_level, seed=fit.seed, shuffle_buffer=config.data.shuffle_buffer,
        )
        validation_data = (
            make_dataset(validation_catalog, batch_size=fit.batch_size, image_size=image_size,
                         class_weights=weights_by_level)
            if len(validation_catalog) else None
        )
        if featurized is not None:
            featurize = featurized[1]
            train_data = train_data.map(featurize, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            if fit.ngram_dropout:
                from linnet.training.regularizers import ngram_dropout

                train_data = train_data.apply(ngram_dropout(fit.ngram_dropout, fit.seed, NGRAM_WEIGHTS_INPUT))
            train_data = train_data.prefetch(tf.data.AUTOTUNE)
            if validation_data is not None:
                validation_data = validation_data.map(featurize, num_parallel_calls=tf.data.AUTOTUNE).prefetch(
                    tf.data.AUTOTUNE)
        else:
            if fit.ngram_dropout and _has_featurizer(trained):
                warnings.warn("training.ngram_dropout applies only with training.featurize_in_dataset; "
                              "training without it", stacklevel=2)
            # The pipeline yields every schema field; a model that reads fewer (image-only) gets only its own.
            train_data = select_model_inputs(train_data, trained)
            if validation_data is not None:
                validation_data = select_model_inputs(validation_data, trained)
    if wide_outputs is not None:
        from linnet.training.regularizers import copy_level_targets, wide_levels

        copy_targets = copy_level_targets(wide_levels(trained, num_levels))
        train_data = train_data.map(copy_targets)
        if validation_data is not None:
            validation_data = validation_data.map(copy_targets)
    if replicas > 1:
        train_data = shard_by_data(pad_batches_to_multiple(train_data, replicas))
        if validation_data is not None:
            validation_data = shard_by_data(pad_batches_to_multiple(validation_data, replicas))

    scheduler = level_weight_scheduler(fit.level_weights, level_weight_variables)
    timer = EpochTimer(len(train_catalog))
    callbacks = [scheduler, timer, *_callbacks(fit, run_dir, num_levels, validation_data is not None)]
    # tf.data reshuffles on every new iterator from a seeded generator, and Keras's epoch iterator creates
    # ITERATORS_PER_EPOCH of them per epoch: advancing the generator past the epochs already done makes a
    # resumed run see the same batches as an uninterrupted one (tests/training checks the final weights).
    for _ in range(completed_epochs * ITERATORS_PER_EPOCH):
        iter(train_data)
    started = time.perf_counter()
    with MlflowTracker(run_dir, run_name=run_dir.name) as tracker, keras_multi_worker_fixes(strategy):
        tracker.log_params({"config": config.to_dict(), "schema": schema.to_dict(), "catalog": str(catalog_path)})
        tracker.set_tags({"taxonomy_fingerprint": taxonomy.fingerprint(), "num_levels": num_levels,
                          "strategy": fit.strategy, "replicas": replicas})
        callbacks.append(tracker.keras_callback())
        callbacks.extend(extra_callbacks)
        # The dataset shuffles itself (seeded); Keras's own shuffle does not apply to tf.data.
        history = trained.fit(train_data, validation_data=validation_data, epochs=fit.epochs, callbacks=callbacks,
                              verbose=fit.verbose if progress else 0, shuffle=False)
        fit_seconds = time.perf_counter() - started
        final_model = _assemble(model, trained, cache_plan, config, taxonomy, text_fields, image_size)
        validation_metrics = _validation_accuracies(trained, validation_data, validation_catalog, num_levels)
        metrics = _metrics(history, timer, fit_seconds, validation_metrics, train_catalog, validation_catalog,
                           catalog, scheduler, replicas, final_model, cache_plan)
        metrics["resumed_from_epoch"] = completed_epochs
        tracker.log_metrics({f"final_{key}": value for key, value in validation_metrics.items()})
        _write_run(run_dir, config, schema, taxonomy, final_model, metrics, catalog_path)
        for name in (CONFIG_FILE, SCHEMA_FILE, TAXONOMY_FILE, METRICS_FILE, README_FILE):
            tracker.log_artifact(run_dir / name)
        if fit.tensorboard:
            tracker.log_artifact(run_dir / "tensorboard", "tensorboard")
        tracker.log_artifact(run_dir / MODEL_FILE, "model")
    shutil.rmtree(run_dir / STATE_DIR, ignore_errors=True)
    if progress:
        print(closing_summary(metrics, run_dir))
    return load_run(run_dir)


def _init_wide_path(model, trained, config, train_catalog, progress: bool, restored: bool = False) -> None:
    """``model.wide.init``: with ``linear_svm`` (or ``auto`` under ``wide.svm_max_work``) set and freeze
    ``trained``'s wide tables to a LinearSVC (see `linnet.training.wide_init`); else they start at zero. ``restored``:
    the weights come from a backup, so the tables are only frozen, not solved again."""
    from linnet.training.embedding_cache import has_wide_path, wide_featurizer_layer
    from linnet.training.wide_init import freeze_wide_tables, init_wide_from_linear_svm, resolve_init

    wide = config.model.wide
    featurizer = wide_featurizer_layer(model)
    if featurizer is None or not has_wide_path(model):
        if wide.init == "linear_svm":
            raise ConfigError("model.wide.init 'linear_svm' needs a wide path fed by the n-gram featurizer "
                              "(model.wide.enabled with a hashed_ngrams text encoder, or wide.with_pretrained)")
        return  # no wide path: nothing to start
    labels = np.asarray(train_catalog.labels)
    if config.training.wide_loss_weight and wide.init != "zeros":
        if wide.init == "linear_svm":
            raise ConfigError("training.wide_loss_weight trains the wide path, which model.wide.init 'linear_svm' "
                              "freezes: set one of them (wide.init: zeros, or wide_loss_weight: 0)")
        if progress:
            print("wide.init auto: training.wide_loss_weight trains the wide path, so it starts at zero", flush=True)
        return
    init, why = resolve_init(wide.init, labels, wide.svm_max_work)
    if progress:
        print(why, flush=True)
    if init == "linear_svm" and restored:
        levels = freeze_wide_tables(trained, labels.shape[1])
        if progress:
            print(f"wide path: the LinearSVC tables of level(s) {levels} come back from the backup", flush=True)
    elif init == "linear_svm":
        init_wide_from_linear_svm(trained, featurizer, train_catalog.texts, labels, C=wide.svm_c,
                                  temperature=wide.svm_temperature, logit_scale=wide.learning_rate_multiplier,
                                  seed=config.training.seed, n_jobs=wide.svm_jobs, progress=progress)


def level_losses(model_config, level_weight_variables, label_smoothing: float = 0.0) -> dict:
    """One loss per level output: masked cross-entropy, and `ArcFaceLoss` on an ArcFace leaf's cosines.

    Every loss multiplies by its level's weight variable, so the level-weight schedule applies to all.
    ``label_smoothing`` applies to the cross-entropy levels.
    """
    from linnet.model import MaskedSparseCategoricalCrossentropy
    from linnet.model.arcface import ArcFaceLoss

    losses = {f"level_{level}": MaskedSparseCategoricalCrossentropy(variable, label_smoothing=label_smoothing)
              for level, variable in enumerate(level_weight_variables, start=1)}
    if model_config.leaf_head == "arcface":
        leaf = len(level_weight_variables)
        losses[f"level_{leaf}"] = ArcFaceLoss(scale=model_config.arcface_scale, margin=model_config.arcface_margin,
                                              level_weight=level_weight_variables[-1])
    return losses


def _compile(model, optimizer, level_weight_variables, num_levels: int, steps_per_execution: int,
             model_config, label_smoothing: float = 0.0, wide_loss_weight: float = 0.0) -> None:
    from linnet.model import MaskedSparseCategoricalAccuracy, MaskedSparseCategoricalCrossentropy

    levels = [f"level_{level}" for level in range(1, num_levels + 1)]
    losses = level_losses(model_config, level_weight_variables, label_smoothing)
    loss_weights = None
    if wide_loss_weight:
        # The wide path's own logits (`linnet.training.regularizers.with_wide_outputs`) as a linear classifier.
        from linnet.training.regularizers import wide_output_name

        loss_weights = {name: 1.0 for name in losses}
        for level, variable in enumerate(level_weight_variables, start=1):
            if wide_output_name(level) not in model.output:
                continue
            losses[wide_output_name(level)] = MaskedSparseCategoricalCrossentropy(
                variable, from_logits=True, label_smoothing=label_smoothing)
            loss_weights[wide_output_name(level)] = float(wide_loss_weight)
    model.compile(
        optimizer=optimizer,
        loss=losses,
        loss_weights=loss_weights,
        metrics={name: [MaskedSparseCategoricalAccuracy()] for name in levels},
        steps_per_execution=steps_per_execution,
    )




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
    try:
        featurizer = trained.get_layer(WIDE_FEATURIZER_LAYER)
    except ValueError:
        return None
    ids, weights = featurizer.output
    inputs = {NGRAM_IDS_INPUT: ids, NGRAM_WEIGHTS_INPUT: weights}
    original_inputs = trained.input if isinstance(trained.input, dict) else {}
    # A text field another layer still reads (a pretrained text encoder beside the wide path's featurizer,
    # ``model.wide.with_pretrained``) stays an input; only the n-grams move into the pipeline.
    still_read = _inputs_read_past(trained, [ids, weights])
    other_inputs = [name for name in original_inputs
                    if name not in text_fields or id(original_inputs[name]) in still_read]
    inputs.update({name: original_inputs[name] for name in other_inputs})
    import warnings

    with warnings.catch_warnings():
        # Keras wants dict keys to equal the tensors' names; these are intermediate tensors, keyed on purpose.
        warnings.filterwarnings("ignore", message="When providing `inputs` as a dict")
        model = keras.Model(inputs=inputs, outputs=trained.output, name=f"{trained.name}_featurized")

    def featurize(features, *rest):
        ids, weights = featurizer({field: features[field] for field in text_fields})
        mapped = {NGRAM_IDS_INPUT: ids, NGRAM_WEIGHTS_INPUT: weights}
        mapped.update({name: features[name] for name in other_inputs})
        return (mapped, *rest)

    return model, featurize


def _has_featurizer(model) -> bool:
    try:
        model.get_layer(WIDE_FEATURIZER_LAYER)
    except ValueError:
        return False
    return True


def _inputs_read_past(model, stop_tensors) -> set[int]:
    """``id()`` of each of ``model``'s input tensors its outputs depend on other than through ``stop_tensors``."""
    stop = {id(tensor) for tensor in stop_tensors}
    inputs = {id(tensor) for tensor in model.inputs}
    found, seen = set(), set()
    pending = list(keras.tree.flatten(model.outputs))
    while pending:
        tensor = pending.pop()
        if id(tensor) in seen or id(tensor) in stop:
            continue
        seen.add(id(tensor))
        if id(tensor) in inputs:
            found.add(id(tensor))
            continue
        operation, node_index, _ = tensor._keras_history
        pending.extend(operation._inbound_nodes[node_index].input_tensors)
    return found


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
    import tensorflow as tf

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


def completed_epochs_of(run_dir: Path) -> int:
    """Epochs an unfinished run completed, from its ``BackupAndRestore`` metadata (0 when none)."""
    import json

    metadata = Path(run_dir) / STATE_DIR / "backup" / "training_metadata.json"
    try:
        return int(json.loads(metadata.read_text(encoding="utf-8"))["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def _callbacks(fit: FitConfig, run_dir: Path, num_levels: int, has_validation: bool) -> list:
    callbacks = []
    leaf_metric = f"val_level_{num_levels}_accuracy"
    if fit.average_weights_from_epoch:
        # First: it swaps the averaged weights in before validation and the other callbacks' epoch end.
        from linnet.training.regularizers import WeightAveraging

        state = run_dir / STATE_DIR / "backup" / "weight_average.npz" if fit.backup_and_restore else None
        callbacks.append(WeightAveraging(fit.average_weights_from_epoch, state))
    if fit.backup_and_restore:
        callbacks.append(keras.callbacks.BackupAndRestore(str(run_dir / STATE_DIR / "backup")))
        callbacks.append(SeedStateBackup(run_dir / STATE_DIR / "backup" / "seed_states.npz"))
    if fit.checkpoints:
        (run_dir / STATE_DIR / "checkpoints").mkdir(parents=True, exist_ok=True)
        callbacks.append(keras.callbacks.ModelCheckpoint(
            str(run_dir / STATE_DIR / "checkpoints" / "best.weights.h5"), save_weights_only=True,
            monitor=leaf_metric if has_validation else "loss", mode="max" if has_validation else "min",
            save_best_only=True,
        ))
    if fit.early_stopping_patience and has_validation:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=leaf_metric, mode="max", patience=fit.early_stopping_patience, restore_best_weights=True,
        ))
    if fit.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(run_dir / "tensorboard"), update_freq="epoch", write_graph=False))
    return callbacks


def _assemble(model, trained, cache_plan, config, taxonomy, text_fields, image_size):
    """A fresh, uncompiled copy of the full model with the trained weights (no optimizer state)."""
    from linnet.model import build_model

    if cache_plan is not None:
        cache_plan.copy_heads_into(model)
    final = build_model(config.model, taxonomy, text_fields=text_fields, image_size=image_size)
    final.set_weights(model.get_weights())
    return final


def _validation_accuracies(trained, validation_data, validation_catalog, num_levels: int) -> dict:
    """Per-level accuracy of the final weights on the validation split (labelled products only).

    Evaluated with the trained model and the validation dataset fit already used, so nothing is traced
    again; its masked accuracy is the plain fraction of labelled products whose top class is right (and
    ``trained`` holds the same weights as the saved model, best ones when early stopping restored them).
    """
    if validation_data is None or len(validation_catalog) == 0:
        return {}
    results = trained.evaluate(validation_data, return_dict=True, verbose=0)
    metrics = {}
    for level in range(1, num_levels + 1):
        labelled = bool((validation_catalog.labels[:, level - 1] >= 0).any())
        metrics[f"level_{level}_accuracy"] = float(results[f"level_{level}_accuracy"]) if labelled else float("nan")
    return metrics


class SeedStateBackup(keras.callbacks.Callback):
    """Backs up the random seed states of dropout (and other random) layers with ``BackupAndRestore``.

    Keras's weights files leave out ``SeedGenerator`` states, so a resumed run would draw other dropout
    masks than the uninterrupted one. The states are saved at every epoch end and restored at train begin.
    """

    def __init__(self, path: Path):
        super().__init__()
        self.path = Path(path)

    def _states(self) -> list:
        return [variable for variable in self.model.variables if "seed_generator_state" in variable.path]

    def on_train_begin(self, logs=None):
        if not self.path.is_file():
            return
        with np.load(self.path) as saved:
            values = [saved[f"state_{index}"] for index in range(len(saved.files))]
        states = self._states()
        if len(values) == len(states):
            for variable, value in zip(states, values):
                variable.assign(value)

    def on_epoch_end(self, epoch, logs=None):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp.npz")
        np.savez(temporary, **{f"state_{index}": keras.ops.convert_to_numpy(variable)
                               for index, variable in enumerate(self._states())})
        os.replace(temporary, self.path)


class EpochTimer(keras.callbacks.Callback):
    """Times each epoch, for examples/s in the epoch logs, the metrics and the closing summary.

    ``epoch_seconds`` is the wall time of the epoch, validation included; ``train_seconds`` leaves out the
    validation pass (timed between ``on_test_begin`` and ``on_test_end``), so examples/s is the rate of the
    training steps alone.
    """

    def __init__(self, examples_per_epoch: int):
        super().__init__()
        self.examples_per_epoch = examples_per_epoch
        self.epoch_seconds: list[float] = []
        self.train_seconds: list[float] = []
        self._started = 0.0
        self._validation_started = 0.0
        self._validation_seconds = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()
        self._validation_seconds = 0.0

    def on_test_begin(self, logs=None):
        self._validation_started = time.perf_counter()

    def on_test_end(self, logs=None):
        self._validation_seconds += time.perf_counter() - self._validation_started

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._started
        self.epoch_seconds.append(seconds)
        self.train_seconds.append(seconds - self._validation_seconds)
        if logs is not None:
            logs["examples_per_second"] = self.examples_per_epoch / max(self.train_seconds[-1], 1e-9)


def _metrics(history, timer, fit_seconds, validation_metrics, train_catalog, validation_catalog, catalog, scheduler,
             replicas, model, cache_plan) -> dict[str, Any]:
    epoch_seconds = timer.epoch_seconds
    train_seconds = timer.train_seconds
    # The first epoch includes tracing; later epochs show the steady rate. Rates leave out validation.
    steady = train_seconds[1:] or train_seconds
    history_rows = {key: [float(value) for value in values] for key, values in history.history.items()}
    return {
        "epochs_run": len(epoch_seconds),
        "fit_seconds": round(fit_seconds, 2),
        "epoch_seconds": [round(seconds, 3) for seconds in epoch_seconds],
        "epoch_train_seconds": [round(seconds, 3) for seconds in train_seconds],
        "examples_per_second": round(timer.examples_per_epoch * len(train_seconds) / max(sum(train_seconds), 1e-9), 1),
        "steady_examples_per_second": round(timer.examples_per_epoch / max(float(np.mean(steady)), 1e-9), 1),
        "train_examples": len(train_catalog),
        "validation_examples": len(validation_catalog),
        "catalog_examples": len(catalog),
        "replicas": replicas,
        "parameters": int(model.count_params()),
        "embedding_cache": cache_plan.summary() if cache_plan is not None else None,
        "validation": validation_metrics,
        "level_weights_by_epoch": {str(epoch): weights for epoch, weights in scheduler.weights_by_epoch.items()},
        "history": history_rows,
    }


def _write_run(run_dir: Path, config, schema, taxonomy, model, metrics, catalog_path) -> None:
    import tempfile

    from linnet.training.run_directory import write_yaml_atomically

    write_yaml_atomically(run_dir / CONFIG_FILE, config.to_dict())
    write_yaml_atomically(run_dir / SCHEMA_FILE, schema.to_dict())
    write_text_atomically(run_dir / TAXONOMY_FILE, _taxonomy_json(taxonomy))
    write_json_atomically(run_dir / METRICS_FILE, metrics)
    with tempfile.TemporaryDirectory(dir=run_dir) as scratch:
        temporary = Path(scratch) / MODEL_FILE
        model.save(temporary)
        os.replace(temporary, run_dir / MODEL_FILE)
    write_text_atomically(run_dir / README_FILE, run_readme(run_dir, config, schema, taxonomy, metrics, catalog_path))


def _taxonomy_json(taxonomy) -> str:
    import json

    return json.dumps(taxonomy.to_json(), ensure_ascii=False, indent=1) + "\n"


def run_readme(run_dir: Path, config, schema, taxonomy, metrics: dict, catalog_path) -> str:
    """The run directory's README.md: what was trained on what, and how well."""
    validation = metrics.get("validation", {})
    levels = "\n".join(f"| {key.split('_')[1]} | {value:.4f} |" for key, value in validation.items())
    text_encoder = (config.model.text_encoder or {}).get("name", "none")
    image_encoder = (config.model.image_encoder or {}).get("name", "none")
    return f"""# LinNét run `{run_dir.name}`

- Catalog: `{catalog_path}` ({metrics['catalog_examples']:,} products; {metrics['train_examples']:,} train,
  {metrics['validation_examples']:,} validation)
- Taxonomy: {taxonomy.num_levels} levels, {len(taxonomy):,} nodes, fingerprint `{taxonomy.fingerprint()[:16]}`
- Text fields: {', '.join(schema.feature_text_fields)}; image: {'yes' if schema.has_image else 'no'}
- Encoders: text `{text_encoder}`, image `{image_encoder}`; wide path: {config.model.wide.enabled}
- Parameters: {metrics['parameters']:,}
- Epochs: {metrics['epochs_run']} in {metrics['fit_seconds']:.1f} s ({metrics['examples_per_second']:,.0f} examples/s,
  {metrics['steady_examples_per_second']:,.0f} after the first epoch); replicas: {metrics['replicas']}

## Validation accuracy per level

| level | accuracy |
|---|---|
{levels or '| - | (no validation split) |'}

Files: `config.yaml` (training config), `schema.yaml`, `taxonomy.json`, `model.keras`, `metrics.json`,
`mlflow.db` (open with `mlflow ui --backend-store-uri sqlite:///{run_dir.name}/mlflow.db`), `tensorboard/`.
"""


def closing_summary(metrics: dict, run_dir: Path) -> str:
    """The few lines printed when training ends."""
    validation = metrics.get("validation", {})
    accuracies = ", ".join(f"level {key.split('_')[1]} {value:.3f}" for key, value in validation.items())
    return (
        f"Trained {metrics['epochs_run']} epoch(s) in {metrics['fit_seconds']:.1f} s "
        f"({metrics['examples_per_second']:,.0f} examples/s) on {metrics['train_examples']:,} products.\n"
        f"Validation accuracy: {accuracies or 'no validation split'}.\n"
        f"Run written to {run_dir}"
    )
