"""The layer, input and output names of the hierarchical model: the contract between the rooms.

Training (the embedding cache, the wide path's SVM start, the regularisers), inference, serving and the
embeddings find the model's parts by these names, so each is spelled here once. The builder
(`linnet.model.builder`) gives its layers these names; the other rooms import them from here.

Example:
    >>> from linnet.model import names
    >>> names.level_output(2), names.wide_level(2), names.head_layer(1, "logits")
    ('level_2', 'wide_level_2', 'head_1_logits')
"""

from __future__ import annotations

from linnet.encoders import ngram

#: The hashed n-gram featurizer (of the text encoder, or of the wide path beside a pretrained encoder).
#: Spelled in `linnet.encoders.ngram`, which names the n-gram encoder's featurizer and cannot import this
#: room (encoders sit below the model).
FEATURIZER = ngram.FEATURIZER
#: Its outputs, when training computes the n-grams in tf.data and the trained model starts from them.
NGRAM_IDS = "ngram_ids"
NGRAM_WEIGHTS = "ngram_weights"
#: The concatenated encoder outputs: the end of the encoders, the start of the heads.
JOINED = "joined"
#: The input that replaces ``joined`` when the heads train on cached encoder vectors.
JOINED_VECTOR = "joined_vector"
#: The gate that zeroes the image vector of a product without a usable image.
IMAGE_GATE = "image_gate"
#: ``image_present`` as one more feature beside the encoders' vectors (``image_presence_feature``).
IMAGE_PRESENT_FEATURE = "image_present_feature"
#: Model inputs: the decoded image, whether it was usable, or (frozen image encoder) its cached vector.
IMAGE = "image"
IMAGE_PRESENT = "image_present"
IMAGE_FEATURES = "image_features"
#: The fused product vector the heads read, its dropout, and its linear projection (``embedding_dim``).
FUSION = "fusion"
FUSION_DROPOUT = "fusion_dropout"
EMBEDDING_PROJECTION = "embedding_projection"
#: The L2-normalised product embedding output.
EMBEDDING = "embedding"
#: Prefix of the wide path's per-level layers (``wide_level_1`` ...).
WIDE_LEVEL_PREFIX = "wide_level_"
#: Prefix of the per-level outputs (``level_1`` ...).
LEVEL_OUTPUT_PREFIX = "level_"


def level_output(level: int) -> str:
    """The model output (and label key) of a level: ``level_1`` ... ``level_L``."""
    return f"{LEVEL_OUTPUT_PREFIX}{level}"


def level_logits(level: int) -> str:
    """The layer that adds a level's wide-path logits to its head's: ``level_{level}_logits``."""
    return f"{level_output(level)}_logits"


def wide_level(level: int) -> str:
    """The wide path's layer of a level."""
    return f"{WIDE_LEVEL_PREFIX}{level}"


def wide_scale(level: int) -> str:
    """The layer that scales a level's wide-path logits (``wide.learning_rate_multiplier``)."""
    return f"{wide_level(level)}_scale"


def head_layer(level: int, part: str) -> str:
    """A layer of a level's head: ``head_{level}_{part}`` (``input``, ``logits``, ``hidden_0`` ...)."""
    return f"head_{level}_{part}"


def cosine_output(level: int) -> str:
    """The cosine layer of an ArcFace leaf head."""
    return f"{level_output(level)}_cosine"
