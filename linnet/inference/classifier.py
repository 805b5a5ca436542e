"""`HierarchicalClassifier`: constrained top-down descent with confidence thresholds, in TF ops only.

The trained functional model gives one softmax per taxonomy level. The wrapper turns them into a path:

1. pick the best level-1 class;
2. at each next level, pick the best class among the children of the class chosen above (rows of the
   taxonomy's child masks); stop where the chosen node has no children (trees may be ragged);
   "best" depends on ``decoding``:

   - ``"path"``: the class heading the best whole path below it, the path's score being the sum
     of its levels' log *conditional* probabilities: a level's probability divided by the mass of the chosen
     parent's children at that level (its stop column included). The descent then ends on the path that
     maximises ``log p_1 + log p_2(. | parent) + ...``, so a confident leaf head can overrule an unsure level
     above it (two parents sharing a leaf name, say). Each head is a softmax over its whole level, so its
     raw probabilities already hold the mass of the levels above; multiplying them unconditioned counted
     the ancestors again at every level, and on products of shops the model never saw (every head unsure)
     paths ended 1.7 levels too shallow on average (docs/evaluation.md, "Conditional descent"). With stop classes (`linnet.model.stops`, the default) a path that
     ends at a node above the deepest level adds that node's "ends here" probability from the level below:
     a shallow leaf cannot win on having fewer terms, and an inner node that carries labels is a candidate,
     chosen when its stop column outweighs its children. (A model saved without stop classes ends paths at
     leaves only, a shallow leaf paying fewer terms.)
   - ``"greedy"`` (the default, `DEFAULT_DECODING`): the child with the highest probability at its own level; the path ends above a child
     whose probability given the class above (stop column included in the whole) is under
     `GREEDY_MIN_CHILD_PROBABILITY`, which is how it ends at an inner node: its stop column holds most of
     the mass, or its children split it so thinly that none is likely.

   The confidence of each level follows the decoding. ``"path"``: the posterior probability that the true
   path passes through the chosen class, ``p(path) = softmax(path scores)`` over every root-to-leaf path and
   summed over the paths through the class (a leaf whose parent head agrees is surer than one whose heads
   point to different branches). ``"greedy"``: the chosen class's probability at its own level.
3. expose the prefix of that path whose levels pass their thresholds. The threshold of a level is the
   largest of the level's own threshold and the overrides of the nodes on the path down to it (an
   override holds for its node and its whole subtree), exactly as `linnet.evaluation.calibration` fits them.

Thresholds live in non-trainable variables, so a calibration file sets them on a trained (or exported and
reloaded) model without retraining. Everything is vectorised over the batch; the same object serves
``model.predict``, ``tf.function`` and the SavedModel export.

Example:
    >>> import keras
    >>> from linnet.taxonomy import Taxonomy
    >>> taxonomy = Taxonomy.from_paths(["A > B", "A > C", "D"])
    >>> title = keras.Input(shape=(), dtype="string", name="title")
    >>> vector = keras.layers.Lambda(lambda t: keras.ops.ones((keras.ops.shape(t)[0], 4)))(title)
    >>> outputs = {"level_1": keras.layers.Dense(2, activation="softmax", name="level_1")(vector),
    ...            "level_2": keras.layers.Dense(2, activation="softmax", name="level_2")(vector),
    ...            "embedding": keras.layers.Identity(name="embedding")(vector)}
    >>> classifier = HierarchicalClassifier(keras.Model(title, outputs), taxonomy, top_k=2)
    >>> result = classifier({"title": keras.ops.convert_to_tensor(["a product"])})
    >>> sorted(result)[:4]
    ['class_ids', 'confidences', 'depth', 'embedding']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from linnet.errors import ConfigError
from linnet.inference.calibration_file import (
    DEFAULT_DECODING,
    check_decoding,
    load_calibration,
)
from linnet.model import names, output_sizes, stop_counts
from linnet.taxonomy import Taxonomy

PATH_SEPARATOR = " > "
OUTPUT_KEYS = ("class_ids", "node_ids", "names", "confidences", "depth", "path", "full_class_ids", "full_path",
               "top_k_node_ids", "top_k_scores", names.EMBEDDING)


# Where greedy decoding ends a path: below a node whose most probable child has less than this probability given
# the node (its stop column counted in the whole). Adding a node that is on the true path with probability q
# raises a catalog's micro hierarchical F1 when q > hF1 / 2; 0.2 is that point for the hard catalogs (hF1 about
# 0.4) and leaves the sure ones alone (docs/evaluation.md, "Conditional descent").
GREEDY_MIN_CHILD_PROBABILITY = 0.2


def check_level_thresholds(level_thresholds, num_levels: int) -> np.ndarray:
    """``level_thresholds`` as float32 ``[num_levels]`` (None -> zeros); `ConfigError` on a wrong count or value."""
    if level_thresholds is None:
        return np.zeros(num_levels, dtype=np.float32)
    try:
        values = np.asarray([float(value) for value in level_thresholds], dtype=np.float32)
    except (TypeError, ValueError):
        raise ConfigError(f"level_thresholds must be numbers, got {level_thresholds!r}") from None
    if values.shape != (num_levels,):
        raise ConfigError(f"{values.size} level thresholds for a taxonomy with {num_levels} levels")
    if not np.all(np.isfinite(values)):
        raise ConfigError(f"level_thresholds must be finite, got {values.tolist()}")
    return values


def node_threshold_arrays(node_thresholds: Mapping | None, taxonomy) -> list[np.ndarray]:
    """Per level, float32 ``[n_k]`` overrides (0 where a node has none); `ConfigError` for an unknown node."""
    arrays = [np.zeros(len(taxonomy.classes(level)), dtype=np.float32) for level in range(1, taxonomy.num_levels + 1)]
    for node_id, value in (node_thresholds or {}).items():
        if node_id not in taxonomy:
            raise ConfigError(f"node threshold for {node_id!r}: no such node in the taxonomy")
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"node threshold for {node_id!r} must be a number, got {value!r}") from None
        level, index = taxonomy.class_index(node_id)
        arrays[level - 1][index] = value
    return arrays


@keras.saving.register_keras_serializable(package="linnet")
class HierarchicalClassifier(keras.Model):
    """Wraps a trained per-level model with the constrained descent, thresholds and readable outputs.

    Args:
        model: functional model whose outputs are ``level_1`` … ``level_L`` (softmax ``[B, n_k]``) and
            ``embedding`` (``[B, D]``), with inputs keyed by feature name (`linnet.model.build_model`).
        taxonomy: the `linnet.taxonomy.Taxonomy` the model was trained on.
        level_thresholds: one confidence threshold per level (None: 0, expose the whole path).
        node_thresholds: ``{node id: threshold}`` overrides for a node and its descendants.
        top_k: number of leaf candidates returned (clipped to the number of leaves).
        path_separator: joins names in ``path`` and ``full_path``.
        decoding: ``"path"`` follows the path with the highest sum of level log conditional probabilities;
            ``"greedy"`` (the default) takes the most probable child at each level while one is likely enough
            (see the module docstring).

    Call returns a dict of tensors (``B`` products, ``L`` levels, ``k`` candidates):
    ``class_ids`` int32 ``[B, L]`` (``-1`` withheld or below a leaf), ``node_ids`` and ``names`` string
    ``[B, L]`` (``""`` withheld), ``confidences`` float32 ``[B, L]`` (of the full path's class at each level,
    also where withheld, 0 below a leaf: with ``"path"`` the whole-path posterior, the summed probability of
    every path through the class; with ``"greedy"`` the class's probability at its own level), ``depth``
    int32 ``[B]`` (exposed levels),
    ``path`` string ``[B]``, ``full_class_ids`` int32 ``[B, L]`` and ``full_path`` (descent without
    thresholds), ``top_k_node_ids`` string / ``top_k_scores`` float32 ``[B, k]`` (leaves ranked by the
    product of the conditional probabilities along their path), ``embedding`` float32 ``[B, D]``.

    Example:
        >>> classifier = HierarchicalClassifier(model, taxonomy, level_thresholds=[0.5, 0.7])  # doctest: +SKIP
        >>> classifier.set_thresholds([0.6, 0.8], {"Clothing": 0.9})  # doctest: +SKIP
        >>> classifier.predict({"title": np.array(["red shirt"], dtype=object)})["path"]  # doctest: +SKIP
    """

    def __init__(self, model, taxonomy, level_thresholds=None, node_thresholds=None, top_k: int = 5,
                 path_separator: str = PATH_SEPARATOR, decoding: str = DEFAULT_DECODING, **kwargs):
        super().__init__(**kwargs)
        if isinstance(taxonomy, Mapping):
            taxonomy = Taxonomy.from_json(taxonomy)
        if not isinstance(top_k, (int, np.integer)) or top_k < 1:
            raise ConfigError(f"top_k must be a positive integer, got {top_k!r}")
        self.decoding = check_decoding(decoding)
        self.model = model
        self.taxonomy = taxonomy
        self.top_k = int(top_k)
        self.path_separator = path_separator
        self.num_levels = taxonomy.num_levels
        missing = [name for name in [names.level_output(k) for k in range(1, self.num_levels + 1)] + [names.EMBEDDING]
                   if name not in _output_names(model)]
        if missing:
            raise ConfigError(f"model {model.name!r} lacks output(s) {missing}; expected level_1..level_"
                              f"{self.num_levels} and embedding for a {self.num_levels}-level taxonomy")

        # Plain NumPy here; call() turns them into graph constants (small: the tree's size, not the batch's).
        # The descent runs on the *augmented* tree of `linnet.model.stops`: with stop classes, every class of
        # level k-1 has one more child at level k, its stop column (index n_k + its own index), so every node
        # ends exactly one path. A model without stop columns (saved before them) has the plain tree.
        self._real_sizes = [len(taxonomy.classes(level)) for level in range(1, self.num_levels + 1)]
        self._stop_counts = _stop_layout(model, self._real_sizes)
        sizes = [real + stops for real, stops in zip(self._real_sizes, self._stop_counts)]
        self._child_masks, self._parent_index = [None], [None]
        for level in range(2, self.num_levels + 1):
            mask = np.zeros((sizes[level - 2], sizes[level - 1]), dtype=bool)
            above, here = self._real_sizes[level - 2], self._real_sizes[level - 1]
            mask[:above, :here] = taxonomy.child_mask(level)
            parents = taxonomy.parent_index(level).astype(np.int32)
            if self._stop_counts[level - 1]:
                mask[:above, here:] = np.eye(above, dtype=bool)
                parents = np.concatenate([parents, np.arange(above, dtype=np.int32)])
            self._child_masks.append(mask)
            self._parent_index.append(parents)
        self._has_children = [mask.any(axis=1) for mask in self._child_masks[1:]] + [np.zeros(sizes[-1], dtype=bool)]
        self._level_node_ids = [np.array(taxonomy.classes(level), dtype=object) for level in range(1, self.num_levels + 1)]
        self._level_names = [np.array([taxonomy.name(node) for node in ids], dtype=object) for ids in self._level_node_ids]
        # The node each column of a level stands for: its class, or for a stop column the node it ends at.
        self._column_node_ids = [ids if not stops else np.concatenate([ids, self._level_node_ids[level - 1]])
                                 for level, (ids, stops) in enumerate(zip(self._level_node_ids, self._stop_counts))]
        self._leaf_columns = [np.flatnonzero(~has).astype(np.int32) for has in self._has_children]
        self._leaf_count = int(sum(len(columns) for columns in self._leaf_columns))
        self._path_classes = self._leaf_paths()
        self._k = min(self.top_k, self._leaf_count)

        self._initial_level_thresholds = check_level_thresholds(level_thresholds, self.num_levels)
        self._initial_node_thresholds = dict(node_thresholds or {})
        initial_nodes = node_threshold_arrays(node_thresholds, taxonomy)
        self.level_threshold_variable = self.add_weight(
            shape=(self.num_levels,), initializer=keras.initializers.Constant(self._initial_level_thresholds),
            trainable=False, name="level_thresholds", dtype="float32")
        self.node_threshold_variables = [
            self.add_weight(shape=(len(values),), initializer=keras.initializers.Constant(values), trainable=False,
                            name=f"node_thresholds_level_{level}", dtype="float32")
            for level, values in enumerate(initial_nodes, start=1)]
        self.built = True  # the wrapped model is built and the thresholds exist: nothing depends on input shapes

    # ------------------------------------------------------------------ thresholds
    @property
    def level_thresholds(self) -> list[float]:
        return [float(value) for value in self.level_threshold_variable.numpy()]

    @property
    def node_thresholds(self) -> dict[str, float]:
        overrides = {}
        for ids, variable in zip(self._level_node_ids, self.node_threshold_variables):
            values = variable.numpy()
            overrides.update({str(ids[index]): float(values[index]) for index in np.flatnonzero(values)})
        return overrides

    def set_thresholds(self, level_thresholds=None, node_thresholds=None) -> None:
        """Assign new thresholds (no retracing: they are variables). None keeps levels / clears overrides."""
        if level_thresholds is not None:
            self.level_threshold_variable.assign(check_level_thresholds(level_thresholds, self.num_levels))
        for variable, values in zip(self.node_threshold_variables, node_threshold_arrays(node_thresholds, self.taxonomy)):
            variable.assign(values)

    def load_calibration(self, path) -> None:
        """Set thresholds from a calibration file (checked against this taxonomy's fingerprint and, when the
        file names one, this wrapper's decoding)."""
        self.set_thresholds(*load_calibration(path, self.taxonomy, decoding=self.decoding))

    # ------------------------------------------------------------------ graph
    def scores(self, inputs):
        """The model's raw per-level probabilities and embedding: ``{"level_k": [B, n_k], "embedding": [B, D]}``,
        plus ``"stop_k": [B, n_{k-1}]`` (the probability that the path ends at each class of level k-1) for
        each level with stop columns (`linnet.model.stops`)."""
        outputs = self.model(inputs, training=False)
        scores = {names.EMBEDDING: outputs[names.EMBEDDING]}
        for level in range(1, self.num_levels + 1):
            probabilities = outputs[names.level_output(level)]
            real = self._real_sizes[level - 1]
            scores[names.level_output(level)] = probabilities[:, :real] if self._stop_counts[level - 1] else probabilities
            if self._stop_counts[level - 1]:
                scores[stop_output(level)] = probabilities[:, real:]
        return scores

    def call(self, inputs, training=False):
        return self.classify(self.scores(inputs))

    def classify(self, scores):
        """Descent, thresholds and names from ``scores`` (the dict `scores` returns); TF ops only."""
        probabilities = []
        for level in range(1, self.num_levels + 1):
            level_probabilities = tf.convert_to_tensor(scores[names.level_output(level)], tf.float32)
            if self._stop_counts[level - 1]:
                if stop_output(level) not in scores:
                    raise ConfigError(f"scores lack {stop_output(level)!r}: this model has stop classes "
                                      "(take the scores from HierarchicalClassifier.scores)")
                level_probabilities = tf.concat(
                    [level_probabilities, tf.convert_to_tensor(scores[stop_output(level)], tf.float32)], axis=1)
            probabilities.append(level_probabilities)
        batch = tf.shape(probabilities[0])[0]
        conditionals = self._conditionals(probabilities)
        if self.decoding == "path":
            columns, path_scores = self._best_path(conditionals)
            confidences = self._path_posteriors(path_scores, columns)
        else:
            columns = self._greedy_path(conditionals)
            confidences = [tf.where(ids >= 0, tf.gather(level_probabilities, tf.maximum(ids, 0), batch_dims=1), 0.0)
                           for ids, level_probabilities in zip(columns, probabilities)]
        # A stop column ends the path at the level above: no class at its own level.
        chosen = [tf.where(ids < real, ids, -1) for ids, real in zip(columns, self._real_sizes)]
        confidences = [tf.where(ids >= 0, confidence, 0.0) for ids, confidence in zip(chosen, confidences)]
        full_class_ids = tf.stack(chosen, axis=1)
        confidence_matrix = tf.stack(confidences, axis=1)

        # Effective threshold: max(level threshold, overrides of the path's nodes down to this level).
        level_thresholds = tf.convert_to_tensor(self.level_threshold_variable, tf.float32)
        running_override = tf.zeros([batch], tf.float32)
        passes = []
        for level in range(1, self.num_levels + 1):
            ids = chosen[level - 1]
            override = tf.gather(tf.convert_to_tensor(self.node_threshold_variables[level - 1], tf.float32),
                                 tf.maximum(ids, 0))
            running_override = tf.maximum(running_override, tf.where(ids >= 0, override, 0.0))
            threshold = tf.maximum(level_thresholds[level - 1], running_override)
            passes.append(tf.logical_and(ids >= 0, confidences[level - 1] >= threshold))
        exposed = tf.cast(tf.math.cumprod(tf.cast(tf.stack(passes, axis=1), tf.int32), axis=1), tf.bool)
        class_ids = tf.where(exposed, full_class_ids, -1)

        full_node_ids = self._lookup(self._level_node_ids, full_class_ids)
        full_names = self._lookup(self._level_names, full_class_ids)
        top_k_node_ids, top_k_scores = self._top_k_leaves(conditionals)
        return {
            "class_ids": class_ids,
            "node_ids": tf.where(exposed, full_node_ids, ""),
            "names": tf.where(exposed, full_names, ""),
            "confidences": confidence_matrix,
            "depth": tf.reduce_sum(tf.cast(exposed, tf.int32), axis=1),
            "path": self._join(full_names, exposed),
            "full_class_ids": full_class_ids,
            "full_path": self._join(full_names, full_class_ids >= 0),
            "top_k_node_ids": top_k_node_ids,
            "top_k_scores": top_k_scores,
            names.EMBEDDING: tf.convert_to_tensor(scores[names.EMBEDDING]),
        }

    def _greedy_path(self, conditionals):
        """Per level, ``[B]`` int32 class ids: the most probable real child of the class above, while that child's
        probability given the class (``conditionals``: `_conditionals`, the class's stop column counted in the
        whole) is at least `GREEDY_MIN_CHILD_PROBABILITY`; -1 from where the path ends (at a leaf, or where no
        child is that sure)."""
        chosen, previous = [], None
        for level, given_parent in enumerate(conditionals, start=1):
            if previous is None:
                best = tf.argmax(given_parent, axis=1, output_type=tf.int32)
            else:
                allowed = tf.gather(tf.constant(self._child_masks[level - 1]), tf.maximum(previous, 0))
                real = tf.range(tf.shape(given_parent)[1]) < self._real_sizes[level - 1]
                real_children = tf.logical_and(allowed, real[None, :])
                best = tf.argmax(tf.where(real_children, given_parent, -1.0), axis=1, output_type=tf.int32)
                descend = tf.logical_and(tf.logical_and(previous >= 0, tf.reduce_any(real_children, axis=1)),
                                         tf.gather(given_parent, best, batch_dims=1) >= GREEDY_MIN_CHILD_PROBABILITY)
                best = tf.where(descend, best, -1)
            chosen.append(best)
            previous = best
        return chosen

    def _best_path(self, conditionals):
        """``(per level [B] int32 class ids of the most probable path, [B, n_leaves] every root-to-leaf path's
        log-probability)``.

        ``conditionals``: `_conditionals` of the levels' probabilities. A path's log-probability is the sum of its
        levels' log *conditional* probabilities:
        each level's head is a softmax over the whole level, so its raw probabilities already carry the mass
        of the levels above; summing their logs would count the ancestors again at every level and make every
        extra level cost a product the model is unsure of, whether or not it is deep. Every path's score is
        built top-down with one gather along the parent index per level (as `_top_k_leaves` builds its
        products); the best of the paths ending at a leaf (at any depth) is one argmax, and its classes are
        read from the constant table of each leaf's ancestors (-1 below its end).
        """
        path_scores = tf.math.log(tf.maximum(conditionals[0], 1e-12))
        ending = [tf.gather(path_scores, self._leaf_columns[0], axis=1)]
        for level in range(2, self.num_levels + 1):
            path_scores = (tf.gather(path_scores, tf.constant(self._parent_index[level - 1]), axis=1)
                           + tf.math.log(tf.maximum(conditionals[level - 1], 1e-12)))
            ending.append(tf.gather(path_scores, self._leaf_columns[level - 1], axis=1))
        scores = tf.concat(ending, axis=1)
        best = tf.argmax(scores, axis=1, output_type=tf.int32)
        classes = tf.gather(tf.constant(self._path_classes), best)  # [B, L]
        return tf.unstack(classes, num=self.num_levels, axis=1), scores

    def _conditionals(self, probabilities):
        """Per level, ``[B, n_k]``: each column's probability given its parent, its level probability divided by
        the mass of its parent's children at that level (stop column included); level 1 as it is. The product
        along a path is a probability over the whole paths of the (augmented) tree: it sums to 1 over them."""
        conditionals = [probabilities[0]]
        for level in range(2, self.num_levels + 1):
            parent_index = tf.constant(self._parent_index[level - 1])
            level_probabilities = probabilities[level - 1]
            parent_count = len(self._column_node_ids[level - 2])
            # Mass of each parent's children, per product: segment sum over the class axis.
            sibling_mass = tf.transpose(tf.math.unsorted_segment_sum(
                tf.transpose(level_probabilities), parent_index, parent_count))
            conditionals.append(tf.math.divide_no_nan(level_probabilities,
                                                      tf.gather(sibling_mass, parent_index, axis=1)))
        return conditionals

    def _path_posteriors(self, path_scores, chosen):
        """Per level, ``[B]`` float32: the probability that the true path passes through the chosen class, under
        the whole-path model ``p(path) = softmax over root-to-leaf paths of their scores`` (0 below a leaf).

        A class's probability at its own level ignores whether the levels above and below agree with it; the
        path posterior sums the probabilities of every path through it, so a leaf whose parent is also sure
        scores higher than one whose head and parent head point to different branches (how it ranks on the
        quality benchmark: docs/evaluation.md).
        """
        posterior = tf.nn.softmax(path_scores, axis=1)  # [B, n_leaves]
        path_classes = tf.constant(self._path_classes)
        confidences = []
        for level, ids in enumerate(chosen):
            through = tf.equal(path_classes[None, :, level], ids[:, None])  # [B, n_leaves]
            mass = tf.reduce_sum(tf.where(through, posterior, 0.0), axis=1)
            confidences.append(tf.where(ids >= 0, mass, 0.0))
        return confidences

    def _leaf_paths(self) -> np.ndarray:
        """``[n_leaves, L]`` class ids of each leaf's path (root first, -1 below it), in `_best_path`'s order."""
        rows = []
        for level in range(1, self.num_levels + 1):
            for column in self._leaf_columns[level - 1]:
                path = [-1] * self.num_levels
                for up in range(level, 0, -1):
                    path[up - 1] = int(column)
                    if up > 1:
                        column = self._parent_index[up - 1][column]
                rows.append(path)
        return np.array(rows, dtype=np.int32).reshape(-1, self.num_levels)

    def _lookup(self, tables: Sequence[np.ndarray], class_ids):
        """Per level, the string of each class id ("" for -1): a gather from an in-graph string table."""
        columns = []
        for level, table in enumerate(tables):
            padded = tf.constant(_utf8(np.append(table, "")))  # index n_k is the "" slot for -1
            ids = class_ids[:, level]
            columns.append(tf.gather(padded, tf.where(ids >= 0, ids, len(table))))
        return tf.stack(columns, axis=1)

    def _join(self, names, keep):
        return tf.strings.reduce_join(tf.ragged.boolean_mask(names, keep), axis=1, separator=self.path_separator)

    def _top_k_leaves(self, conditionals):
        """Leaves scored by the product of conditional probabilities (`_conditionals`) along their path (sums to 1
        over leaves)."""
        path_scores = conditionals[0]
        leaf_scores = [tf.gather(path_scores, self._leaf_columns[0], axis=1)]
        leaf_ids = [self._column_node_ids[0][self._leaf_columns[0]]]
        for level in range(2, self.num_levels + 1):
            path_scores = tf.gather(path_scores, tf.constant(self._parent_index[level - 1]), axis=1) * conditionals[level - 1]
            leaf_scores.append(tf.gather(path_scores, self._leaf_columns[level - 1], axis=1))
            leaf_ids.append(self._column_node_ids[level - 1][self._leaf_columns[level - 1]])
        all_scores = tf.concat(leaf_scores, axis=1)
        all_ids = tf.constant(_utf8(np.concatenate(leaf_ids)))  # a stop column names the node it ends at
        top_scores, top_indices = tf.math.top_k(all_scores, k=self._k)
        return tf.gather(all_ids, top_indices), top_scores

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict:
        config = super().get_config()
        config.update({
            "model": keras.saving.serialize_keras_object(self.model),
            "taxonomy": self.taxonomy.to_json(),
            "level_thresholds": self.level_thresholds,
            "node_thresholds": self.node_thresholds,
            "top_k": self.top_k,
            "path_separator": self.path_separator,
            "decoding": self.decoding,
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["model"] = keras.saving.deserialize_keras_object(config["model"])
        return cls(**config)


def stop_output(level: int) -> str:
    """Key of level ``level``'s stop probabilities in `HierarchicalClassifier.scores`."""
    return f"stop_{level}"


def _stop_layout(model, real_sizes: Sequence[int]) -> list[int]:
    """Stop columns per level of ``model``'s outputs: `linnet.model.stops`' layout when each level's output is
    ``n_k + n_{k-1}`` wide, none when it is ``n_k`` wide (a model saved before stop classes); `ConfigError`
    for any other width."""
    output = getattr(model, "output", None)
    if not isinstance(output, Mapping):
        return [0] * len(real_sizes)
    widths = [output[names.level_output(level)].shape[-1] for level in range(1, len(real_sizes) + 1)]
    if any(width is None for width in widths) or list(widths) == list(real_sizes):
        return [0] * len(real_sizes)
    if list(widths) == output_sizes(real_sizes, stop_classes=True):
        return stop_counts(real_sizes)
    raise ConfigError(f"model {model.name!r} has level outputs of widths {list(widths)}; the taxonomy has "
                      f"{list(real_sizes)} classes per level (with stop classes: "
                      f"{output_sizes(real_sizes, stop_classes=True)})")


def _utf8(strings: np.ndarray) -> np.ndarray:
    return np.array([text.encode("utf-8") for text in strings], dtype=object)


def _output_names(model) -> list[str]:
    output = getattr(model, "output", None)
    if isinstance(output, Mapping):
        return list(output)
    return list(getattr(model, "output_names", []) or [])
