"""make_dataset, TFRecord and TFDS round trips: the (features, labels, sample_weights) contract."""

import numpy as np
import pytest

from linnet.data import prepare_catalog

tf = pytest.importorskip("tensorflow")


@pytest.fixture
def prepared(small_catalog, small_schema):
    return prepare_catalog(small_catalog, small_schema)


def _all(dataset):
    batches = list(dataset.as_numpy_iterator())
    features = {key: np.concatenate([b[0][key] for b in batches]) for key in batches[0][0]}
    labels = {key: np.concatenate([b[1][key] for b in batches]) for key in batches[0][1]}
    weights = {key: np.concatenate([b[2][key] for b in batches]) for key in batches[0][2]}
    return features, labels, weights


def test_dataset_contract_with_images_and_masked_weights(prepared):
    from linnet.data import make_dataset

    features, labels, weights = _all(make_dataset(prepared, batch_size=4, image_size=32, class_weighting="balanced"))
    assert set(features) == {"title", "attributes", "image", "image_present"}
    assert features["image"].shape == (6, 32, 32, 3) and features["image"].dtype == np.float32
    # jpg, png, gif present; missing file and empty cell blank; webp present
    assert features["image_present"].tolist() == [1, 1, 1, 0, 0, 1]
    assert not features["image"][3].any() and features["image"][0].max() > 50
    assert [t.decode() for t in features["title"]] == list(prepared.texts["title"])
    assert features["attributes"][0] == b"colour: red"
    np.testing.assert_array_equal(labels["level_1"], prepared.labels[:, 0])
    np.testing.assert_array_equal(labels["level_2"], prepared.labels[:, 1])
    assert labels["level_2"][5] == -1 and weights["level_2"][5] == 0.0
    assert (weights["level_1"] > 0).all()
    boots = labels["level_2"][0]
    assert weights["level_2"][0] == pytest.approx(5 / (4 * (labels["level_2"] == boots).sum()))


def test_text_only_features_only_and_no_labels(prepared):
    from linnet.data import make_dataset

    features = next(iter(make_dataset(prepared, batch_size=8, with_labels=False)))
    assert set(features) == {"title", "attributes"}
    features, _labels, weights = next(iter(make_dataset(prepared, batch_size=8)))
    assert (weights["level_1"].numpy() == 1).all()


def test_file_deleted_after_preparation_gives_a_blank_image(prepared, small_catalog):
    from linnet.data import make_dataset

    (small_catalog.parent / "img" / "1.jpg").unlink()
    features, _, _ = _all(make_dataset(prepared, batch_size=6, image_size=16))
    assert features["image_present"].tolist() == [0, 1, 1, 0, 0, 1]


def test_shuffle_with_seed_is_repeatable_and_augmentation_keeps_blanks_blank(prepared):
    from linnet.data import make_dataset

    def ids(seed):
        return [t.decode() for t in _all(make_dataset(prepared, 2, shuffle=True, seed=seed))[0]["title"]]

    assert ids(3) == ids(3) and sorted(ids(3)) == sorted(prepared.texts["title"])
    augment = {"vertical_flip": True, "brightness": 0.5}
    augmented = _all(make_dataset(prepared, 6, image_size=16, augment=augment, seed=1))[0]
    assert not augmented["image"][4].any() and augmented["image"][0].any()
    assert augmented["image"].min() >= 0 and augmented["image"].max() <= 255


def test_tfrecord_round_trip(prepared, tmp_path):
    from linnet.data import make_dataset
    from linnet.data.tfrecord import read_metadata, read_tfrecords, write_tfrecords

    write_tfrecords(prepared, tmp_path / "records", examples_per_shard=2, progress=False)
    metadata = read_metadata(tmp_path / "records")
    train = prepared.subset("train")
    assert metadata["splits"]["train"]["examples"] == len(train)
    assert len(metadata["shards"]["train"]) == max(1, -(-len(train) // 2))
    from_records = _all(read_tfrecords(tmp_path / "records", "train", batch_size=4, image_size=16,
                                       class_weighting="balanced"))
    from_memory = _all(make_dataset(train, batch_size=4, image_size=16, class_weighting="balanced"))
    for got, expected in zip(from_records, from_memory):
        assert set(got) == set(expected)
        for key in expected:
            np.testing.assert_allclose(got[key], expected[key]) if got[key].dtype != object else \
                np.testing.assert_array_equal(got[key], expected[key])


def test_tfds_builder_round_trip_offline(prepared, tmp_path):
    import tensorflow_datasets as tfds

    from linnet.data.tfds_builder import build_tfds

    build_tfds(prepared, tmp_path / "tfds")
    loaded = list(tfds.load("linnet_catalog", data_dir=str(tmp_path / "tfds"), split="train",
                            download=False).as_numpy_iterator())
    train = prepared.subset("train")
    by_id = {example["id"].decode(): example for example in loaded}
    assert sorted(by_id) == sorted(train.ids)
    for row, product_id in enumerate(train.ids):
        example = by_id[product_id]
        assert example["title"].decode() == train.texts["title"][row]
        assert [example["level_1"], example["level_2"]] == train.labels[row].tolist()
        assert (len(example["image_bytes"]) > 0) == bool(len(train.image_sources[row]))
    from_directory = tfds.builder_from_directory(str(tmp_path / "tfds" / "linnet_catalog" / "1.0.0"))
    assert from_directory.info.splits["train"].num_examples == len(train)
    assert from_directory.info.metadata["text_fields"] == ["title", "attributes"]


def test_augmentation_config_builds_the_named_layers():
    from linnet.data.augment import AugmentConfig, build_augmenter
    from linnet.errors import ConfigError

    layers = [type(layer).__name__ for layer in build_augmenter(AugmentConfig(rand_augment=True, contrast=0)).layers]
    assert layers == ["RandomFlip", "RandomBrightness", "RandAugment"]
    images = tf.random.uniform([2, 16, 16, 3], 0, 255, seed=0)
    augmented = build_augmenter(AugmentConfig(rand_augment=True), seed=0)(images, training=True)
    assert augmented.shape == images.shape and float(tf.reduce_max(augmented)) <= 255.0
    with pytest.raises(ConfigError, match="flip"):
        AugmentConfig.from_value({"flip": True})


def test_tfrecords_stream_from_catalog_chunks(small_catalog, small_schema, prepared, tmp_path):
    from linnet.data.prepare import prepare_catalog_chunks
    from linnet.data.tfrecord import read_metadata, read_tfrecords, write_tfrecords

    write_tfrecords(prepare_catalog_chunks(small_catalog, small_schema, chunk_rows=2), tmp_path / "streamed",
                    examples_per_shard=2, progress=False)
    write_tfrecords(prepared, tmp_path / "whole", examples_per_shard=2, progress=False)
    streamed, whole = read_metadata(tmp_path / "streamed"), read_metadata(tmp_path / "whole")
    assert streamed["splits"] == whole["splits"] and streamed["shards"] == whole["shards"]
    for split in ("train", "validation", "test"):
        if not whole["splits"][split]["examples"]:
            continue
        ids = [b["id"] for b in read_tfrecords(tmp_path / "streamed", split, 8, with_labels=False,
                                               with_ids=True).as_numpy_iterator()]
        assert [i.decode() for i in np.concatenate(ids)] == list(prepared.subset(split).ids)
