"""Set the wide path to a converged linear SVM before the deep heads train (``model.wide.init: linear_svm``).

The wide path (`linnet.model.layers.HashedLinear`, one table per level) is a linear model over the
featurizer's hashed n-grams. Trained jointly with the deep heads by SGD it stops short of the linear
solution a LinearSVC reaches on the very same features (measurements: docs/training.md, "The wide path's
SVM start"). With ``init: linear_svm`` each level's table is set, before training, to the one-vs-rest
LinearSVC (scikit-learn, squared hinge, L2, C = ``wide.svm_c``, no intercept: the table has none) fitted on
the training split's featurized, L2-normalised n-grams, its margins scaled by ``wide.svm_temperature`` into
logits, and the table is frozen: the deep heads learn on top of it.

Cost: one one-vs-rest LinearSVC per level, its binary problems spread over ``wide.svm_jobs`` cores, before
the first epoch. The time grows with labelled products x classes (`svm_work`), so the default
``init: auto`` runs it only within ``wide.svm_max_work`` (`resolve_init`); above that the tables start at
zero and train with the heads.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from scipy import sparse

from linnet.errors import ConfigError
from linnet.model import names
from linnet.progress import progress_bar

FEATURIZE_BATCH = 2048
# Margin (before the temperature) of every class the training split never shows: a one-vs-rest SVM pushes the
# margins of the wrong classes to -1 and below, so an unseen class left at 0 would win every product whose
# right class is not sure of itself.
UNSEEN_CLASS_MARGIN = -2.0
#: One-vs-rest work (labelled products x classes seen, `svm_work`'s unit) under which a level's binary problems
#: are solved in this process even when ``n_jobs`` asks for more: joblib's worker processes cost about 2 s of
#: CPU each to start (they import scikit-learn), more than such a solve (~25 us per unit on one core). On the
#: tour's 45 products the workers were 3.9 s of the 4.5 s SVM start.
PARALLEL_MIN_WORK = 200_000


def featurized_matrix(featurizer, texts: dict, num_buckets: int, progress: bool = False):
    """The CSR matrix ``[N, num_buckets]`` a `HashedLinear` of ``num_buckets`` rows reads for ``texts``.

    Ids fold modulo ``num_buckets`` and each row's weights are divided by their L2 norm, as in
    `HashedLinear.call`; a bucket listed twice in a row (two ids folded together) is summed.
    """

    fields = list(featurizer.text_fields)
    missing = [field for field in fields if field not in texts]
    if missing:
        raise ConfigError(f"wide.init linear_svm: the training texts have no field(s) {missing} the featurizer reads")
    count = len(texts[fields[0]])
    rows, columns, values = [], [], []
    for start in progress_bar(range(0, count, FEATURIZE_BATCH), desc="wide path: featurize", unit="batch", enabled=progress):
        batch = {field: tf.constant(np.asarray(texts[field][start:start + FEATURIZE_BATCH]).astype(str))
                 for field in fields}
        ids, weights = featurizer(batch)
        ids, weights = ids.numpy() % num_buckets, weights.numpy().astype(np.float64)
        weights = np.where(weights > 0, weights, 0.0)
        norms = np.sqrt(np.square(weights).sum(axis=1, keepdims=True))
        weights = weights / np.maximum(norms, 1e-12)
        row, position = np.nonzero(weights > 0)
        rows.append(row + start)
        columns.append(ids[row, position])
        values.append(weights[row, position])
    matrix = sparse.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(columns))), shape=(count, num_buckets)
    )
    matrix.sum_duplicates()
    return matrix


def svm_table(features, targets: np.ndarray, num_classes: int, C: float, temperature: float, seed: int = 0,
              n_jobs: int | None = None):
    """``[buckets, num_classes]`` table: the one-vs-rest LinearSVC margins per class times ``temperature``.

    Rows with a target < 0 (no label at this level) are left out. With two classes seen, the single margin is
    split +/- half over them (the same softmax as two one-vs-rest margins). A class never seen gets
    ``UNSEEN_CLASS_MARGIN * temperature`` in every row: the rows the wide path reads are non-negative with unit
    L2 norm, so its logit is at most that (the L1 norm is at least 1), below the wrong classes' margins
    (left at 0, such a column would take the argmax from every product whose right class has a negative
    margin).
    ``n_jobs`` (None or 1: one core; -1: all) solves the one-vs-rest problems in parallel (the same problems in
    this process under `PARALLEL_MIN_WORK`).
    """
    from sklearn.svm import LinearSVC  # lazy: slow to import, used by this solve only

    table = np.zeros((features.shape[1], num_classes), np.float32)
    labelled = targets >= 0
    seen = np.unique(targets[labelled])
    if len(seen) < 2:
        return table
    table[:] = UNSEEN_CLASS_MARGIN * temperature
    svm = LinearSVC(C=C, fit_intercept=False, random_state=seed)
    if len(seen) > 2 and n_jobs not in (None, 1):
        from sklearn.multiclass import OneVsRestClassifier  # lazy: as LinearSVC above

        # liblinear solves the one-vs-rest problems one after the other on one core; the same problems in
        # parallel, each from the same seed (the margins match the sequential fit's).
        jobs = n_jobs if int(labelled.sum()) * len(seen) >= PARALLEL_MIN_WORK else None
        svm = OneVsRestClassifier(svm, n_jobs=jobs).fit(features[labelled], targets[labelled])
        coefficients = np.vstack([estimator.coef_ for estimator in svm.estimators_]) * temperature
    else:
        svm = svm.fit(features[labelled], targets[labelled])
        coefficients = svm.coef_ * temperature
    if len(svm.classes_) == 2:
        table[:, svm.classes_[1]] = coefficients[0] / 2
        table[:, svm.classes_[0]] = -coefficients[0] / 2
    else:
        table[:, svm.classes_] = coefficients.T
    return table


def svm_work(labels: np.ndarray) -> int:
    """The size of the one-vs-rest solves for ``labels`` (``int [N, L]``, ``-1`` = none): summed over levels
    with two classes or more, labelled products x classes seen. liblinear's time grows with it (about
    25 us per unit on one core with the fashion titles' ~100 n-grams per product)."""
    labels = np.asarray(labels)
    work = 0
    for column in labels.T:
        labelled = column[column >= 0]
        classes = len(np.unique(labelled))
        if classes >= 2:
            work += labelled.size * classes
    return int(work)


def resolve_init(init: str, labels: np.ndarray, max_work: int) -> tuple[str, str]:
    """``(init to run, why)``: ``auto`` is ``linear_svm`` when `svm_work` is at most ``max_work``, else
    ``zeros``; ``zeros`` and ``linear_svm`` are themselves."""
    if init != "auto":
        return init, f"wide.init: {init}"
    work = svm_work(labels)
    if work <= max_work:
        return "linear_svm", f"wide.init auto: SVM work {work:,} <= wide.svm_max_work {max_work:,}"
    return "zeros", (f"wide.init auto: SVM work {work:,} (labelled products x classes, summed over levels) > "
                     f"wide.svm_max_work {max_work:,}; the wide path starts at zero and trains with the heads")


def _wide_layers(trained, num_levels: int):
    """``(level, layer)`` for each level of ``trained`` that has a ``wide_level_k`` table (1-based)."""
    for level in range(1, num_levels + 1):
        try:
            yield level, trained.get_layer(names.wide_level(level))
        except ValueError:
            continue


def freeze_wide_tables(trained, num_levels: int) -> list[int]:
    """Freeze ``trained``'s ``wide_level_k`` tables as they are (a resumed run restores the SVM's from its
    backup); returns the levels frozen (1-based)."""
    levels = []
    for level, layer in _wide_layers(trained, num_levels):
        layer.trainable = False
        levels.append(level)
    return levels


def init_wide_from_linear_svm(trained, featurizer, texts: dict, labels: np.ndarray, C: float = 1.0,
                              temperature: float = 5.0, logit_scale: float = 1.0, seed: int = 0,
                              n_jobs: int | None = None, progress: bool = False) -> list[int]:
    """Set every level's wide table of ``trained`` to a LinearSVC fitted on ``texts``/``labels``; freeze it.

    Args:
        trained: the Keras model that will be fitted (its ``wide_level_k`` layers are set and frozen).
        featurizer: the n-gram featurizer feeding the wide path (with its IDF already adapted).
        texts: ``{field: array of strings}`` of the training split.
        labels: ``int [N, L]`` class index per level, ``-1`` where a product has no label at that level.
        C, temperature, seed: the LinearSVC's inverse L2 strength; margin-to-logit scale; liblinear's seed.
        n_jobs: cores for the one-vs-rest solves (None or 1: one; -1: all).
        logit_scale: what the model multiplies the wide tables' output by (``wide.learning_rate_multiplier``);
            the tables are divided by it so the logits are the SVM's.
        progress: show progress.

    Returns:
        The levels set (1-based).
    """
    levels = []
    matrices = {}
    for level, layer in _wide_layers(trained, labels.shape[1]):
        if layer.input_dim not in matrices:
            matrices[layer.input_dim] = featurized_matrix(featurizer, texts, layer.input_dim, progress=progress)
        if progress:
            print(f"wide path: LinearSVC for level {level} ({layer.units} classes, {labels.shape[0]:,} products)",
                  flush=True)
        table = svm_table(matrices[layer.input_dim], labels[:, level - 1], layer.units, C, temperature, seed, n_jobs)
        layer.kernel.assign(table / logit_scale)
        layer.trainable = False
        levels.append(level)
    if not levels:
        raise ConfigError("model.wide.init 'linear_svm' needs a wide path (model.wide.enabled with an n-gram featurizer)")
    return levels
