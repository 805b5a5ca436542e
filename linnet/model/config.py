"""The model section of a training config (``model:`` in ``training/configs/*.yaml``)."""

from __future__ import annotations

import dataclasses
from typing import Any


from linnet.config_fields import config_from_dict, config_from_yaml
from linnet.errors import ConfigError

CHAIN_OUTPUTS = ("probabilities", "logits")
LEAF_HEADS = ("softmax", "arcface")
# Options of the wide featurizer that the builder sets itself (see WideConfig.featurizer).
WIDE_FEATURIZER_RESERVED = ("text_fields", "name", "trainable", "dtype")
WIDE_INITS = ("auto", "zeros", "linear_svm")


@dataclasses.dataclass
class WideConfig:
    """A linear classifier per level over the hashed n-gram ids, added to the deep heads' logits.

    It plays the part of a linear model on TF-IDF features (the strong baseline on short product titles):
    every n-gram id carries its own weight per class and features are L2-normalised (``1/sqrt(n)`` per id).
    ``l2`` is accepted but not applied yet: the rows a batch touches are shrunk by the optimizer's decoupled
    ``weight_decay`` instead.
    The table is ``num_buckets x classes(level)`` per level; when that exceeds ``max_parameters`` summed over
    levels, the bucket count is halved until it fits, so a 7-level tree with thousands of classes keeps a
    bounded size (at the cost of more n-grams sharing a bucket).

    ``learning_rate_multiplier`` scales the wide logits, which under Adam-type optimizers (a step moves a
    weight by about the learning rate whatever the gradient's size) makes the wide weights learn that many
    times faster than the deep layers. A hashed n-gram's row is only updated in batches that contain it, so
    at the deep layers' rate an n-gram seen ``k`` times can move by at most ``k * learning_rate``: the wide
    path could only weigh frequent n-grams, while a linear SVM gives a rare but telling n-gram (a brand, a
    model number, a word in a small language) its full weight. Rare n-grams are the norm in big catalogues
    with thousands of leaves, so this matters more there than on a small tree.

    **Wide + pretrained** (``with_pretrained: true``, opt-in). The wide path reads the hashed n-gram
    encoder's own featurizer, so by default a model whose text encoder is pretrained (``bert``,
    ``use_multilingual_v3``, ``hub``) has no wide path. ``with_pretrained`` adds one anyway, over a
    `linnet.encoders.ngram.HashedNgramFeaturizer` of its own built from ``featurizer`` (its options except
    ``text_fields``; None: its defaults). It is off by default because a linear model over the training
    catalog's n-grams learns that catalog's language: with English-only labels its weights fire on English
    titles only, which pulls the predictions for other languages towards whatever their few shared n-grams
    (brands, sizes, numbers) meant in English, against the cross-lingual point of USE multilingual. Turn it
    on when the catalog you predict speaks the languages you train on: then exact n-grams (brands, model
    numbers, rare terms) add what a sentence encoder blurs. With a frozen pretrained encoder the embedding
    cache still applies (`linnet.training.embedding_cache`): the encoder runs once per product, the n-grams are
    computed in tf.data.

    **Linear SVM start** (``init``; default ``auto``). With ``linear_svm``, before the first epoch each level's
    table is set to a one-vs-rest LinearSVC (C ``svm_c``, margins times ``svm_temperature`` as logits) fitted on the
    training split's featurized n-grams, and frozen; the deep heads then learn on top (`linnet.training.wide_init`).
    ``svm_c`` is 2 because the rows the wide path reads hold the word and the character n-grams at norm 1/sqrt(2)
    each (unit norm together), where TF-IDF + LinearSVC puts each kind at unit norm: C=1 on that scale is exactly
    C=2 on these rows (the same margins). SGD alone does not reach that converged, regularised linear solution.
    ``auto`` runs the SVM when its size, labelled products x classes summed over levels
    (`linnet.training.wide_init.svm_work`), is at most ``svm_max_work``, else starts at ``zeros`` (the tables train
    with the heads). ``svm_jobs`` cores solve the one-vs-rest problems in parallel (-1: all). What these choices
    were measured to give is in docs/encoders.md ("The wide path's settings").
    """

    enabled: bool = True
    num_buckets: int = 2**18
    max_parameters: int = 32_000_000
    l2: float = 1e-7
    learning_rate_multiplier: float = 10.0
    with_pretrained: bool = False
    featurizer: dict | None = None
    init: str = "auto"
    svm_c: float = 2.0
    svm_temperature: float = 5.0
    svm_max_work: int = 30_000_000
    svm_jobs: int = -1

    def validate(self, where: str = "") -> None:
        if self.init not in WIDE_INITS:
            raise ConfigError(f"config key '{where}.init' must be one of {list(WIDE_INITS)}, got {self.init!r}")
        if self.svm_max_work < 0:
            raise ConfigError(f"config key '{where}.svm_max_work' must be >= 0, got {self.svm_max_work}")
        if self.svm_jobs == 0 or self.svm_jobs < -1:
            raise ConfigError(f"config key '{where}.svm_jobs' must be a number of cores or -1 (all), got {self.svm_jobs}")
        if self.svm_c <= 0 or self.svm_temperature <= 0:
            raise ConfigError(f"config keys '{where}.svm_c' and '{where}.svm_temperature' must be positive, got "
                              f"{self.svm_c} and {self.svm_temperature}")
        if self.num_buckets < 16:
            raise ConfigError(f"config key '{where}.num_buckets' must be at least 16, got {self.num_buckets}")
        if self.max_parameters < 1:
            raise ConfigError(f"config key '{where}.max_parameters' must be positive")
        if self.l2 < 0:
            raise ConfigError(f"config key '{where}.l2' must be >= 0")
        if self.learning_rate_multiplier <= 0:
            raise ConfigError(f"config key '{where}.learning_rate_multiplier' must be positive")
        if self.featurizer is not None:
            if not self.with_pretrained:
                raise ConfigError(
                    f"config key '{where}.featurizer' is set but '{where}.with_pretrained' is false; the "
                    "featurizer options only apply to the wide path of a pretrained text encoder (set "
                    f"'{where}.with_pretrained: true', or the n-gram options under 'model.text_encoder')"
                )
            reserved = sorted(set(self.featurizer) & set(WIDE_FEATURIZER_RESERVED))
            if reserved:
                raise ConfigError(
                    f"config key(s) {', '.join(f'{where}.featurizer.{key}' for key in reserved)} cannot be set: "
                    "the wide featurizer reads the schema's text fields and has a fixed layer name"
                )


@dataclasses.dataclass
class ModelConfig:
    """How the network is built.

    Attributes:
        text_encoder: config of ``linnet.encoders.build_text_encoder`` (``name`` plus its options), or
            None for an image-only model.
        image_encoder: config of ``linnet.encoders.build_image_encoder``, or None for text only.
        fusion_dim: width of the fused product representation (concat of encoders -> dense).
        fusion_activation: activation of the fusion projection.
        fusion_dropout: dropout after the fusion projection.
        image_presence_feature: also feed the ``image_present`` flag to the fusion layer, so the heads
            know when the image vector is missing rather than merely small.
        embedding_dim: None: the ``embedding`` output is the L2-normalised fused vector; a width: a linear
            bottleneck of that width after the fusion, which the heads then read (so it is trained).
        head_hidden_units: hidden layer widths of each level head.
        head_dropout: dropout rate inside the heads.
        chain_outputs: what level k passes to level k+1: ``probabilities`` or ``logits``.
        leaf_head: ``softmax`` or ``arcface`` (cosine head + additive angular margin on the leaf level).
        arcface_scale / arcface_margin: ArcFace parameters (leaf_head ``arcface`` only).
        wide: the wide linear path over hashed n-grams (the n-gram encoder's ids; with ``wide.with_pretrained``
            also beside a pretrained text encoder, over a featurizer of its own).
        max_levels: the deepest taxonomy this config accepts; deeper trees are a ConfigError.
        stop_classes: each level's head also predicts "the path ends at this node of the level above" (one
            column per class of that level, `linnet.model.stops`), so a ragged tree's shallow leaves and
            labelled inner nodes compete with deeper paths on one footing; false: the heads have only the
            real classes and a path may end only at a leaf (the models saved before this option).
    """

    text_encoder: dict | None = dataclasses.field(default_factory=lambda: {"name": "hashed_ngrams"})
    image_encoder: dict | None = None
    fusion_dim: int = 256
    fusion_activation: str = "relu"
    fusion_dropout: float = 0.0
    image_presence_feature: bool = True
    embedding_dim: int | None = None
    head_hidden_units: list[int] = dataclasses.field(default_factory=lambda: [256])
    head_dropout: float = 0.2
    chain_outputs: str = "probabilities"
    leaf_head: str = "softmax"
    arcface_scale: float = 30.0
    arcface_margin: float = 0.2
    wide: WideConfig = dataclasses.field(default_factory=WideConfig)
    max_levels: int = 10
    stop_classes: bool = True

    def validate(self, where: str = "model") -> None:
        if self.text_encoder is None and self.image_encoder is None:
            raise ConfigError(f"config keys '{where}.text_encoder' and '{where}.image_encoder' are both empty")
        for key in ("text_encoder", "image_encoder"):
            value = getattr(self, key)
            if value is not None and "name" not in value:
                raise ConfigError(f"config key '{where}.{key}' needs a 'name'")
        if self.chain_outputs not in CHAIN_OUTPUTS:
            raise ConfigError(f"config key '{where}.chain_outputs' must be one of {CHAIN_OUTPUTS}, got {self.chain_outputs!r}")
        if self.leaf_head not in LEAF_HEADS:
            raise ConfigError(f"config key '{where}.leaf_head' must be one of {LEAF_HEADS}, got {self.leaf_head!r}")
        for key in ("head_dropout", "fusion_dropout"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise ConfigError(f"config key '{where}.{key}' must be in [0, 1), got {getattr(self, key)}")
        for key in ("fusion_dim", "embedding_dim", "max_levels"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise ConfigError(f"config key '{where}.{key}' must be positive")
        if any(units < 1 for units in self.head_hidden_units):
            raise ConfigError(f"config key '{where}.head_hidden_units' must hold positive widths")

    @classmethod
    def from_yaml(cls, path) -> ModelConfig:
        """Reads a model config from YAML: either the ``model:`` section alone or a whole training config."""
        return config_from_yaml(path, cls.from_dict, section="model")

    @classmethod
    def from_dict(cls, data: dict | None, where: str = "model") -> ModelConfig:
        return config_from_dict(cls, data, where)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
