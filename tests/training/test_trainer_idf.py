"""`linnet.training.trainer.train` learns the n-gram featurizer's IDF from the training split and saves it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from .conftest import tiny_config


def test_training_adapts_the_idf_on_the_training_split_and_the_saved_model_keeps_it(tiny_catalog_file, tiny_schema,
                                                                                    tiny_taxonomy, tmp_path):
    import keras

    from linnet.encoders.ngram import idf_featurizers
    from linnet.training.trainer import train

    text = {**tiny_config()["model"]["text_encoder"], "idf": True, "normalize_per_kind": True}
    config = tiny_config(model={"text_encoder": text}, training={"epochs": 1})
    run = train(tiny_catalog_file, tmp_path / "run", schema=tiny_schema, config=config, taxonomy=tiny_taxonomy,
                progress=False)
    (featurizer,) = idf_featurizers(keras.saving.load_model(run.path / "model.keras"))
    idf = featurizer.idf_weights.numpy()
    documents = run.metrics["train_examples"]
    # A bucket no training title contains gets log((1 + n) / 1) + 1; one in every title would get 1.
    assert idf.max() == pytest.approx(math.log(1 + documents) + 1)
    assert idf.min() < idf.max() and idf.min() >= 1.0 - 1e-6
    # Buckets seen in the training titles carry a smaller IDF than unseen ones: there are many of them.
    assert np.sum(idf < idf.max()) > 50
