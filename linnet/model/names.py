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

#: The hashed n-gram featurizer (of the text encoder, or of the wide path beside a pretrained encoder).
FEATURIZER = "featurizer"
#: Its outputs, when training computes the n-grams in tf.data and the trained model starts from them.
NGRAM_IDS = "ngram_ids"
NGRAM_WEIGHTS = "ngram_weights"
#: The concatenated encoder outputs: the end of the encoders, the start of the heads.
JOINED = "joined"
#: The input that replaces ``joined`` when the heads train on cached encoder vectors.
JOINED_VECTOR = "joined_vector"
#: The gate that zeroes the image vector of a product without a usable image.
IMAGE_GATE = "image_gate"
#: Model inputs: the decoded image, whether it was usable, or (frozen image encoder) its cached vector.
IMAGE = "image"
IMAGE_PRESENT = "image_present"
IMAGE_FEATURES = "image_features"
#: The fused product vector the heads read.
FUSION = "fusion"
#: The L2-normalised product embedding output.
EMBEDDING = "embedding"
#: Prefix of the wide path's per-level layers (``wide_level_1`` ...).
WIDE_LEVEL_PREFIX = "wide_level_"


def level_output(level: int) -> str:
    """The model output (and label key) of a level: ``level_1`` ... ``level_L``."""
    return f"level_{level}"


def wide_level(level: int) -> str:
    """The wide path's layer of a level."""
    return f"{WIDE_LEVEL_PREFIX}{level}"


def head_layer(level: int, part: str) -> str:
    """A layer of a level's head: ``head_{level}_{part}`` (``input``, ``logits``, ``hidden_0`` ...)."""
    return f"head_{level}_{part}"


def cosine_output(level: int) -> str:
    """The cosine layer of an ArcFace leaf head."""
    return f"level_{level}_cosine"
