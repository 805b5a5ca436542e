"""Fixtures of the encoder tests: tiny encoders built once per session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tf():
    import tensorflow

    return tensorflow


@pytest.fixture(scope="session")
def tiny_text_encoder():
    """A hashed n-gram encoder over ``title`` and ``attributes`` with 1,024 bins and width 8."""
    from linnet.encoders import build_text_encoder

    return build_text_encoder("hashed_ngrams", ["title", "attributes"], num_bins=1024, embedding_dim=8)


@pytest.fixture(scope="session")
def tiny_text_model(tiny_text_encoder):
    """A functional model ``{title, attributes} -> 3 logits`` around `tiny_text_encoder`."""
    import keras

    inputs = {field: keras.Input(shape=(), dtype="string", name=field) for field in ("title", "attributes")}
    vectors = tiny_text_encoder(inputs)
    logits = keras.layers.Dense(3, name="logits")(vectors)
    return keras.Model(inputs, logits)
