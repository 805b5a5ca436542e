"""Training: ``train(catalog, out_dir, ...)`` fits the hierarchical model and writes a run directory.

One call does the whole job, as a list of named steps (`train` reads top to bottom): resolve the config,
read and split the catalog (`linnet.data`), build the model (`linnet.model.build_model`) and the model
``fit`` trains inside a ``tf.distribute`` strategy, plan the embedding cache, start the wide path, compile,
build the datasets and callbacks, fit with masked per-level losses whose level weights follow the configured
schedule, track the run in MLflow, and write the run directory (`linnet.training.run_directory`) that
``export``, ``evaluate``, ``predict`` and ``embed`` read.

When every encoder is frozen, the encoders run once over the catalog and the heads train on the cached
vectors (`linnet.training.embedding_cache`); the full model is then assembled from encoders and trained heads.
When only the image encoder is frozen, its vectors are cached the same way and the rest of the model trains
on them.

Example:
    >>> from linnet.data import CatalogSchema
    >>> schema = CatalogSchema(text_columns=["title"], category_column="category")
    >>> run = train("catalog.csv", "runs/first", schema=schema, epochs=2)  # doctest: +SKIP
    >>> run.metrics["validation"]["level_1_accuracy"]  # doctest: +SKIP
    0.97
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from linnet import encoders
from linnet.data import CatalogSchema, prepare_catalog
from linnet.data import class_weights as compute_class_weights
from linnet.data.tfrecord import (
    is_tfrecord_catalog,
    read_tfrecord_catalog,
    tfrecord_catalog_schema,
)
from linnet.encoders import LazyAdamW
from linnet.encoders.ngram import adapt_featurizers, copy_featurizer_weights
from linnet.errors import ConfigError
from linnet.model import (
    MaskedSparseCategoricalAccuracy,
    MaskedSparseCategoricalCrossentropy,
    build_model,
    check_taxonomy_depth,
    level_weight_scheduler,
    level_weights_for_epoch,
    make_level_weight_variables,
    names,
    output_sizes,
    with_stop_labels,
)
from linnet.model.arcface import ArcFaceLoss
from linnet.model.builder import classifier_outputs_model
from linnet.taxonomy import Taxonomy, load_taxonomy
from linnet.training import embedding_cache
from linnet.training.callbacks import (
    EpochTimer,
    TreeEarlyStopping,
    completed_epochs_of,
    run_callbacks,
)
from linnet.training.config import (
    DataConfig,
    FitConfig,
    OptimizerConfig,
    TrainingConfig,
)
from linnet.training.datasets import catalog_datasets, for_replicas_and_wide_outputs
from linnet.training.distribute import keras_multi_worker_fixes
from linnet.training.featurized import (
    featurized_training_model,
    has_wide_path,
    wide_featurizer_layer,
)
from linnet.training.optimizers import VariableSplitOptimizer
from linnet.training.regularizers import wide_output_name, with_wide_outputs
from linnet.training.run_directory import (
    CONFIG_FILE,
    METRICS_FILE,
    MODEL_FILE,
    README_FILE,
    SCHEMA_FILE,
    STATE_DIR,
    TAXONOMY_FILE,
    LoadedRun,
    RunFiles,
    check_run_directory,
    closing_summary,
    load_run,
    prepare_run_directory,
    write_run,
)
from linnet.training.tracking import MlflowTracker
from linnet.training.wide_init import (
    freeze_wide_tables,
    init_wide_from_linear_svm,
    resolve_init,
)

__all__ = [
    "DataConfig",
    "FitConfig",
    "OptimizerConfig",
    "Run",
    "TrainingConfig",
    "featurized_training_model",
    "level_losses",
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


@dataclasses.dataclass
class RunData:
    """What a run trains on and where it writes, checked before any model is built (`_prepare_run`)."""

    config: TrainingConfig
    schema: CatalogSchema
    taxonomy: Taxonomy
    catalog: Any  # the whole `linnet.data.PreparedCatalog`; the two splits below are its subsets
    train_catalog: Any
    validation_catalog: Any
    image_size: int | None
    run_dir: Path
    catalog_path: Any
    progress: bool
    completed_epochs: int  # epochs an unfinished run being resumed already did (0: a fresh run)

    @property
    def fit(self) -> FitConfig:
        return self.config.training

    @property
    def text_fields(self) -> list[str]:
        return list(self.schema.feature_text_fields)

    @property
    def num_levels(self) -> int:
        return self.taxonomy.num_levels


@dataclasses.dataclass
class TrainingModels:
    """The models of a run (`_build_models`): the full model that is saved and the one ``fit`` trains.

    ``trained`` shares its weights with ``model`` (or, with a cache plan, with the plan's heads model);
    ``featurize`` is the tf.data map computing its n-gram inputs when the featurizer moved into the
    pipeline; ``wide_outputs`` says it has the wide path's own outputs (``training.wide_loss_weight``).
    """

    model: keras.Model
    trained: keras.Model
    cache_plan: embedding_cache.CachePlan | None
    featurize: Callable | None
    wide_outputs: bool
    level_weight_variables: list


@dataclasses.dataclass
class FitOutcome:
    """What ``fit`` left for the metrics (`_metrics`)."""

    history: Any
    timer: EpochTimer
    scheduler: Any
    fit_seconds: float
    replicas: int
    validation: dict


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
    errors_path=None,
    max_bad_rows: int | None = None,
    validation_path=None,
) -> Run:
    """Trains a model on a catalog and writes a run directory.

    Args:
        catalog_path: the catalog file (CSV/TSV/JSONL/Parquet), or a TFRecord directory (``linnet data tfrecords``,
            ``linnet beam build-tfrecords``) or glob of its shards, local or ``gs://``: its schema, tree and labels
            are the records' own (`linnet.data.tfrecord.read_tfrecord_catalog`; ``data.split`` splits it again).
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
        errors_path: skip bad catalog rows and write them here (JSON Lines), as `linnet.data.prepare_catalog`.
        max_bad_rows: skip bad rows, but fail once more than this many are bad.
        validation_path: a labelled catalog of its own for validation (``--validation FILE``): the whole of
            ``catalog_path`` then trains. None: ``data.split`` carves the validation split from the catalog.

    Returns:
        The loaded run (`linnet.training.run_directory.LoadedRun`: ``.path .model .taxonomy .schema .config .metrics``).

    Raises:
        ConfigError: bad config key or value, taxonomy deeper than the config allows, unknown encoder,
            ``out_dir`` already holding a run.
        CatalogError: an unusable catalog (file, row and field named).
    """
    config = resolve_config(config, epochs)
    run = _prepare_run(catalog_path, out_dir, config, schema, taxonomy, catalog,
                       resume=resume, max_rows=max_rows, progress=progress, validation_path=validation_path,
                       bad_rows={"errors_path": errors_path, "max_bad_rows": max_bad_rows})
    keras.utils.set_random_seed(config.training.seed)
    policy = resolve_precision(config.training)
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        return _fit_and_save(run, list(callbacks))
    finally:
        keras.config.set_dtype_policy(previous_policy)


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


def _prepare_run(catalog_path, out_dir, config: TrainingConfig, schema, taxonomy, catalog, *, resume: bool,
                 max_rows: int | None, progress: bool, validation_path=None, bad_rows: dict | None = None) -> RunData:
    """Checks the arguments, reads and splits the catalog and creates the run directory.

    Encoder names, options and weights files and the run directory are checked before any data is read.
    """
    # a TFRecord directory (or glob of its shards) is read with the schema and tree its records were written with
    records = catalog is None and is_tfrecord_catalog(catalog_path)
    if records:
        if any(value is not None for value in (bad_rows or {}).values()):
            raise ConfigError(f"{catalog_path}: --errors-file and --max-bad-rows skip a catalog file's bad rows; a "
                              "TFRecord catalog holds checked rows only (its bad rows were reported when it was "
                              "written: failures-*.jsonl)")
        schema = tfrecord_catalog_schema(catalog_path, schema)
    schema = schema if schema is not None else CatalogSchema(category_column="category")
    taxonomy = _load_taxonomy_argument(taxonomy)
    if taxonomy is not None:
        check_taxonomy_depth(config.model, taxonomy)
    image_size = _image_size(config, schema)
    _check_encoders(config, schema, image_size)
    check_run_directory(Path(out_dir), resume=resume)
    if resume:
        check_resumable(Path(out_dir), config.training.backup_and_restore)

    split = tuple(config.data.split) if validation_path is None else (1.0, 0.0, 0.0)
    if records:
        catalog = read_tfrecord_catalog(catalog_path, schema, taxonomy=taxonomy, split=split,
                                        split_salt=config.data.split_salt, max_rows=max_rows)
    elif catalog is None:
        catalog = prepare_catalog(
            catalog_path, schema, taxonomy=taxonomy, unknown_labels=config.data.unknown_labels,
            split=split, split_salt=config.data.split_salt, max_rows=max_rows, progress=progress, **(bad_rows or {}),
        )
    taxonomy = catalog.taxonomy
    if taxonomy is None:
        raise ConfigError("the catalog has no categories and no taxonomy was given: nothing to train on")
    check_taxonomy_depth(config.model, taxonomy)
    validation_catalog = catalog.subset("validation")
    if validation_path is not None:
        # Labelled against the training tree: a path it lacks is cut to its deepest known node (reported).
        validation_catalog = prepare_catalog(validation_path, schema, taxonomy=taxonomy, unknown_labels="ancestor",
                                             split=(0.0, 1.0, 0.0), progress=progress)
    train_catalog = _head_labels(catalog.subset("train"), config)
    if len(train_catalog) == 0:
        raise ConfigError(f"the training split of {catalog_path} is empty (data.split = {config.data.split})")
    run_dir = prepare_run_directory(Path(out_dir), resume=resume)
    completed_epochs = completed_epochs_of(run_dir) if resume and config.training.backup_and_restore else 0
    return RunData(config, schema, taxonomy, catalog, train_catalog, _head_labels(validation_catalog, config),
                   image_size, run_dir, catalog_path, progress, completed_epochs)


def _head_labels(catalog, config: TrainingConfig):
    """``catalog`` with the labels the level heads train on: with ``model.stop_classes`` each product labelled
    above the deepest level also gets the stop column of its last node at the level below (`linnet.model.stops`)."""
    if not config.model.stop_classes:
        return catalog
    return dataclasses.replace(catalog, labels=with_stop_labels(catalog.labels, catalog.taxonomy.level_sizes()))


def check_resumable(out_dir: Path, backup_and_restore: bool) -> None:
    """Refuses ``resume=True`` when nothing could be resumed, instead of silently starting at epoch 1.

    Raises:
        ConfigError: ``training.backup_and_restore`` is off, or the unfinished run in ``out_dir`` has no
            completed epoch backed up (it was trained without backups, or stopped in its first epoch).
    """
    if not backup_and_restore:
        raise ConfigError("--resume needs training.backup_and_restore: true (it is off in this config), or a run "
                          "would silently start again from epoch 1; turn it on, or train into a new --out")
    if out_dir.is_dir() and any(out_dir.iterdir()) and completed_epochs_of(out_dir) == 0:
        raise ConfigError(f"--resume: {out_dir} has no completed epoch backed up (trained without "
                          "training.backup_and_restore, or stopped in its first epoch); nothing to resume, so train "
                          "into a new --out")


def _load_taxonomy_argument(taxonomy):
    """``train``'s ``taxonomy`` argument as a `Taxonomy` (read from a file when it names one), or None."""
    if taxonomy is None:
        return None
    if isinstance(taxonomy, (str, os.PathLike)):
        return load_taxonomy(taxonomy)
    return taxonomy


def _image_size(config: TrainingConfig, schema) -> int | None:
    """The side of the image input (None: the model has no image encoder)."""
    if config.model.image_encoder is None:
        if schema.has_image:
            # Training on the text alone would ignore the images the user pointed at, without a word.
            raise ConfigError(f"the schema has an image column ({schema.image_column!r}, --image-column) but config "
                              "key 'model.image_encoder' is empty: set it (for example {name: mobilenet_v2, weights: "
                              "imagenet}) to use the images, or leave the image column out to train on text alone")
        return None
    if not schema.has_image:
        raise ConfigError("model.image_encoder is set but the schema has no image column (--image-column)")
    return int(config.data.image_size or config.model.image_encoder.get("image_size") or DEFAULT_IMAGE_SIZE)


def _check_encoders(config: TrainingConfig, schema, image_size) -> None:
    """Builds the configured encoders once, so a bad name, option or weights file fails before any data is read."""
    if config.model.text_encoder is not None:
        encoders.build_text_encoder(dict(config.model.text_encoder), list(schema.feature_text_fields))
    if config.model.image_encoder is not None:
        options = dict(config.model.image_encoder)
        options.setdefault("image_size", image_size)
        encoders.build_image_encoder(options)


def _fit_and_save(run: RunData, extra_callbacks: list) -> Run:
    """Builds and compiles the models under the strategy, fits them, and writes and loads the run directory."""
    strategy = make_strategy(run.fit)
    replicas = strategy.num_replicas_in_sync
    with strategy.scope():
        models = _build_models(run)
        # A resumed run gets its frozen tables back from the backup with the other weights: no second solve.
        _init_wide_path(run, models)
        _compile(run, models, replicas)
    train_data, validation_data = _datasets(run, models, replicas)
    scheduler = level_weight_scheduler(run.fit.level_weights, models.level_weight_variables)
    timer = EpochTimer(len(run.train_catalog))
    labelled = (np.asarray(run.validation_catalog.labels) >= 0).sum(axis=0).tolist()
    callbacks = [scheduler, timer, *run_callbacks(run.fit, run.run_dir, run.num_levels, validation_data is not None,
                                                  labelled_per_level=labelled,
                                                  report=(lambda line: print(line, flush=True)) if run.progress else None)]
    _skip_completed_epochs(train_data, run.completed_epochs)
    started = time.perf_counter()
    with MlflowTracker(run.run_dir, run_name=run.run_dir.name) as tracker, keras_multi_worker_fixes(strategy):
        _log_run_start(tracker, run, replicas)
        callbacks.append(tracker.keras_callback())
        callbacks.extend(extra_callbacks)
        # The dataset shuffles itself (seeded); Keras's own shuffle does not apply to tf.data.
        history = models.trained.fit(train_data, validation_data=validation_data, epochs=run.fit.epochs,
                                     callbacks=callbacks, verbose=run.fit.verbose if run.progress else 0,
                                     shuffle=False)
        fit_seconds = time.perf_counter() - started
        final_model = _assemble(run, models)
        validation = _validation_accuracies(models.trained, validation_data, run.validation_catalog, run.num_levels)
        metrics = _metrics(run, FitOutcome(history, timer, scheduler, fit_seconds, replicas, validation),
                           final_model, models.cache_plan)
        metrics["stopped"] = next((callback.reason for callback in callbacks
                                   if isinstance(callback, TreeEarlyStopping) and callback.reason), None)
        tracker.log_metrics({f"final_{key}": value for key, value in validation.items()})
        tracker.log_metrics({"bad_rows": metrics["bad_rows"], "unusable_images": metrics["unusable_images"]})
        write_run(run.run_dir, RunFiles(run.config, run.schema, run.taxonomy, final_model, metrics, run.catalog_path))
        _log_run_files(tracker, run)
    shutil.rmtree(run.run_dir / STATE_DIR, ignore_errors=True)
    if run.progress:
        print(closing_summary(metrics, run.run_dir))
    return load_run(run.run_dir)


def make_strategy(fit: FitConfig):
    """The ``tf.distribute`` strategy named by ``training.strategy``.

    ``multi_worker`` reads the cluster from ``TF_CONFIG`` (see ``training/launch_multi_worker.py``).
    """
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
    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "float32"


def _build_models(run: RunData) -> TrainingModels:
    """Builds the full model, learns its featurizers' IDF and plans the embedding cache, then derives the
    model ``fit`` trains (the cache plan's heads, the wide outputs, the featurizer moved into tf.data) and
    the level-weight variables its losses read."""
    fit = run.fit
    model = build_model(run.config.model, run.taxonomy, text_fields=run.text_fields, image_size=run.image_size)
    # IDF of the n-gram featurizers from the training texts, before the cache fingerprints the encoders.
    adapt_featurizers(model, run.train_catalog.texts, progress=run.progress)
    cache_plan = (embedding_cache.plan(model, run.config, taxonomy=run.taxonomy, text_fields=run.text_fields,
                                       image_size=run.image_size) if fit.embedding_cache else None)
    trained = cache_plan.heads_model if cache_plan is not None else classifier_outputs_model(model)
    copy_featurizer_weights(model, trained)  # a cache plan's rebuilt model has featurizers of its own
    wide_outputs = None
    if fit.wide_loss_weight:
        wide_outputs = with_wide_outputs(trained, run.num_levels)
        trained = wide_outputs if wide_outputs is not None else trained
    featurize = None
    if cache_plan is None and (fit.featurize_in_dataset or fit.strategy != "default"):
        featurized = featurized_training_model(trained, run.text_fields)
        if featurized is not None:
            trained, featurize = featurized
    level_weight_variables = make_level_weight_variables(
        level_weights_for_epoch(fit.level_weights, 0, run.num_levels))
    return TrainingModels(model, trained, cache_plan, featurize, wide_outputs is not None, level_weight_variables)


def _init_wide_path(run: RunData, models: TrainingModels) -> None:
    """``model.wide.init``: with ``linear_svm`` (or ``auto`` under ``wide.svm_max_work``) set and freeze the
    trained model's wide tables to a LinearSVC (see `linnet.training.wide_init`); else they start at zero.
    A resumed run's weights come from its backup, so its tables are only frozen, not solved again."""
    wide = run.config.model.wide
    featurizer = wide_featurizer_layer(models.model)
    if featurizer is None or not has_wide_path(models.model):
        if wide.init == "linear_svm":
            raise ConfigError("model.wide.init 'linear_svm' needs a wide path fed by the n-gram featurizer "
                              "(model.wide.enabled with a hashed_ngrams text encoder, or wide.with_pretrained)")
        return  # no wide path: nothing to start
    labels = np.asarray(run.train_catalog.labels)
    if run.fit.wide_loss_weight and wide.init != "zeros":
        if wide.init == "linear_svm":
            raise ConfigError("training.wide_loss_weight trains the wide path, which model.wide.init 'linear_svm' "
                              "freezes: set one of them (wide.init: zeros, or wide_loss_weight: 0)")
        if run.progress:
            print("wide.init auto: training.wide_loss_weight trains the wide path, so it starts at zero", flush=True)
        return
    init, why = resolve_init(wide.init, labels, wide.svm_max_work)
    if run.progress:
        print(why, flush=True)
    if init == "linear_svm" and run.completed_epochs > 0:
        levels = freeze_wide_tables(models.trained, labels.shape[1])
        if run.progress:
            print(f"wide path: the LinearSVC tables of level(s) {levels} come back from the backup", flush=True)
    elif init == "linear_svm":
        init_wide_from_linear_svm(models.trained, featurizer, run.train_catalog.texts, labels, C=wide.svm_c,
                                  temperature=wide.svm_temperature, logit_scale=wide.learning_rate_multiplier,
                                  seed=run.fit.seed, n_jobs=wide.svm_jobs, progress=run.progress)


def _compile(run: RunData, models: TrainingModels, replicas: int) -> None:
    """Compiles the trained model: the optimizer, one masked loss per level (and per wide output) weighted by
    the level-weight variables, and a masked accuracy per level."""
    fit = run.fit
    steps_per_epoch = math.ceil(len(run.train_catalog) / fit.batch_size)
    optimizer = make_optimizer(fit.optimizer, steps_per_epoch * fit.epochs, replicas,
                               text_variables=_text_encoder_variables(models.trained))
    losses = level_losses(run.config.model, models.level_weight_variables, fit.label_smoothing)
    loss_weights = None
    if models.wide_outputs and fit.wide_loss_weight:
        # The wide path's own logits (`linnet.training.regularizers.with_wide_outputs`) as a linear classifier.
        loss_weights = {name: 1.0 for name in losses}
        for level, variable in enumerate(models.level_weight_variables, start=1):
            if wide_output_name(level) not in models.trained.output:
                continue
            losses[wide_output_name(level)] = MaskedSparseCategoricalCrossentropy(
                variable, from_logits=True, label_smoothing=fit.label_smoothing)
            loss_weights[wide_output_name(level)] = float(fit.wide_loss_weight)
    levels = [names.level_output(level) for level in range(1, run.num_levels + 1)]
    models.trained.compile(
        optimizer=optimizer,
        loss=losses,
        loss_weights=loss_weights,
        metrics={name: [MaskedSparseCategoricalAccuracy()] for name in levels},
        steps_per_execution=fit.steps_per_execution,
    )


def level_losses(model_config, level_weight_variables, label_smoothing: float = 0.0) -> dict:
    """One loss per level output: masked cross-entropy, and `ArcFaceLoss` on an ArcFace leaf's cosines.

    Every loss multiplies by its level's weight variable, so the level-weight schedule applies to all.
    ``label_smoothing`` applies to the cross-entropy levels.
    """
    losses = {names.level_output(level): MaskedSparseCategoricalCrossentropy(variable, label_smoothing=label_smoothing)
              for level, variable in enumerate(level_weight_variables, start=1)}
    if model_config.leaf_head == "arcface":
        leaf = len(level_weight_variables)
        losses[names.level_output(leaf)] = ArcFaceLoss(scale=model_config.arcface_scale,
                                                       margin=model_config.arcface_margin,
                                                       level_weight=level_weight_variables[-1])
    return losses


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
    scale = num_replicas if optimizer.scale_with_replicas else 1
    peak = optimizer.learning_rate * scale
    schedule = learning_rate_schedule(optimizer, peak, total_steps)
    clip = {"global_clipnorm": optimizer.global_clipnorm} if optimizer.global_clipnorm else {}
    if optimizer.name == "adamw":
        return LazyAdamW(learning_rate=schedule, weight_decay=optimizer.weight_decay, **clip)
    sgd = keras.optimizers.SGD(learning_rate=schedule, momentum=optimizer.momentum, **clip)
    if optimizer.name == "sgd":
        return sgd
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
    prefixes = ("embedding_bag", "text_encoder")
    return [variable for variable in model.trainable_variables if variable.path.split("/")[0] in prefixes]


def _datasets(run: RunData, models: TrainingModels, replicas: int) -> tuple:
    """``(train, validation)`` tf.data for ``fit``: from the embedding cache or the catalog, with the wide
    outputs' targets and, over several replicas, whole replica batches (validation None when it is empty)."""
    fit = run.fit
    weights_by_level = compute_class_weights(run.train_catalog.labels,
                                             output_sizes(run.taxonomy.level_sizes(), run.config.model.stop_classes),
                                             run.config.data.class_weighting)
    if models.cache_plan is not None:
        datasets = models.cache_plan.datasets(
            run.train_catalog, run.validation_catalog, fit, run.config.data, run.image_size, weights_by_level,
            progress=run.progress, cache_dir=fit.cache_dir,
        )
    else:
        datasets = catalog_datasets(run.train_catalog, run.validation_catalog, run.config, run.image_size,
                                    weights_by_level, models.trained, models.featurize)
    return for_replicas_and_wide_outputs(datasets, models.trained, run.num_levels, models.wide_outputs, replicas)


def _skip_completed_epochs(train_data, completed_epochs: int) -> None:
    """Advances ``train_data``'s shuffle past the epochs a resumed run already did.

    tf.data reshuffles on every new iterator from a seeded generator, and Keras's epoch iterator creates
    ITERATORS_PER_EPOCH of them per epoch: advancing the generator past the epochs already done makes a
    resumed run see the same batches as an uninterrupted one (tests/training checks the final weights).
    """
    for _ in range(completed_epochs * ITERATORS_PER_EPOCH):
        iter(train_data)


def _log_run_start(tracker: MlflowTracker, run: RunData, replicas: int) -> None:
    """Logs the run's config, schema and catalog as MLflow params and its taxonomy and strategy as tags."""
    tracker.log_params({"config": run.config.to_dict(), "schema": run.schema.to_dict(),
                        "catalog": str(run.catalog_path)})
    tracker.set_tags({"taxonomy_fingerprint": run.taxonomy.fingerprint(), "num_levels": run.num_levels,
                      "strategy": run.fit.strategy, "replicas": replicas})


def _log_run_files(tracker: MlflowTracker, run: RunData) -> None:
    """Logs the written run files (and the TensorBoard logs) as MLflow artifacts, the model under ``model``."""
    for name in (CONFIG_FILE, SCHEMA_FILE, TAXONOMY_FILE, METRICS_FILE, README_FILE):
        tracker.log_artifact(run.run_dir / name)
    if run.fit.tensorboard:
        tracker.log_artifact(run.run_dir / "tensorboard", "tensorboard")
    tracker.log_artifact(run.run_dir / MODEL_FILE, "model")


def _assemble(run: RunData, models: TrainingModels):
    """A fresh, uncompiled copy of the full model with the trained weights (no optimizer state)."""
    if models.cache_plan is not None:
        models.cache_plan.copy_heads_into(models.model)
    final = build_model(run.config.model, run.taxonomy, text_fields=run.text_fields, image_size=run.image_size)
    final.set_weights(models.model.get_weights())
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


def _metrics(run: RunData, outcome: FitOutcome, final_model, cache_plan) -> dict[str, Any]:
    """The run's ``metrics.json``: timings and rates, split sizes, parameters, cache use, validation
    accuracies, the level weights by epoch and the epoch history."""
    epoch_seconds = outcome.timer.epoch_seconds
    train_seconds = outcome.timer.train_seconds
    examples_per_epoch = outcome.timer.examples_per_epoch
    # The first epoch includes tracing; later epochs show the steady rate. Rates leave out validation.
    steady = train_seconds[1:] or train_seconds
    history_rows = {key: [float(value) for value in values] for key, values in outcome.history.history.items()}
    return {
        "epochs_run": len(epoch_seconds),
        "fit_seconds": round(outcome.fit_seconds, 2),
        "epoch_seconds": [round(seconds, 3) for seconds in epoch_seconds],
        "epoch_train_seconds": [round(seconds, 3) for seconds in train_seconds],
        "examples_per_second": round(examples_per_epoch * len(train_seconds) / max(sum(train_seconds), 1e-9), 1),
        "steady_examples_per_second": round(examples_per_epoch / max(float(np.mean(steady)), 1e-9), 1),
        "train_examples": len(run.train_catalog),
        "validation_examples": len(run.validation_catalog),
        "catalog_examples": len(run.catalog),
        "replicas": outcome.replicas,
        "parameters": int(final_model.count_params()),
        "embedding_cache": cache_plan.summary() if cache_plan is not None else None,
        "validation": outcome.validation,
        "level_weights_by_epoch": {str(epoch): weights
                                   for epoch, weights in outcome.scheduler.weights_by_epoch.items()},
        "history": history_rows,
        "resumed_from_epoch": run.completed_epochs,
        # nothing dropped silently: bad rows skipped and images that could not be used (issue 23)
        "bad_rows": len(run.catalog.report.bad_rows),
        "unusable_images": run.catalog.report.unusable_images,
        "images": dict(run.catalog.report.images),
    }
