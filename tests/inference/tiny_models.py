"""Tiny functional models with the model room's output contract, shared by the inference and export tests.

Inputs are keyed by feature name (``tf.string [B]`` per text field, ``image``/``image_present`` with an
image size); outputs are ``level_1`` … ``level_L`` softmax and an L2-normalised ``embedding``, each head fed
the previous level's probabilities, as `linnet.model.build_model` does.
"""

from __future__ import annotations

import math

import numpy as np


def build_tiny_model(taxonomy, text_fields=("title",), image_size: int | None = None, width: int = 16, seed: int = 0,
                     stop_classes: bool = False):
    """With ``stop_classes`` each level ``k >= 2`` has the stop columns of `linnet.model.stops` after its classes."""
    import keras

    from linnet.model import output_sizes

    widths = output_sizes(taxonomy.level_sizes(), stop_classes)

    keras.utils.set_random_seed(seed)
    inputs = {field: keras.Input(shape=(), dtype="string", name=field) for field in text_fields}
    branches = [keras.layers.Embedding(97, width, name=f"{field}_embedding")(
        keras.layers.Hashing(97, name=f"{field}_hashing")(inputs[field])) for field in text_fields]
    if image_size:
        inputs["image"] = keras.Input(shape=(image_size, image_size, 3), dtype="float32", name="image")
        inputs["image_present"] = keras.Input(shape=(), dtype="float32", name="image_present")
        pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255.0)(inputs["image"]))
        image_vector = keras.layers.Dense(width, activation="relu")(pooled)
        present = keras.layers.Reshape((1,))(inputs["image_present"])
        branches.append(keras.layers.Multiply()([image_vector, present]))
    joined = branches[0] if len(branches) == 1 else keras.layers.Concatenate()(branches)
    fused = keras.layers.Dense(width, activation="relu", name="fusion")(joined)
    outputs = {"embedding": keras.layers.UnitNormalization(name="embedding")(fused)}
    previous = None
    for level in range(1, taxonomy.num_levels + 1):
        hidden = fused if previous is None else keras.layers.Concatenate()([fused, previous])
        # Large random logits so probabilities are far from uniform and the descent is not decided by ties.
        logits = keras.layers.Dense(widths[level - 1], kernel_initializer=keras.initializers.RandomNormal(
            stddev=2.0), name=f"head_{level}_logits")(hidden)
        previous = keras.layers.Activation("softmax", name=f"level_{level}")(logits)
        outputs[f"level_{level}"] = previous
    return keras.Model(inputs, outputs, name="tiny")


def random_titles(count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    words = ["red", "shirt", "boots", "leather", "bag", "jeans", "blue", "sandal", "cotton", "tee", "lamp"]
    return np.array([" ".join(rng.choice(words, size=3)) for _ in range(count)], dtype=object)


def random_level_probabilities(taxonomy, count: int, seed: int = 0) -> dict:
    """Dirichlet probabilities per level, sharp enough that argmax ties do not happen."""
    rng = np.random.default_rng(seed)
    return {f"level_{level}": rng.dirichlet(np.full(len(taxonomy.classes(level)), 0.3), size=count).astype(np.float32)
            for level in range(1, taxonomy.num_levels + 1)}


def _root_to_leaf_paths(taxonomy, node=None, prefix=()) -> list[tuple]:
    children = taxonomy.children(node)
    if not children:
        return [prefix]
    return [path for child in children for path in _root_to_leaf_paths(taxonomy, child, prefix + (child,))]


def reference_descent(taxonomy, probabilities: dict, level_thresholds, node_thresholds=None, decoding="path"):
    """Plain-Python descent, row by row: ``(full node ids [N][L], confidences [N][L], exposed depth [N])``.

    ``decoding="path"`` enumerates every root-to-leaf path and keeps the one with the largest sum of log
    *conditional* probabilities (a node's probability divided by the summed probabilities of its parent's
    children at its level); a level's confidence is the share of ``exp(score)`` summed over all paths held by
    the paths through the chosen node. ``"greedy"`` takes the most probable child level by level while
    its probability given the node is at least ``GREEDY_MIN_CHILD_PROBABILITY``; a level's confidence is the
    node's own probability.
    """
    from linnet.inference.classifier import (
        GREEDY_MIN_CHILD_PROBABILITY,  # lazy: the module imports TensorFlow
    )

    node_thresholds = node_thresholds or {}
    count = len(next(iter(probabilities.values())))
    all_paths = _root_to_leaf_paths(taxonomy)

    def probability(row, level, node):
        return float(probabilities[f"level_{level}"][row][taxonomy.class_index(node)[1]])

    def conditional(row, level, node, parent):
        siblings = sum(probability(row, level, sibling) for sibling in taxonomy.children(parent))
        return probability(row, level, node) / siblings if siblings > 0 else 0.0

    full, confidences, depths = [], [], []
    for row in range(count):
        if decoding == "path":
            scores = [sum(math.log(max(conditional(row, level, node, path[level - 2] if level > 1 else None), 1e-12))
                          for level, node in enumerate(path, start=1)) for path in all_paths]
            best = max(range(len(all_paths)), key=lambda index: scores[index])
            path = list(all_paths[best])
            weights = [math.exp(score - scores[best]) for score in scores]
            confidence_row = [sum(weight for weight, other in zip(weights, all_paths)
                                  if len(other) > level and other[level] == node) / sum(weights)
                              for level, node in enumerate(path)]
        else:
            node, path = None, []
            for level in range(1, taxonomy.num_levels + 1):
                candidates = taxonomy.children(node)
                if not candidates:
                    break
                best = max(candidates, key=lambda candidate: probability(row, level, candidate))
                if probability(row, level, best) < GREEDY_MIN_CHILD_PROBABILITY * sum(
                        probability(row, level, candidate) for candidate in candidates):
                    break  # no child is likely enough given the node (these tiny models have no stop columns)
                node = best
                path.append(node)
            confidence_row = [probability(row, level, node) for level, node in enumerate(path, 1)]
        depth, override = 0, 0.0
        for level, (node, confidence) in enumerate(zip(path, confidence_row), start=1):
            override = max(override, node_thresholds.get(node, 0.0))
            if confidence < max(level_thresholds[level - 1], override):
                break
            depth = level
        padding = taxonomy.num_levels - len(path)
        full.append(path + [""] * padding)
        confidences.append(confidence_row + [0.0] * padding)
        depths.append(depth)
    return full, np.array(confidences), np.array(depths)
