"""`text_encoder: bert` + `preset:` is a plain model config choice: the model builds, predicts and
round-trips `.keras` with the tiny BERT loaded from its Hugging Face directory."""

from __future__ import annotations

import numpy as np


def test_model_config_selects_bert_by_preset(hugging_face_dir, tiny_taxonomy, tmp_path):
    import keras
    import tensorflow as tf

    from linnet.encoders.bert import BertTextEncoder
    from linnet.model import ModelConfig, build_model

    config = ModelConfig.from_dict({"text_encoder": {"name": "bert", "preset": str(hugging_face_dir)},
                                    "fusion_dim": 16, "head_hidden_units": [8]})
    model = build_model(config, tiny_taxonomy, text_fields=["title", "description"])
    assert any(isinstance(layer, BertTextEncoder) for layer in model.layers)
    features = {"title": tf.constant(["red shirt", "steel knife"]), "description": tf.constant(["cotton", ""])}
    outputs = model(features)
    assert outputs["level_1"].shape == (2, len(tiny_taxonomy.classes(1)))
    np.testing.assert_allclose(outputs["level_1"].numpy().sum(axis=1), 1.0, atol=1e-5)
    model.save(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    again = reloaded(features)
    for name in outputs:
        np.testing.assert_allclose(again[name].numpy(), outputs[name].numpy(), atol=1e-5)
