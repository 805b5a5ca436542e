"""Wide + pretrained through `linnet.serving.export`: the SavedModel (raw strings in) gives the Keras model's scores,
wide path included."""

from __future__ import annotations

import numpy as np

from training.wide_pretrained.conftest import WIDE_LAYERS, build, wide_config


def test_export_and_reload_give_the_model_scores_with_the_wide_path(bert_dir, tiny_taxonomy, tmp_path):
    import tensorflow as tf

    from linnet.serving.export import export_model, load_saved_model

    _, model = build(wide_config(bert_dir, tmp_path / "cache"), tiny_taxonomy)
    titles = tf.constant(["red tee crew neck", "women chelsea boots", "backpack", "flip flops summer"])
    without_wide = model({"title": titles})
    # Non-zero wide tables (they start at zero), so an export that lost the wide path would not match.
    rng = np.random.default_rng(0)
    for name in WIDE_LAYERS:
        layer = model.get_layer(name)
        layer.set_weights([rng.normal(size=weight.shape).astype("float32") for weight in layer.get_weights()])
    expected = model({"title": titles})
    assert np.abs(expected["level_1"].numpy() - without_wide["level_1"].numpy()).max() > 1e-3
    export_dir = export_model(model, tiny_taxonomy, tmp_path / "exports", name="wide_bert", warmup_rows=1)
    scores = load_saved_model(export_dir).signatures["scores"](title=titles)
    for level in range(1, 4):
        # a stop-aware head's output is the level's classes, then its stop columns (the export's stop_k)
        classes = len(tiny_taxonomy.classes(level))
        np.testing.assert_allclose(scores[f"level_{level}"].numpy(), expected[f"level_{level}"].numpy()[:, :classes],
                                   atol=1e-5)
        if f"stop_{level}" in scores:
            np.testing.assert_allclose(scores[f"stop_{level}"].numpy(), expected[f"level_{level}"].numpy()[:, classes:],
                                       atol=1e-5)
