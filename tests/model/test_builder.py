"""The functional model: inputs, chained heads, wide path, outputs, serialisation, a short fit."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from linnet.errors import ConfigError  # noqa: E402
from linnet.model import ModelConfig, build_model  # noqa: E402
from linnet.model.builder import classifier_outputs_model  # noqa: E402


def test_outputs_are_per_level_softmax_and_a_unit_embedding(tiny_model, tiny_taxonomy):
    from linnet.model import output_sizes

    outputs = tiny_model({"title": tf.constant(["red shirt", "hiking boots"])})
    assert sorted(outputs) == ["embedding", "level_1", "level_2", "level_3"]
    # Level k >= 2 has a stop column per class of level k-1 after its own classes (linnet.model.stops).
    sizes = tiny_taxonomy.level_sizes()
    widths = [sizes[0], sizes[1] + sizes[0], sizes[2] + sizes[1]]
    assert output_sizes(sizes, stop_classes=True) == widths
    for level in (1, 2, 3):
        probabilities = outputs[f"level_{level}"].numpy()
        assert probabilities.shape == (2, widths[level - 1])
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(outputs["embedding"].numpy(), axis=1), 1.0, rtol=1e-5)
    assert [tensor.name for tensor in tiny_model.inputs] == ["title"]


def test_each_head_reads_the_previous_levels_output(tiny_model, tiny_config, tiny_taxonomy):
    for level in (2, 3):
        head_input = tiny_model.get_layer(f"head_{level}_input")
        width = tiny_config.fusion_dim + tiny_model.output[f"level_{level - 1}"].shape[-1]
        assert head_input.output.shape[-1] == width
        assert f"level_{level - 1}" in {node.operation.name for node in head_input._inbound_nodes[0].parent_nodes}
    assert tiny_model.get_layer("wide_level_3").kernel.shape == (1024, len(tiny_taxonomy.classes(3))
                                                                  + len(tiny_taxonomy.classes(2)))


def test_logits_chaining_and_no_wide_path(tiny_taxonomy):
    config = ModelConfig.from_dict({
        "text_encoder": {"name": "hashed_ngrams", "num_bins": 512, "embedding_dim": 8},
        "fusion_dim": 8, "head_hidden_units": [], "chain_outputs": "logits", "wide": {"enabled": False},
        "embedding_dim": 4,
    })
    model = build_model(config, tiny_taxonomy, ["title", "attributes"])
    assert not any(layer.name.startswith("wide_") for layer in model.layers)
    assert model.get_layer("head_2_input").input[1].name == model.get_layer("level_1_logits").output.name \
        if any(layer.name == "level_1_logits" for layer in model.layers) else True
    outputs = model({"title": tf.constant(["jeans"]), "attributes": tf.constant(["colour: blue"])})
    assert outputs["embedding"].shape == (1, 4)


def test_keras_file_round_trip_in_safe_mode(tiny_model, tmp_path):
    path = tmp_path / "model.keras"
    tiny_model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    features = {"title": tf.constant(["slim blue jeans", "rain boots"])}
    expected, actual = tiny_model(features), loaded(features)
    for name in expected:
        np.testing.assert_allclose(actual[name].numpy(), expected[name].numpy(), rtol=1e-5, atol=1e-6)
    clone = keras.Model.from_config(tiny_model.get_config())
    assert [layer.name for layer in clone.layers] == [layer.name for layer in tiny_model.layers]


def _compiled_copy(config, taxonomy, learning_rate=0.05):
    from linnet.encoders import LazyAdamW
    from linnet.model import MaskedSparseCategoricalCrossentropy, fixed_level_weights

    model = classifier_outputs_model(build_model(config, taxonomy, ["title"]))
    weights = fixed_level_weights(taxonomy.num_levels)
    model.compile(
        optimizer=LazyAdamW(learning_rate=learning_rate),
        loss={f"level_{k}": MaskedSparseCategoricalCrossentropy(float(weights[k - 1])) for k in (1, 2, 3)},
    )
    return model


def _dataset(titles, labels):
    targets = {f"level_{k}": labels[:, k - 1] for k in (1, 2, 3)}
    weights = {key: (value >= 0).astype("float32") for key, value in targets.items()}
    return tf.data.Dataset.from_tensor_slices(({"title": titles}, targets, weights)).batch(15)


def test_a_few_steps_reduce_the_loss_and_runs_are_seeded(tiny_config, tiny_taxonomy, tiny_examples):
    titles, labels = tiny_examples
    losses = []
    for _ in range(2):
        keras.utils.set_random_seed(7)
        model = _compiled_copy(tiny_config, tiny_taxonomy)
        history = model.fit(_dataset(titles, labels), epochs=4, verbose=0)
        losses.append(history.history["loss"])
    assert losses[0][-1] < 0.5 * losses[0][0]
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)
    # Products with no label below level 1 ("Shoes") must not be pushed towards any level-2 class.
    assert (labels[:, 1] == -1).any()


def test_image_model_gates_missing_images(tiny_taxonomy):
    config = ModelConfig.from_dict({
        "text_encoder": None,
        "image_encoder": {"name": "mobilenet_v2", "weights": None, "alpha": 0.35, "trainable": False},
        "fusion_dim": 8, "head_hidden_units": [8], "wide": {"enabled": False},
    })
    model = build_model(config, tiny_taxonomy, [], image_size=32)
    assert sorted(tensor.name for tensor in model.inputs) == ["image", "image_present"]
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    gated = keras.Model(model.inputs, model.get_layer("image_gate").output)
    vectors = gated({"image": images, "image_present": np.array([1.0, 0.0], "float32")}).numpy()
    assert np.abs(vectors[0]).sum() > 0 and np.abs(vectors[1]).sum() == 0
    with pytest.raises(ConfigError, match="image_size"):
        build_model(config, tiny_taxonomy, [], image_size=None)


def test_unknown_encoder_name_fails_at_build(tiny_taxonomy):
    with pytest.raises(ConfigError, match="no_such_encoder"):
        build_model(ModelConfig(text_encoder={"name": "no_such_encoder"}), tiny_taxonomy, ["title"])


def test_full_google_taxonomy_builds_with_ngrams(google_taxonomy_file):
    from linnet.model import wide_bucket_count
    from linnet.taxonomy import load_taxonomy

    taxonomy = load_taxonomy(google_taxonomy_file)
    assert taxonomy.num_levels == 7 and len(taxonomy) == 5595
    model = build_model(ModelConfig(), taxonomy, ["title", "description", "attributes"])
    parameters = model.count_params()
    print(f"Google taxonomy (5,595 nodes, 7 levels), default config: {parameters:,} parameters")
    from linnet.model import output_sizes

    assert sum(taxonomy.level_sizes()) == 5595
    sizes = output_sizes(taxonomy.level_sizes(), stop_classes=True)  # + a stop column per node above level 7
    for level, size in enumerate(sizes, start=1):
        assert model.output[f"level_{level}"].shape[-1] == size
    buckets = wide_bucket_count(ModelConfig(), sizes)
    assert model.get_layer("wide_level_7").kernel.shape == (buckets, sizes[-1])
    assert buckets * sum(sizes) <= ModelConfig().wide.max_parameters
    assert buckets * sum(sizes) < parameters
    assert 30_000_000 < parameters < 60_000_000


def test_layers_carry_the_names_other_rooms_find_them_by(tiny_model, tiny_taxonomy):
    from linnet.model import names

    layer_names = {layer.name for layer in tiny_model.layers}
    expected = {names.FEATURIZER, names.JOINED, names.FUSION, names.EMBEDDING}
    for level in (1, 2, 3):
        expected |= {names.level_output(level), names.wide_level(level), names.wide_scale(level),
                     names.level_logits(level), names.head_layer(level, "logits"), names.head_layer(level, "hidden_1")}
    expected |= {names.head_layer(2, "input"), names.head_layer(3, "input")}
    assert expected <= layer_names
    assert sorted(tiny_model.output) == sorted([names.EMBEDDING, *(names.level_output(k) for k in (1, 2, 3))])
    assert (names.FEATURIZER, names.wide_scale(2), names.level_logits(2), names.cosine_output(3)) == (
        "featurizer", "wide_level_2_scale", "level_2_logits", "level_3_cosine")
