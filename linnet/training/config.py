"""The training config (``training/configs/*.yaml``): ``model``, ``data`` and ``training`` sections.

Every section is a strict dataclass (`linnet.config_fields`): a key that does not exist is a
``ConfigError`` naming its dotted path, before any data is read or model built.

Example:
    >>> config = TrainingConfig.from_dict({"training": {"epochs": 2}})
    >>> config.training.epochs, config.model.text_encoder["name"]
    (2, 'hashed_ngrams')
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any


from linnet.atomic_files import write_yaml_atomically
from linnet.config_fields import config_from_dict, config_from_yaml
from linnet.data.split import TRAINING_FRACTIONS, check_fractions
from linnet.errors import ConfigError
from linnet.model.config import ModelConfig
from linnet.model.level_weights import LevelWeightsConfig

OPTIMIZERS = ("adamw", "sgd", "separate")
DECAYS = ("cosine", "none")
STRATEGIES = ("default", "mirrored", "multi_worker")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16", "auto")
CLASS_WEIGHTINGS = ("none", "balanced", "sqrt")


@dataclasses.dataclass
class OptimizerConfig:
    """``training.optimizer``.

    Attributes:
        name: ``adamw`` (default; `linnet.encoders.LazyAdamW`, which updates hashed tables sparsely),
            ``sgd`` (momentum), or ``separate``: AdamW for the text encoder and SGD with momentum for the
            image encoder and the heads.
        learning_rate: peak learning rate (after warm-up), for a batch of ``batch_size`` on one replica.
        text_encoder_learning_rate: ``separate`` only: peak rate of the text encoder's AdamW (default:
            ``learning_rate``).
        weight_decay: decoupled weight decay of AdamW (rows of hashed tables decay when a batch touches them).
        momentum: momentum of SGD.
        warmup_fraction: fraction of all steps spent warming up linearly from 0.
        decay: ``cosine`` (to ``min_learning_rate_fraction`` of the peak) or ``none``.
        min_learning_rate_fraction: the final learning rate as a fraction of the peak.
        scale_with_replicas: multiply the learning rate by the number of replicas (the batch is global, so
            more replicas mean a bigger effective batch).
        global_clipnorm: clip the global gradient norm (None: no clipping).
    """

    name: str = "adamw"
    learning_rate: float = 2e-3
    text_encoder_learning_rate: float | None = None
    weight_decay: float = 1e-4
    momentum: float = 0.9
    warmup_fraction: float = 0.05
    decay: str = "cosine"
    min_learning_rate_fraction: float = 0.05
    scale_with_replicas: bool = True
    global_clipnorm: float | None = None

    def validate(self, where: str = "training.optimizer") -> None:
        if self.name not in OPTIMIZERS:
            raise ConfigError(f"config key '{where}.name' must be one of {OPTIMIZERS}, got {self.name!r}")
        if self.decay not in DECAYS:
            raise ConfigError(f"config key '{where}.decay' must be one of {DECAYS}, got {self.decay!r}")
        if self.learning_rate <= 0:
            raise ConfigError(f"config key '{where}.learning_rate' must be positive")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ConfigError(f"config key '{where}.warmup_fraction' must be in [0, 1)")
        if self.weight_decay < 0:
            raise ConfigError(f"config key '{where}.weight_decay' must be >= 0")


@dataclasses.dataclass
class DataConfig:
    """``data``: how the catalog becomes training batches.

    Attributes:
        split: train, validation and test fractions (by hash of the product id, so stable across runs);
            default: the data room's ``linnet.data.split.TRAINING_FRACTIONS`` (0.9, 0.1, 0): everything but a
            small validation split trains (a test slice of the training file is opt-in, e.g. 0.7, 0.15, 0.15).
            Ignored for the validation split when ``train(validation_path=...)`` (``--validation FILE``) names
            a file of its own: then the whole catalog trains.
        split_salt: change it for another deterministic split.
        class_weighting: ``none``, ``balanced`` or ``sqrt`` (per-level class weights as sample weights).
        unknown_labels: ``error``, ``skip`` or ``ancestor`` for labels not in a given ``--taxonomy``.
        image_size: side of the image input; default: the image encoder's ``image_size``, else 224.
        augment: random image augmentation while training.
        shuffle_buffer: examples in the shuffle buffer (None: the whole training split up to 100,000).
    """

    split: list[float] = dataclasses.field(default_factory=lambda: list(TRAINING_FRACTIONS))
    split_salt: str = ""
    class_weighting: str = "none"
    unknown_labels: str = "error"
    image_size: int | None = None
    augment: bool = False
    shuffle_buffer: int | None = None

    def validate(self, where: str = "data") -> None:
        if self.class_weighting not in CLASS_WEIGHTINGS:
            raise ConfigError(f"config key '{where}.class_weighting' must be one of {CLASS_WEIGHTINGS}")
        if len(self.split) != 3 or any(fraction < 0 for fraction in self.split) or self.split[0] <= 0:
            raise ConfigError(f"config key '{where}.split' must be three fractions (train, validation, test)")
        try:
            check_fractions(self.split)
        except ConfigError as error:
            raise ConfigError(f"config key '{where}.split': {error}") from None


@dataclasses.dataclass
class FitConfig:
    """``training``: the fit loop.

    Attributes:
        epochs: passes over the training split.
        batch_size: global batch size (split across replicas).
        seed: seeds Python, NumPy, TensorFlow, the shuffle and the weight initialisation.
        optimizer: see `OptimizerConfig`.
        level_weights: see `linnet.model.LevelWeightsConfig` (fixed, or a schedule from level 1 to leaf).
        label_smoothing: ``eps`` of label smoothing in every level's cross-entropy (0: none): the target puts
            ``1 - eps`` on the label and spreads ``eps`` over all classes, so a fitted example keeps a
            gradient instead of pushing its probability to 1.
        average_weights_from_epoch: from this epoch (1-based) on, the model validated, early-stopped,
            checkpointed and saved is the mean of the end-of-epoch weights of that epoch and every later one
            (`linnet.training.regularizers.WeightAveraging`); training continues from the raw weights. A few
            host copies of the weights per epoch, nothing per step. None: off.
        ngram_dropout: drop each hashed n-gram of a training product with this probability (rescaling the
            rest to the row's norm) in the tf.data pipeline (`linnet.training.regularizers.ngram_dropout`);
            needs ``featurize_in_dataset``. 0: off.
        wide_loss_weight: weight of an extra cross-entropy on each level's wide-path logits alone
            (`linnet.training.regularizers.with_wide_outputs`), so the wide path keeps learning as a linear
            classifier after the deep heads fit the training set. 0: off.
        early_stopping_patience: epochs without improvement of the whole tree's validation accuracy
            (`linnet.training.callbacks.TreeAccuracy`: every level's, weighted by its labelled products) before
            stopping (the best weights are restored, and the run prints why it stopped); None switches early
            stopping off.
        checkpoints: keep the best model of the run in ``RUN_DIR/state/checkpoints``.
        backup_and_restore: keep ``RUN_DIR/state/backup`` so ``linnet train --resume`` continues a killed run.
        tensorboard: write TensorBoard logs to ``RUN_DIR/tensorboard``.
        strategy: ``default``, ``mirrored`` (all local GPUs, or the given ``devices``) or ``multi_worker``
            (``TF_CONFIG``).
        devices: device names for ``mirrored`` (None: all local GPUs, or the CPU).
        precision: ``float32``, ``mixed_float16``, ``mixed_bfloat16`` or ``auto`` (mixed_float16 on a GPU).
        embedding_cache: train the heads on cached embeddings when every encoder is frozen.
        cache_dir: where the embedding cache lives (default ``~/.cache/linnet/embeddings`` or
            ``$LINNET_CACHE_DIR``).
        steps_per_execution: batches per compiled call (fewer Python round trips on small models).
        featurize_in_dataset: compute the hashed n-grams in the tf.data pipeline (in parallel with the
            training step) rather than inside it; the saved model still takes raw strings. Always on under
            ``mirrored`` and ``multi_worker`` (Keras 3.15 cannot distribute string inputs).
        verbose: Keras progress output (1 bar, 2 one line per epoch, 0 silent).
    """

    epochs: int = 10
    batch_size: int = 256
    seed: int = 42
    optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    level_weights: LevelWeightsConfig = dataclasses.field(default_factory=LevelWeightsConfig)
    early_stopping_patience: int | None = 3
    label_smoothing: float = 0.0
    average_weights_from_epoch: int | None = None
    ngram_dropout: float = 0.0
    wide_loss_weight: float = 0.0
    checkpoints: bool = True
    backup_and_restore: bool = True
    tensorboard: bool = True
    strategy: str = "default"
    devices: list[str] | None = None
    precision: str = "float32"
    embedding_cache: bool = True
    cache_dir: str | None = None
    steps_per_execution: int = 1
    featurize_in_dataset: bool = True
    verbose: int = 1

    def validate(self, where: str = "training") -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError(f"config keys '{where}.epochs' and '{where}.batch_size' must be positive")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"config key '{where}.label_smoothing' must be in [0, 1), got {self.label_smoothing}")
        if self.average_weights_from_epoch is not None and self.average_weights_from_epoch < 1:
            raise ConfigError(f"config key '{where}.average_weights_from_epoch' must be at least 1 or empty, "
                              f"got {self.average_weights_from_epoch}")
        if not 0.0 <= self.ngram_dropout < 1.0:
            raise ConfigError(f"config key '{where}.ngram_dropout' must be in [0, 1), got {self.ngram_dropout}")
        if self.wide_loss_weight < 0:
            raise ConfigError(f"config key '{where}.wide_loss_weight' must be >= 0, got {self.wide_loss_weight}")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"config key '{where}.strategy' must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"config key '{where}.precision' must be one of {PRECISIONS}, got {self.precision!r}")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            raise ConfigError(f"config key '{where}.early_stopping_patience' must be positive or empty")
        if self.steps_per_execution < 1:
            raise ConfigError(f"config key '{where}.steps_per_execution' must be positive")
        if self.steps_per_execution > 1 and self.strategy != "default":
            # Keras 3.15 runs the steps in a tf.while_loop whose cross-replica ops fail on the first call.
            raise ConfigError(
                f"config key '{where}.steps_per_execution' must be 1 under strategy {self.strategy!r}, got "
                f"{self.steps_per_execution}: Keras 3.15 fails on several steps per call under a distribution "
                "strategy ('You must feed a value for placeholder tensor', keras-team/keras#19246)")


@dataclasses.dataclass
class TrainingConfig:
    """A whole training config: ``model``, ``data`` and ``training`` sections."""

    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    training: FitConfig = dataclasses.field(default_factory=FitConfig)

    @classmethod
    def from_dict(cls, data: dict | None) -> TrainingConfig:
        return config_from_dict(cls, data or {}, "")

    @classmethod
    def from_yaml(cls, path) -> TrainingConfig:
        """Reads a YAML training config; errors name the file and the dotted key."""
        return config_from_yaml(path, cls.from_dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self, path) -> None:
        write_yaml_atomically(Path(path), self.to_dict())
