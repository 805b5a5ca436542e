"""``build_model``: encoders -> fused vector -> chained level heads (+ a wide linear path) -> outputs.

The graph, for a taxonomy of ``L`` levels::

    text fields ──► featurizer ──► ids, weights ──► embedding bag ──► text vector ─┐
                                        │                                          ├─► fusion ─► fused
    image, image_present ──► image encoder ──► gated image vector ─────────────────┘      │
                                        │                                                  ├─► embedding (L2)
                                        └─► wide_level_k (linear over n-gram ids) ─┐       │
    level k head: [fused, output of level k-1] ─► hidden ─► logits ───────────────(+)─► level_k (softmax)

With a pretrained text encoder (``bert``, ``use_multilingual_v3``) the text vector comes from that encoder
instead, and the wide path exists only with ``wide.with_pretrained``: then a featurizer of its own (layer
``featurizer``, see `wide_featurizer`) reads the same text fields and feeds only ``wide_level_k``.

With ``leaf_head: arcface`` the leaf level is instead a cosine head on the product vector (see
`arcface_leaf`): ``level_L = softmax(scale * cos)``, trained with `linnet.model.arcface.ArcFaceLoss`.

Level ``k``'s head sees the previous level's output (probabilities or logits, by config), so a
subcategory head knows which top-level category the model believes in. Training does not force
children to agree with their parents; `linnet.inference.classifier` does that at prediction time.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import keras

from linnet import encoders
from linnet.encoders.ngram import HashedNgramFeaturizer
from linnet.errors import ConfigError

# Imported here (not lazily) so that every process that can build a model can also load a saved one with
# an ArcFace leaf: the layers register themselves with Keras on import.
from linnet.model.arcface import ArcFaceProbabilities, CosineSimilarityHead
from linnet.model.config import ModelConfig
from linnet.model.layers import HashedLinear, L2Normalize, PresenceGate
from linnet.model.names import (
    EMBEDDING,
    EMBEDDING_PROJECTION,
    FEATURIZER,
    FUSION,
    FUSION_DROPOUT,
    IMAGE,
    IMAGE_FEATURES,
    IMAGE_GATE,
    IMAGE_PRESENT,
    IMAGE_PRESENT_FEATURE,
    JOINED,
    LEVEL_OUTPUT_PREFIX,
    cosine_output,
    head_layer,
    level_logits,
    level_output,
    wide_level,
    wide_scale,
)
from linnet.model.stops import output_sizes

# The names these two functions gave are linnet.model.names' now; kept for callers (tests/training).
leaf_cosine_layer_name = cosine_output
wide_layer_name = wide_level


def wide_logits(model: keras.Model, level: int):
    """The wide-path logits level ``level`` adds to its head's (after the learning-rate scale), or None.

    None when the level has no wide path (no n-gram featurizer, ``wide.enabled: false``, an ArcFace leaf).
    """
    for name in (wide_scale(level), wide_level(level)):
        try:
            return model.get_layer(name).output
        except ValueError:
            continue
    return None


def check_taxonomy_depth(config: ModelConfig, taxonomy) -> int:
    """The taxonomy's number of levels, or ConfigError when it is deeper than ``config.max_levels``."""
    num_levels = int(taxonomy.num_levels)
    if num_levels < 1:
        raise ConfigError("the taxonomy has no levels")
    if num_levels > config.max_levels:
        raise ConfigError(
            f"the taxonomy has {num_levels} levels but config key 'model.max_levels' allows {config.max_levels}; "
            "raise it or truncate the taxonomy (linnet taxonomy truncate)"
        )
    return num_levels


def wide_bucket_count(config: ModelConfig, class_counts: Sequence[int]) -> int:
    """Buckets of the wide path: ``wide.num_buckets`` halved until ``buckets * sum(classes)`` fits.

    Example:
        >>> wide_bucket_count(ModelConfig(), [10, 100])  # 2**18 * 110 is under 32M
        262144
        >>> wide_bucket_count(ModelConfig(), [20, 200, 5000])
        4096
    """
    buckets = config.wide.num_buckets
    total_classes = max(1, sum(class_counts))
    while buckets > 16 and buckets * total_classes > config.wide.max_parameters:
        buckets //= 2
    return buckets


def build_model(
    config: ModelConfig | None,
    taxonomy,
    text_fields: Sequence[str] | None = ("title",),
    image_size: int | None = None,
    name: str = "linnet",
    image_features_dim: int | None = None,
) -> keras.Model:
    """Builds the hierarchical classifier as a Keras functional model.

    Args:
        config: a `ModelConfig` (None: the defaults).
        taxonomy: a `linnet.taxonomy.Taxonomy`; one head per level, ``len(classes(k))`` outputs each.
        text_fields: feature keys of the text inputs (``schema.feature_text_fields``). Ignored when the
            config has no text encoder.
        image_size: side of the square ``image`` input; required when the config has an image encoder.
        name: model name.
        image_features_dim: build the model a frozen image encoder's cached vectors train (see
            `linnet.training.embedding_cache`): an ``image_features`` ``float32 [B, image_features_dim]`` input takes the
            place of ``image`` and the image encoder; every other layer has the same name as in the full
            model, so trained weights copy across by layer name. ``image_size`` is then not needed.

    Returns:
        A ``keras.Model`` with inputs named by feature key (``tf.string [B]`` per text field, plus
        ``image`` ``float32 [B, S, S, 3]`` and ``image_present`` ``float32 [B]`` with images) and a dict of
        outputs ``level_1`` … ``level_L`` (softmax ``[B, n_k]``, ``[B, n_k + n_{k-1}]`` for ``k >= 2`` with
        ``stop_classes``: `linnet.model.stops`) and ``embedding`` (``[B, D]``, L2-normalised).

    Raises:
        ConfigError: taxonomy deeper than ``max_levels``, unknown encoder, image encoder without
            ``image_size``, no text fields for a text encoder.

    Example:
        >>> from linnet.taxonomy import Taxonomy
        >>> taxonomy = Taxonomy.from_paths(["A > B", "A > C", "D > E"])
        >>> config = ModelConfig(text_encoder={"name": "hashed_ngrams", "num_bins": 1024, "embedding_dim": 8},
        ...                      fusion_dim=16, embedding_dim=8, head_hidden_units=[16])
        >>> model = build_model(config, taxonomy, ["title"])
        >>> sorted(model.output_names) if hasattr(model, "output_names") else None  # doctest: +SKIP
        >>> sorted(model({"title": keras.ops.convert_to_tensor(["b"])}))
        ['embedding', 'level_1', 'level_2']
    """
    config = config if config is not None else ModelConfig()
    if isinstance(config, dict):
        config = ModelConfig.from_dict(config)
    num_levels = check_taxonomy_depth(config, taxonomy)
    class_counts = output_sizes([len(taxonomy.classes(level)) for level in range(1, num_levels + 1)],
                                config.stop_classes)

    inputs: dict[str, keras.KerasTensor] = {}
    branches = []
    ngram_ids = ngram_weights = None
    if config.text_encoder is not None:
        if not text_fields:
            raise ConfigError("model.text_encoder is set but the schema has no text fields")
        for field in text_fields:
            inputs[field] = keras.Input(shape=(), dtype="string", name=field)
        text_inputs = {field: inputs[field] for field in text_fields}
        text_encoder = encoders.build_text_encoder(dict(config.text_encoder), list(text_fields))
        featurizer = getattr(text_encoder, "featurizer", None)
        embedding_bag = getattr(text_encoder, "embedding_bag", None)
        if featurizer is not None and embedding_bag is not None:
            if config.wide.featurizer is not None:
                raise ConfigError(
                    "config key 'model.wide.featurizer' applies to a text encoder without n-grams of its own; "
                    f"the {config.text_encoder.get('name')!r} encoder's featurizer feeds the wide path (set its "
                    "options under 'model.text_encoder')"
                )
            # Featurise once and share the ids between the deep path and the wide path.
            ngram_ids, ngram_weights = featurizer(text_inputs)
            branches.append(embedding_bag(ngram_ids, ngram_weights))
        else:
            branches.append(text_encoder(text_inputs))
            if config.wide.enabled and config.wide.with_pretrained:
                # Wide + pretrained: the wide path gets n-grams of its own (same layer name as the n-gram
                # encoder's featurizer, so training moves it into tf.data and the cache computes it there).
                ngram_ids, ngram_weights = wide_featurizer(config, text_fields)(text_inputs)
    if config.image_encoder is not None and image_features_dim:
        # The image encoder's output comes precomputed (embedding cache); the layers after it are unchanged.
        inputs[IMAGE_FEATURES] = keras.Input(shape=(int(image_features_dim),), dtype="float32",
                                             name=IMAGE_FEATURES)
        inputs[IMAGE_PRESENT] = keras.Input(shape=(), dtype="float32", name=IMAGE_PRESENT)
        image_vector = inputs[IMAGE_FEATURES]
    elif config.image_encoder is not None:
        if not image_size:
            raise ConfigError("model.image_encoder is set but no image_size was given (schema has no image column?)")
        image_options = dict(config.image_encoder)
        image_options.setdefault("image_size", int(image_size))
        image_encoder = encoders.build_image_encoder(image_options)
        inputs[IMAGE] = keras.Input(shape=(int(image_size), int(image_size), 3), dtype="float32", name=IMAGE)
        inputs[IMAGE_PRESENT] = keras.Input(shape=(), dtype="float32", name=IMAGE_PRESENT)
        image_vector = image_encoder(inputs[IMAGE])
    if config.image_encoder is not None:
        branches.append(PresenceGate(name=IMAGE_GATE)([image_vector, inputs[IMAGE_PRESENT]]))
        if config.image_presence_feature:
            branches.append(keras.layers.Reshape((1,), name=IMAGE_PRESENT_FEATURE)(inputs[IMAGE_PRESENT]))

    # A named "joined" layer marks where the encoders end (the embedding cache stores its output).
    if len(branches) == 1:
        joined = keras.layers.Identity(name=JOINED)(branches[0])
    else:
        joined = keras.layers.Concatenate(name=JOINED)(branches)
    use_wide = config.wide.enabled and ngram_ids is not None
    outputs = build_heads(config, class_counts, joined, ngram_ids if use_wide else None, ngram_weights)
    return keras.Model(inputs=inputs, outputs=outputs, name=name)


def wide_featurizer(config: ModelConfig, text_fields: Sequence[str]):
    """The `HashedNgramFeaturizer` of a wide path beside a pretrained text encoder (``wide.with_pretrained``).

    Built from ``wide.featurizer`` (None: the featurizer's defaults) and named ``featurizer``, like the
    n-gram encoder's own: `linnet.training.featurized.featurized_training_model` then computes its ids in tf.data and
    `linnet.training.embedding_cache.plan` finds it by that name.

    Raises:
        ConfigError: an option the featurizer does not take, or a value it refuses (the key is named).
    """
    options = dict(config.wide.featurizer or {})
    parameters = inspect.signature(HashedNgramFeaturizer.__init__).parameters
    known = sorted(name for name, parameter in parameters.items()
                   if name not in ("self", "text_fields")
                   and parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL))
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {', '.join('model.wide.featurizer.' + key for key in unknown)}; "
            f"known keys of model.wide.featurizer: {', '.join(known)}"
        )
    try:
        return HashedNgramFeaturizer(list(text_fields), name=FEATURIZER, **options)
    except (ConfigError, TypeError, ValueError) as error:
        raise ConfigError(f"config key 'model.wide.featurizer': {error}") from None


def build_heads(config: ModelConfig, class_counts: Sequence[int], joined, ngram_ids=None, ngram_weights=None) -> dict:
    """Fusion, embedding and the chained level heads on top of the encoders' ``joined`` vector.

    Layer names are fixed (``fusion``, ``head_k_*``, ``wide_level_k``, ``level_k``), so a heads-only model
    (trained on cached embeddings) and the full model share weights by layer name.

    Args:
        config: the model config.
        class_counts: classes per level.
        joined: ``[B, D]`` tensor of the encoders' concatenated outputs.
        ngram_ids, ngram_weights: the featurizer's outputs for the wide path (None: no wide path).

    Returns:
        ``{"level_1": ..., ..., "embedding": ...}`` output tensors.
    """
    fused = keras.layers.Dense(config.fusion_dim, activation=config.fusion_activation, name=FUSION)(joined)
    if config.fusion_dropout:
        fused = keras.layers.Dropout(config.fusion_dropout, name=FUSION_DROPOUT)(fused)
    if config.embedding_dim:
        # A bottleneck the heads read from, so every dimension of the embedding is trained by the heads.
        fused = keras.layers.Dense(config.embedding_dim, name=EMBEDDING_PROJECTION)(fused)
    embedding = L2Normalize(name=EMBEDDING)(fused)

    wide_buckets = wide_bucket_count(config, class_counts) if ngram_ids is not None else 0
    outputs: dict = {}
    previous = None
    leaf_level = len(class_counts)
    for level, num_classes in enumerate(class_counts, start=1):
        if level == leaf_level and config.leaf_head == "arcface":
            outputs[level_output(level)] = arcface_leaf(config, level, num_classes, fused)
            break
        hidden = fused if previous is None else keras.layers.Concatenate(name=head_layer(level, "input"))([fused, previous])
        for index, units in enumerate(config.head_hidden_units, start=1):
            hidden = keras.layers.Dense(units, activation="relu", name=head_layer(level, f"hidden_{index}"))(hidden)
            if config.head_dropout:
                hidden = keras.layers.Dropout(config.head_dropout, name=head_layer(level, f"dropout_{index}"))(hidden)
        logits = keras.layers.Dense(num_classes, name=head_layer(level, "logits"))(hidden)
        if ngram_ids is not None:
            wide = HashedLinear(wide_buckets, num_classes, name=wide_level(level))(ngram_ids, ngram_weights)
            if config.wide.learning_rate_multiplier != 1.0:
                # Under Adam a step moves a weight by about the learning rate whatever the gradient's size, so
                # scaling the output by m makes the effective weights move m times faster (see WideConfig).
                wide = keras.layers.Rescaling(config.wide.learning_rate_multiplier,
                                              name=wide_scale(level))(wide)
            logits = keras.layers.Add(name=level_logits(level))([logits, wide])
        probabilities = keras.layers.Activation("softmax", dtype="float32", name=level_output(level))(logits)
        outputs[level_output(level)] = probabilities
        previous = probabilities if config.chain_outputs == "probabilities" else logits
    outputs[EMBEDDING] = embedding
    return outputs


def arcface_leaf(config: ModelConfig, level: int, num_classes: int, fused):
    """The ArcFace leaf (``leaf_head: arcface``): cosines of the product vector with one centre per class.

    The cosine head reads the product vector itself (the one the ``embedding`` output L2-normalises), not a
    hidden layer over ``[fused, previous level]``: the angular margin then shapes the embedding space, which
    is what ArcFace is for (k-NN, matching). So the leaf level has neither the previous level's output nor
    the wide path; the levels above it are unchanged. Set ``embedding_dim`` for a linear embedding (the
    default fused vector is a ReLU output, which keeps every cosine between products non-negative).

    Returns:
        The ``level_L`` output: ``softmax(arcface_scale * cos)`` (no margin), float32 ``[B, num_classes]``.
        Training reads the cosines instead (`classifier_outputs_model`), with `linnet.model.arcface.ArcFaceLoss`.
    """
    cosines = CosineSimilarityHead(num_classes, name=cosine_output(level))(fused)
    return ArcFaceProbabilities(config.arcface_scale, name=level_output(level))(cosines)


def classifier_outputs_model(model: keras.Model) -> keras.Model:
    """The same layers with only the ``level_k`` outputs: what ``fit`` trains (the embedding has no label).

    With an ArcFace leaf, the ``level_L`` output of this model is the cosine head's ``[B, n]`` cosines
    (what `ArcFaceLoss` reads; their argmax is the probabilities' argmax), not the probabilities.
    The returned model shares every weight with ``model``; training it trains ``model``.
    """
    outputs = {name: tensor for name, tensor in model.output.items() if name.startswith(LEVEL_OUTPUT_PREFIX)}
    leaf_level = len(outputs)
    try:
        cosine_head = model.get_layer(cosine_output(leaf_level))
    except ValueError:
        cosine_head = None
    if cosine_head is not None:
        outputs[level_output(leaf_level)] = cosine_head.output
    # model.input keeps the inputs' structure (a dict by feature key), so the levels model can be re-cut by key.
    return keras.Model(inputs=model.input, outputs=outputs, name=f"{model.name}_levels")


def has_arcface_leaf(model: keras.Model) -> bool:
    """Whether ``model``'s leaf level is an ArcFace cosine head."""
    return any(isinstance(layer, CosineSimilarityHead) for layer in model.layers)
