"""One export shared by the export tests: a tiny two-text-field model with images, exported once (and the same
model as a run directory)."""

from __future__ import annotations

import pytest
from inference.tiny_models import build_tiny_model

IMAGE_SIZE = 16


@pytest.fixture(scope="session")
def export_schema():
    from linnet.data import CatalogSchema

    return CatalogSchema(id_column="id", text_columns=["title", "brand"], category_column="path",
                         image_column="image")


@pytest.fixture(scope="session")
def image_model(tiny_taxonomy):
    return build_tiny_model(tiny_taxonomy, text_fields=("title", "brand"), image_size=IMAGE_SIZE, seed=3)


@pytest.fixture(scope="session")
def calibration_path(tiny_taxonomy, tmp_path_factory):
    from linnet.inference.calibration_file import save_calibration

    return save_calibration(tmp_path_factory.mktemp("calibration") / "calibration.json", [0.2, 0.3, 0.3],
                            {"Shoes": 0.5}, tiny_taxonomy)


@pytest.fixture(scope="session")
def exported(image_model, tiny_taxonomy, export_schema, calibration_path, tmp_path_factory):
    from linnet.serving.export import export_model

    base = tmp_path_factory.mktemp("exports")
    return export_model(image_model, tiny_taxonomy, base, name="tiny", schema=export_schema,
                        calibration=calibration_path, metrics={"validation_level_1_accuracy": 0.5}, top_k=3)


@pytest.fixture(scope="session")
def run_dir(image_model, tiny_taxonomy, export_schema, tmp_path_factory):
    """A finished run directory's files, written without training (the model is the export tests' tiny one)."""
    import yaml

    from linnet.training.config import TrainingConfig

    directory = tmp_path_factory.mktemp("artifacts") / "run"
    directory.mkdir()
    image_model.save(directory / "model.keras")
    tiny_taxonomy.save(directory / "taxonomy.json")
    (directory / "schema.yaml").write_text(yaml.safe_dump(export_schema.to_dict()))
    (directory / "config.yaml").write_text(yaml.safe_dump(TrainingConfig().to_dict()))
    return directory


@pytest.fixture(scope="session")
def loaded(exported):
    import tensorflow as tf

    return tf.saved_model.load(str(exported))


def png_bytes(size: int = 20, value: int = 200) -> bytes:
    import tensorflow as tf

    return tf.io.encode_png(tf.fill([size, size, 3], tf.constant(value, tf.uint8))).numpy()
