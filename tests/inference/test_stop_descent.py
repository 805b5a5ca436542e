"""Stop-aware descent on a hand-built ragged tree: paths of every depth compete as proper probabilities.

The tree has a depth-1 leaf (``Bags``), a labelled inner node with children (``Clothing > Women``), a depth-2
leaf and depth-3 leaves. With stop classes (`linnet.model.stops`) a path ending at node ``v`` of depth
``d < L`` scores ``p_1 ... p_d * p_{d+1}(stop of v)``, each level's probability taken given the level above
(`HierarchicalClassifier._conditionals`); the reference below enumerates every node as an end.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from inference.tiny_models import build_tiny_model
from linnet.errors import ConfigError
from linnet.inference.classifier import (
    GREEDY_MIN_CHILD_PROBABILITY,
    HierarchicalClassifier,
    stop_output,
)
from linnet.taxonomy import Taxonomy


def as_text(array) -> np.ndarray:
    return np.vectorize(lambda cell: cell.decode() if isinstance(cell, bytes) else cell, otypes=[object])(np.asarray(array))


@pytest.fixture(scope="module")
def ragged():
    return Taxonomy.from_paths(["Bags", "Clothing > Women", "Clothing > Women > Dresses", "Clothing > Women > Skirts",
                                "Clothing > Men > Shirts", "Clothing > Men > Jeans", "Shoes > Boots"])


@pytest.fixture(scope="module")
def stop_model(ragged):
    return build_tiny_model(ragged, stop_classes=True)


@pytest.fixture(scope="module")
def plain_model(ragged):
    return build_tiny_model(ragged, stop_classes=False)


def scores(taxonomy, real: dict, stops: dict | None, rest: float = 1e-4) -> dict:
    """One product's scores: ``real`` {node: probability} per level, ``stops`` {node: probability of ending
    there} (None: a model without stop columns); everything else ``rest``."""
    result = {"embedding": np.zeros((1, 2), np.float32)}
    for level in range(1, taxonomy.num_levels + 1):
        row = np.full(len(taxonomy.classes(level)), rest, np.float32)
        for node in taxonomy.classes(level):
            row[taxonomy.class_index(node)[1]] = real.get(node, rest)
        result[f"level_{level}"] = row[None, :]
        if stops is not None and level > 1:
            above = taxonomy.classes(level - 1)
            result[stop_output(level)] = np.array([[stops.get(node, rest) for node in above]], np.float32)
    return result


def classify(classifier, batch) -> dict:
    return {key: np.asarray(value) for key, value in classifier.classify(batch).items()}


def test_a_depth_1_leaf_cannot_win_with_a_tiny_probability(ragged, stop_model, plain_model):
    # The model is sure of Clothing and Women, unsure which dress-like leaf. Multiplying the levels' raw
    # probabilities would count Clothing again in every deeper level's softmax: the one-term path "Bags" (0.05)
    # would beat 0.9 x 0.5 x 0.08 = 0.036. Taken given the level above, the deeper terms are 0.5 / 0.8 and
    # 0.08 / 0.15 (or 0.08 / 0.17 with Women's stop column), and Bags is far behind, with or without stop columns.
    real = {"Bags": 0.05, "Clothing": 0.9, "Shoes": 0.05, "Clothing > Women": 0.5, "Clothing > Men": 0.3,
            "Clothing > Women > Dresses": 0.08, "Clothing > Women > Skirts": 0.07, "Clothing > Men > Shirts": 0.06}
    assert 0.05 > 0.9 * 0.5 * 0.08, "the raw product's defect this test guards against"
    # A path ending at Bags must also pay "ends at Bags" from level 2, which a product placed in Clothing gives
    # little (0.01).
    stops = {"Bags": 0.01, "Shoes": 0.05, "Clothing > Women": 0.02}
    for model, stop_scores in ((plain_model, None), (stop_model, stops)):
        outputs = classify(HierarchicalClassifier(model, ragged, decoding="path"), scores(ragged, real, stop_scores))
        assert as_text(outputs["full_path"])[0].startswith("Clothing > "), stop_scores
        assert outputs["depth"][0] == 3
        # Clothing's paths hold its level-1 probability, 0.9 (equal in float32 arithmetic, not above it: a
        # strict "> 0.9" passed or failed with the machine's rounding).
        assert outputs["confidences"][0][0] == pytest.approx(0.9, abs=1e-6), "Clothing holds its paths' probability"


def test_an_inner_node_label_wins_when_its_children_are_unlikely(ragged, stop_model):
    real = {"Clothing": 0.9, "Bags": 0.05, "Shoes": 0.05, "Clothing > Women": 0.8, "Clothing > Men": 0.1,
            "Clothing > Women > Dresses": 0.05, "Clothing > Women > Skirts": 0.04}
    stops = {"Clothing > Women": 0.8, "Bags": 0.02}
    for decoding in ("path", "greedy"):
        outputs = classify(HierarchicalClassifier(stop_model, ragged, decoding=decoding), scores(ragged, real, stops))
        assert as_text(outputs["full_path"])[0] == "Clothing > Women", decoding
        assert outputs["full_class_ids"][0].tolist() == [ragged.class_index("Clothing")[1],
                                                         ragged.class_index("Clothing > Women")[1], -1]
        assert outputs["confidences"][0][2] == 0.0
    # A confident child takes it back.
    real["Clothing > Women > Dresses"] = 0.9
    stops["Clothing > Women"] = 0.05
    outputs = classify(HierarchicalClassifier(stop_model, ragged), scores(ragged, real, stops))
    assert as_text(outputs["full_path"])[0] == "Clothing > Women > Dresses"
    assert "Clothing > Women" in as_text(outputs["top_k_node_ids"])[0].tolist(), "the inner node is a top-k candidate"


def reference(taxonomy, batch, row):
    """Every node as a path end: ``{node: (path, score)}``, the score summing log conditional probabilities (a
    column's probability over its parent's children's at that level, the parent's stop column included), with
    the stop term for nodes above the deepest level."""
    num_levels = taxonomy.num_levels

    def real(level, node):
        return float(batch[f"level_{level}"][row][taxonomy.class_index(node)[1]])

    def stop(level, node):  # "ends at node", read from level `level` (node is of level - 1)
        return float(batch[stop_output(level)][row][taxonomy.class_index(node)[1]])

    def mass(level, parent):  # the parent's children at `level`, its stop column included
        total = sum(real(level, child) for child in taxonomy.children(parent))
        return total + (stop(level, parent) if parent is not None and level > 1 else 0.0)

    ends = {}
    for level in range(1, num_levels + 1):
        for node in taxonomy.classes(level):
            parts = node.split(" > ")  # a tree inferred from paths names each node by its full path
            path = [" > ".join(parts[:depth]) for depth in range(1, level + 1)]
            score = sum(math.log(max(real(depth, step) / mass(depth, path[depth - 2] if depth > 1 else None), 1e-12))
                        for depth, step in enumerate(path, start=1))
            if level < num_levels:
                score += math.log(max(stop(level + 1, node) / mass(level + 1, node), 1e-12))
            ends[node] = (path, score)
    return ends


def test_descent_matches_a_reference_over_every_node_as_an_end(ragged, stop_model):
    rng = np.random.default_rng(3)
    sizes = ragged.level_sizes()
    count = 200
    batch = {"embedding": np.zeros((count, 2), np.float32)}
    for level, size in enumerate(sizes, start=1):
        width = size + (sizes[level - 2] if level > 1 else 0)
        full = rng.dirichlet(np.full(width, 0.4), size=count).astype(np.float32)
        batch[f"level_{level}"] = full[:, :size]
        if level > 1:
            batch[stop_output(level)] = full[:, size:]
    outputs = classify(HierarchicalClassifier(stop_model, ragged, decoding="path"), batch)
    depths_seen = set()
    for row in range(count):
        ends = reference(ragged, batch, row)
        best = max(ends, key=lambda node: ends[node][1])
        assert as_text(outputs["full_path"])[row] == ragged.path_string(best)
        path = ends[best][0]
        depths_seen.add(len(path))
        total = sum(math.exp(score) for _, score in ends.values())
        expected = [sum(math.exp(score) for other, score in ends.values() if len(other) > depth and other[depth] == node)
                    / total for depth, node in enumerate(path)]
        np.testing.assert_allclose(outputs["confidences"][row][:len(path)], expected, rtol=1e-4)
    assert depths_seen == {1, 2, 3}, "random scores should end paths at every depth"
    # The top-k candidates are distinct nodes, inner ones included, ranked by a distribution over ends.
    top = as_text(outputs["top_k_node_ids"])
    assert all(len(set(row)) == len(row) for row in top)
    assert float(outputs["top_k_scores"].sum(axis=1).max()) <= 1.0 + 1e-5


def test_a_model_of_another_width_is_refused(ragged):
    wrong = Taxonomy.from_paths(["Bags", "Clothing > Women", "Clothing > Men > Shirts", "Clothing > Men > Ties"])
    with pytest.raises(ConfigError, match="widths"):
        HierarchicalClassifier(build_tiny_model(wrong, stop_classes=True), ragged)


def test_greedy_descends_to_a_likely_child_and_ends_where_none_is(ragged, stop_model):
    # Women's stop column holds 0.6 of the mass below it, Dresses 0.3 (given Women): the most probable path ends at
    # Women, but Dresses is on the true path often enough (0.3 >= GREEDY_MIN_CHILD_PROBABILITY) that naming it
    # raises the expected hierarchical F1, so greedy goes on.
    real = {"Clothing": 0.9, "Bags": 0.05, "Shoes": 0.05, "Clothing > Women": 0.8, "Clothing > Men": 0.1,
            "Clothing > Women > Dresses": 0.3, "Clothing > Women > Skirts": 0.1}
    stops = {"Clothing > Women": 0.6}
    paths = {decoding: as_text(classify(HierarchicalClassifier(stop_model, ragged, decoding=decoding),
                                        scores(ragged, real, stops))["full_path"])[0] for decoding in ("path", "greedy")}
    assert paths == {"path": "Clothing > Women", "greedy": "Clothing > Women > Dresses"}
    # No child is likely (Dresses 0.1 / 0.88 < 0.2): greedy ends at Women, with nothing below it.
    real.update({"Clothing > Women > Dresses": 0.1, "Clothing > Women > Skirts": 0.08})
    stops["Clothing > Women"] = 0.7
    outputs = classify(HierarchicalClassifier(stop_model, ragged, decoding="greedy"), scores(ragged, real, stops))
    assert as_text(outputs["full_path"])[0] == "Clothing > Women"
    assert outputs["full_class_ids"][0][2] == -1 and outputs["confidences"][0][2] == 0.0
    assert GREEDY_MIN_CHILD_PROBABILITY == 0.2, "the cases above sit on either side of 0.2"
