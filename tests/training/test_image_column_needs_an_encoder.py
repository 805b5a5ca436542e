"""An image column with no image encoder is refused (naming the config key) instead of silently ignored."""

from __future__ import annotations

import pytest

from linnet.errors import ConfigError

from .conftest import tiny_config


def test_an_image_column_without_an_image_encoder_names_the_config_key(tmp_path):
    from linnet.data import CatalogSchema
    from linnet.training.trainer import train

    schema = CatalogSchema(id_column="id", text_columns=["title"], category_column="category", image_column="image")
    with pytest.raises(ConfigError, match=r"model\.image_encoder") as error:
        train(tmp_path / "missing.csv", tmp_path / "run", schema=schema, config=tiny_config(), progress=False)
    assert "'image'" in str(error.value)
    assert not (tmp_path / "run").exists(), "refused before any run directory or data"
