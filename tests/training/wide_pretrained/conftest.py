"""Fixtures of the wide + pretrained tests (``model.wide.with_pretrained``).

The pretrained encoder is tests/encoders/bert's tiny BERT (2 layers, width 32), written once per session as
a Hugging Face directory and loaded through ``text_encoder: {name: bert, preset: <dir>}``; nothing is
downloaded. The catalog is the training room's tiny one (96 products, tiny_taxonomy's leaves).
"""

from __future__ import annotations

import pytest
from encoders.bert.conftest import tiny_backbone, write_hugging_face_dir
from training.conftest import write_tiny_catalog

ROWS = 96
WIDE_LAYERS = ["wide_level_1", "wide_level_2", "wide_level_3"]
BERT_LAYER = "bert_text_encoder"


def wide_config(bert_dir, cache_dir, fine_tune: bool = False, embedding_cache: bool = True, **wide) -> dict:
    """A tiny training config: BERT from ``bert_dir`` + the wide path with its own featurizer (4096 bins)."""
    return {
        "model": {
            "text_encoder": {"name": "bert", "preset": str(bert_dir), "fine_tune": fine_tune},
            "fusion_dim": 16,
            "head_hidden_units": [16],
            "head_dropout": 0.0,
            "wide": {"num_buckets": 1024, "with_pretrained": True, "featurizer": {"num_bins": 4096}, **wide},
        },
        "training": {
            "epochs": 1, "batch_size": 32, "verbose": 0, "early_stopping_patience": None, "checkpoints": False,
            "tensorboard": False, "backup_and_restore": False, "cache_dir": str(cache_dir),
            "embedding_cache": embedding_cache, "optimizer": {"learning_rate": 0.01, "warmup_fraction": 0.0},
        },
    }


def build(config_dict, taxonomy):
    """``(TrainingConfig, model)`` of ``config_dict`` with a ``title`` text field."""
    from linnet.model import build_model
    from linnet.training.trainer import resolve_config

    config = resolve_config(config_dict)
    return config, build_model(config.model, taxonomy, ["title"])


@pytest.fixture(scope="session")
def bert_dir(tmp_path_factory):
    return write_hugging_face_dir(tiny_backbone(), tmp_path_factory.mktemp("wide_bert") / "tiny-bert")


@pytest.fixture(scope="session")
def wide_catalog_file(tmp_path_factory):
    return write_tiny_catalog(tmp_path_factory.mktemp("wide_catalog") / "catalog.csv", rows=ROWS, seed=3)


@pytest.fixture(scope="session")
def wide_schema():
    from linnet.data import CatalogSchema

    return CatalogSchema(id_column="id", text_columns=["title"], category_column="category")


@pytest.fixture(scope="session")
def wide_catalog(wide_catalog_file, wide_schema):
    from linnet.data import prepare_catalog

    return prepare_catalog(wide_catalog_file, wide_schema, progress=False)
