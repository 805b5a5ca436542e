"""HierarchicalClassifier: descent against a plain-Python reference, valid paths, thresholds, outputs."""

from __future__ import annotations

import numpy as np
import pytest

from inference.tiny_models import (
    build_tiny_model,
    random_level_probabilities,
    random_titles,
    reference_descent,
)
from linnet.errors import ConfigError
from linnet.inference.classifier import OUTPUT_KEYS, HierarchicalClassifier


def as_text(array) -> np.ndarray:
    return np.vectorize(lambda cell: cell.decode() if isinstance(cell, bytes) else cell, otypes=[object])(np.asarray(array))


def classify(classifier, probabilities) -> dict:
    return {key: np.asarray(value) for key, value in classifier.classify(
        {**probabilities, "embedding": np.zeros((len(probabilities["level_1"]), 2), np.float32)}).items()}


def assert_valid_paths(taxonomy, outputs) -> None:
    node_ids, names = as_text(outputs["node_ids"]), as_text(outputs["names"])
    full_ids = as_text(outputs["full_class_ids"])
    for row in range(len(node_ids)):
        depth = int(outputs["depth"][row])
        exposed = [node for node in node_ids[row] if node]
        assert len(exposed) == depth and list(node_ids[row][:depth]) == exposed
        parent = None
        for node in exposed:
            assert node in taxonomy.children(parent)
            parent = node
        full = [int(class_id) for class_id in full_ids[row] if int(class_id) >= 0]
        full_nodes = [taxonomy.classes(level)[index] for level, index in enumerate(full, start=1)]
        assert full_nodes[:depth] == exposed
        assert taxonomy.is_leaf(full_nodes[-1]), "the full descent stops only at a leaf"
        assert as_text(outputs["path"])[row] == (taxonomy.path_string(exposed[-1]) if exposed else "")
        assert as_text(outputs["full_path"])[row] == taxonomy.path_string(full_nodes[-1])
        assert list(names[row][:depth]) == [taxonomy.name(node) for node in exposed]


@pytest.mark.parametrize("decoding", ["path", "greedy"])
def test_descent_matches_python_reference(tiny_taxonomy, tiny_model, decoding):
    probabilities = random_level_probabilities(tiny_taxonomy, 300, seed=1)
    thresholds = [0.3, 0.4, 0.2]
    overrides = {"Shoes": 0.6, "Clothing > Tops": 0.5}
    outputs = classify(HierarchicalClassifier(tiny_model, tiny_taxonomy, thresholds, overrides, decoding=decoding),
                       probabilities)
    full, confidences, depths = reference_descent(tiny_taxonomy, probabilities, thresholds, overrides, decoding)
    assert as_text(outputs["node_ids"]).tolist() == [
        [node if level < depth else "" for level, node in enumerate(row)] for row, depth in zip(full, depths)]
    np.testing.assert_allclose(outputs["confidences"], confidences, rtol=1e-6)
    np.testing.assert_array_equal(outputs["depth"], depths)
    assert 0 < depths.mean() < 3, "thresholds should withhold some levels and keep others"


def level_row(taxonomy, level, weights, rest=0.0):
    """``[1, n_level]`` probabilities: ``weights`` by node id, ``rest`` everywhere else."""
    row = np.full(len(taxonomy.classes(level)), rest, np.float32)
    for node, value in weights.items():
        row[taxonomy.class_index(node)[1]] = value
    return row[None, :]


def test_path_decoding_lets_a_sure_leaf_overrule_an_unsure_parent(tiny_taxonomy, tiny_model):
    def one_hot_ish(level, weights):
        return level_row(tiny_taxonomy, level, weights, rest=1e-4)

    # Level 2 leans to Tops (0.55 vs 0.45), but the leaf head is sure of Jeans, under Trousers.
    probabilities = {"level_1": one_hot_ish(1, {"Clothing": 0.9, "Shoes": 0.05, "Bags": 0.05}),
                     "level_2": one_hot_ish(2, {"Clothing > Tops": 0.55, "Clothing > Trousers": 0.45}),
                     "level_3": one_hot_ish(3, {"Clothing > Trousers > Jeans": 0.9, "Clothing > Tops > Shirts": 0.05,
                                                "Clothing > Tops > T-Shirts": 0.05})}
    paths = {decoding: as_text(classify(HierarchicalClassifier(tiny_model, tiny_taxonomy, decoding=decoding),
                                        probabilities)["full_path"])[0] for decoding in ("path", "greedy")}
    assert paths == {"path": "Clothing > Trousers > Jeans", "greedy": "Clothing > Tops > Shirts"}

    # Ragged: Bags ends at level 1 (0.4998) and beats every path under Clothing, which share Clothing's 0.5
    # (each level taken given the level above: Jeans is 0.5 x 0.4998 / 0.9998 x 1).
    probabilities["level_1"] = one_hot_ish(1, {"Clothing": 0.5, "Bags": 0.5 - 2e-4})
    probabilities["level_2"] = one_hot_ish(2, {"Clothing > Tops": 0.5, "Clothing > Trousers": 0.5 - 2e-4})
    outputs = classify(HierarchicalClassifier(tiny_model, tiny_taxonomy, decoding="path"), probabilities)
    assert as_text(outputs["full_path"])[0] == "Bags"
    # Bags' share of all paths' probability: Bags 0.4998 against Clothing's paths (0.5 in all) and Shoes' (1e-4).
    np.testing.assert_allclose(outputs["confidences"][0], [(0.5 - 2e-4) / (0.5 - 2e-4 + 0.5 + 1e-4), 0.0, 0.0],
                               rtol=1e-4)


def test_path_confidences_are_whole_path_posteriors(tiny_taxonomy, tiny_model):
    def level(number, weights):
        return level_row(tiny_taxonomy, number, weights)

    probabilities = {"level_1": level(1, {"Clothing": 0.8, "Shoes": 0.1, "Bags": 0.1}),
                     "level_2": level(2, {"Clothing > Tops": 0.6, "Clothing > Trousers": 0.4}),
                     "level_3": level(3, {"Clothing > Tops > T-Shirts": 0.5, "Clothing > Tops > Shirts": 0.2,
                                          "Clothing > Trousers > Jeans": 0.3})}
    # Each level given the one above: T-Shirts 0.8 x 0.6 x 0.5 / 0.7 = 0.343, Shirts 0.137, Jeans 0.8 x 0.4 x 1
    # = 0.32, Bags 0.1; Shoes' children have no probability, so its paths none: 0.9 in all.
    outputs = {decoding: classify(HierarchicalClassifier(tiny_model, tiny_taxonomy, decoding=decoding), probabilities)
               for decoding in ("path", "greedy")}
    for decoding in ("path", "greedy"):
        assert as_text(outputs[decoding]["full_path"])[0] == "Clothing > Tops > T-Shirts"
    t_shirts = 0.8 * 0.6 * 0.5 / 0.7
    np.testing.assert_allclose(outputs["path"]["confidences"][0], [0.8 / 0.9, 0.48 / 0.9, t_shirts / 0.9], rtol=1e-5)
    np.testing.assert_allclose(outputs["greedy"]["confidences"][0], [0.8, 0.6, 0.5], rtol=1e-6)


def test_thresholds_match_the_calibration_rooms_numpy_rule(tiny_taxonomy, tiny_model):
    from linnet.evaluation.calibration import apply_thresholds

    probabilities = random_level_probabilities(tiny_taxonomy, 200, seed=2)
    thresholds, overrides = [0.2, 0.5, 0.3], {"Clothing": 0.45, "Shoes > Boots": 0.9}
    outputs = classify(HierarchicalClassifier(tiny_model, tiny_taxonomy, thresholds, overrides), probabilities)
    full = np.array([[tiny_taxonomy.classes(level + 1)[index] if index >= 0 else "" for level, index in enumerate(row)]
                     for row in outputs["full_class_ids"]], dtype=object)
    expected = apply_thresholds(full, outputs["confidences"], thresholds, overrides)
    assert as_text(outputs["node_ids"]).tolist() == expected.tolist()


def test_model_outputs_are_valid_paths_with_readable_outputs(tiny_taxonomy, tiny_model):
    import tensorflow as tf

    classifier = HierarchicalClassifier(tiny_model, tiny_taxonomy, [0.4, 0.4, 0.4], top_k=50)
    outputs = {key: value.numpy() for key, value in classifier({"title": tf.constant(random_titles(64))}).items()}
    assert set(outputs) == set(OUTPUT_KEYS)
    assert outputs["class_ids"].dtype == np.int32 and outputs["class_ids"].shape == (64, 3)
    assert_valid_paths(tiny_taxonomy, outputs)
    # top-k: leaves only, best first, a distribution over the leaves (k clipped to the 6 leaves)
    assert outputs["top_k_node_ids"].shape == (64, 6)
    assert set(as_text(outputs["top_k_node_ids"]).ravel()) <= set(tiny_taxonomy.leaves())
    assert np.all(np.diff(outputs["top_k_scores"], axis=1) <= 1e-7)
    np.testing.assert_allclose(outputs["top_k_scores"].sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(outputs["embedding"], axis=1), 1.0, rtol=1e-5)


def test_raising_a_threshold_never_deepens(tiny_taxonomy, tiny_model):
    probabilities = random_level_probabilities(tiny_taxonomy, 300, seed=3)
    classifier = HierarchicalClassifier(tiny_model, tiny_taxonomy)
    rng = np.random.default_rng(0)
    for _ in range(5):
        low = rng.uniform(0, 0.6, size=3)
        classifier.set_thresholds(low)
        before = classify(classifier, probabilities)
        classifier.set_thresholds(low + rng.uniform(0, 0.4, size=3))
        after = classify(classifier, probabilities)
        assert np.all(after["depth"] <= before["depth"])
        assert np.any(after["depth"] < before["depth"])
        kept = as_text(after["node_ids"]) != ""
        assert np.all(as_text(after["node_ids"])[kept] == as_text(before["node_ids"])[kept])


def test_node_override_covers_its_subtree(tiny_taxonomy, tiny_model):
    probabilities = random_level_probabilities(tiny_taxonomy, 400, seed=4)
    classifier = HierarchicalClassifier(tiny_model, tiny_taxonomy)
    free = classify(classifier, probabilities)
    through_clothing = as_text(free["node_ids"])[:, 0] == "Clothing"
    through_tops = as_text(free["node_ids"])[:, 1] == "Clothing > Tops"
    assert through_clothing.any() and through_tops.any() and (~through_clothing).any()

    classifier.set_thresholds([0, 0, 0], {"Clothing": 1.0 + 1e-6})
    blocked = classify(classifier, probabilities)
    assert np.all(blocked["depth"][through_clothing] == 0)
    np.testing.assert_array_equal(blocked["depth"][~through_clothing], free["depth"][~through_clothing])

    # An override below the root: Tops and its children demand 0.99, Clothing itself does not.
    classifier.set_thresholds([0, 0, 0], {"Clothing > Tops": 0.99})
    tops = classify(classifier, probabilities)
    confidences = free["confidences"][through_tops]
    expected = np.where(confidences[:, 1] < 0.99, 1, np.where(confidences[:, 2] < 0.99, 2, 3))
    np.testing.assert_array_equal(tops["depth"][through_tops], expected)
    assert classifier.node_thresholds == {"Clothing > Tops": pytest.approx(0.99)}


def test_google_taxonomy_with_random_weights(google_taxonomy):
    import tensorflow as tf

    model = build_tiny_model(google_taxonomy, width=8, seed=5)
    classifier = HierarchicalClassifier(model, google_taxonomy, [0.0] * google_taxonomy.num_levels, top_k=10,
                                        decoding="path")
    outputs = {key: value.numpy() for key, value in classifier({"title": tf.constant(random_titles(48, seed=1))}).items()}
    assert outputs["class_ids"].shape == (48, google_taxonomy.num_levels)
    assert_valid_paths(google_taxonomy, outputs)
    assert set(as_text(outputs["top_k_node_ids"]).ravel()) <= set(google_taxonomy.leaves())

    probabilities = random_level_probabilities(google_taxonomy, 40, seed=6)
    thresholds = [0.0005] * google_taxonomy.num_levels
    classifier.set_thresholds(thresholds)
    random_outputs = classify(classifier, probabilities)
    full, confidences, depths = reference_descent(google_taxonomy, probabilities, thresholds)
    np.testing.assert_allclose(random_outputs["confidences"], confidences, rtol=1e-6)
    np.testing.assert_array_equal(random_outputs["depth"], depths)
    assert [[google_taxonomy.classes(level)[index] if index >= 0 else "" for level, index in enumerate(row, start=1)]
            for row in random_outputs["full_class_ids"]] == full
    assert_valid_paths(google_taxonomy, random_outputs)


def test_bad_arguments_are_clear(tiny_taxonomy, tiny_model):
    with pytest.raises(ConfigError, match="3 levels"):
        HierarchicalClassifier(tiny_model, tiny_taxonomy, level_thresholds=[0.5])
    with pytest.raises(ConfigError, match="no such node"):
        HierarchicalClassifier(tiny_model, tiny_taxonomy, node_thresholds={"Hats": 0.5})
    with pytest.raises(ConfigError, match="top_k"):
        HierarchicalClassifier(tiny_model, tiny_taxonomy, top_k=0)
    with pytest.raises(ConfigError, match="decoding must be one of path, greedy, got 'beam'"):
        HierarchicalClassifier(tiny_model, tiny_taxonomy, decoding="beam")


def test_predict_config_round_trip_and_calibration_file(tiny_taxonomy, tiny_model, tmp_path):
    import keras

    from linnet.inference.calibration_file import load_calibration, save_calibration

    classifier = HierarchicalClassifier(tiny_model, tiny_taxonomy, [0.1, 0.2, 0.3], {"Shoes": 0.7}, top_k=3,
                                        decoding="greedy")
    titles = random_titles(40, seed=7)
    predicted = classifier.predict({"title": titles}, batch_size=16, verbose=0)
    direct = classifier({"title": keras.ops.convert_to_tensor(titles)})
    np.testing.assert_array_equal(predicted["class_ids"], np.asarray(direct["class_ids"]))
    assert as_text(predicted["path"]).tolist() == as_text(direct["path"]).tolist()

    path = tmp_path / "model.keras"
    classifier.save(path)
    restored = keras.saving.load_model(path)
    assert restored.level_thresholds == pytest.approx([0.1, 0.2, 0.3])
    assert restored.node_thresholds == {"Shoes": pytest.approx(0.7)}
    assert restored.decoding == "greedy"
    np.testing.assert_allclose(restored.predict({"title": titles}, verbose=0)["confidences"],
                               predicted["confidences"], rtol=1e-6)

    calibration = save_calibration(tmp_path / "calibration.json", [0.9, 0.9, 0.9], {"Clothing": 0.95}, tiny_taxonomy)
    assert load_calibration(calibration, tiny_taxonomy) == ([0.9, 0.9, 0.9], {"Clothing": 0.95})
    restored.load_calibration(calibration)
    assert restored.level_thresholds == pytest.approx([0.9] * 3)
    assert np.all(restored.predict({"title": titles}, verbose=0)["depth"] <= predicted["depth"])
