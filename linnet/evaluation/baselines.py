"""Baselines a user would try first, scored on the same split and metrics as LinNét.

- :class:`TfidfLinearBaseline`: TF-IDF over word 1-2-grams and character 2-5-grams (``char_wb``, sublinear
  term frequency) with one flat :class:`~sklearn.svm.LinearSVC` over full paths (the deepest node of each
  label is the class, so every path of the tree is one class).
- :class:`HiclassBaseline`: the same features with ``hiclass``'s local classifier per parent node
  (a logistic regression at every inner node).

Both follow scikit-learn conventions (``fit(X, y)``, ``predict(X)``, fitted state ends in ``_``) on
``X`` = one text per product and ``y`` = a node-id matrix ``[N, L]`` (or full path strings), and both
offer :meth:`predict_levels`, which returns the same dict as the model path of :mod:`linnet.evaluation.evaluate`
(``full_node_ids``, ``confidences``, ``level_scores``, ``level_classes``), so reports compare side by side.

Example:
    >>> from linnet.evaluation.baselines import TfidfLinearBaseline
    >>> texts = ["red cotton shirt", "blue denim shirt", "leather boots", "rubber boots"] * 3
    >>> paths = ["Apparel > Shirts", "Apparel > Shirts", "Footwear > Boots", "Footwear > Boots"] * 3
    >>> baseline = TfidfLinearBaseline(temperature=10.0).fit(texts, paths)
    >>> baseline.predict(["green shirt"]).tolist()
    [['Apparel', 'Apparel > Shirts']]
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion
from sklearn.svm import LinearSVC
from sklearn.utils.validation import check_is_fitted

from linnet.evaluation import metrics

BASELINE_KINDS = ("tfidf", "hiclass")


def product_texts(texts: dict, fields=None) -> np.ndarray:
    """One string per product: the text fields (``{field: [N] str}``) joined with ``" | "``.

    Example:
        >>> product_texts({"title": ["Red shirt"], "attributes": ["colour: red"]}).tolist()
        ['Red shirt | colour: red']
    """
    fields = list(fields or texts)
    if not fields:
        raise ValueError("no text field to build baseline features from")
    joined = np.asarray(texts[fields[0]], dtype=object).astype(str)
    for name in fields[1:]:
        joined = np.char.add(np.char.add(joined.astype(str), " | "), np.asarray(texts[name], dtype=object).astype(str))
    return np.asarray(joined, dtype=object)


def tfidf_features(word_ngram_range=(1, 2), char_ngram_range=(2, 5), sublinear_tf=True, min_df=1, max_features=None):
    """The shared feature extractor: word and ``char_wb`` TF-IDF side by side (a sparse ``FeatureUnion``)."""
    common = {"sublinear_tf": sublinear_tf, "min_df": min_df, "max_features": max_features, "dtype": np.float32,
              "lowercase": True}
    return FeatureUnion([
        ("word", TfidfVectorizer(analyzer="word", ngram_range=tuple(word_ngram_range), **common)),
        ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=tuple(char_ngram_range), **common)),
    ])


def _label_matrix(y) -> np.ndarray:
    """Accept full path strings or a node-id matrix; return the node-id matrix (object dtype, ``""`` = none)."""
    array = np.asarray(y, dtype=object)
    if array.ndim == 1:
        return metrics.paths_to_matrix(array)
    matrix = metrics.as_label_matrix(array).astype(object)
    matrix[metrics.missing_mask(matrix)] = ""
    return matrix


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted


class TfidfLinearBaseline(ClassifierMixin, BaseEstimator):
    """TF-IDF (word + char_wb n-grams, sublinear tf) and a flat LinearSVC over full paths.

    A LinearSVC has margins, not probabilities: the confidence of a leaf is ``softmax(temperature * margin)``,
    and the confidence of a level is the summed probability of the leaves under the predicted node of that
    level. With ``temperature=None`` it is fitted on a held-out tenth of the training rows (the negative
    log-likelihood over a grid), then the classifier is refitted on every row.

    Args:
        word_ngram_range: word n-gram range.
        char_ngram_range: character n-gram range (``char_wb``).
        sublinear_tf: ``1 + log(tf)`` term frequency.
        min_df: minimum document frequency of a feature.
        C: inverse L2 strength of the LinearSVC.
        temperature: margin scale of the confidences, or None to fit it.
        random_state: seed of the held-out split.
        n_jobs: fit the one-vs-rest binary SVMs in parallel on this many cores (-1: all; None or 1: LinearSVC's
            own one-vs-rest, one core). The model is the same: LinearSVC is one-vs-rest too.

    Attributes:
        classes_: the deepest node id of every path seen in training (one class per path).
        class_paths_: ``[n_classes, L]`` node-id matrix of those paths.
        temperature_: the margin scale in use.
    """

    def __init__(self, word_ngram_range=(1, 2), char_ngram_range=(2, 5), sublinear_tf=True, min_df=1, C=1.0,
                 temperature=None, random_state=0, n_jobs=None):
        self.word_ngram_range = word_ngram_range
        self.char_ngram_range = char_ngram_range
        self.sublinear_tf = sublinear_tf
        self.min_df = min_df
        self.C = C
        self.temperature = temperature
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _new_pipeline(self):
        classifier = LinearSVC(C=self.C)
        if self.n_jobs not in (None, 1):
            # liblinear fits the classes one after the other on one core; the same binary problems in parallel.
            classifier = OneVsRestClassifier(classifier, n_jobs=self.n_jobs)
        return tfidf_features(self.word_ngram_range, self.char_ngram_range, self.sublinear_tf, self.min_df), classifier

    def fit(self, X, y):
        """Fit on texts ``X`` ``[N]`` and labels ``y`` (node-id matrix ``[N, L]`` or full path strings)."""
        texts = np.asarray(X, dtype=object)
        labels = _label_matrix(y)
        if texts.shape[0] != labels.shape[0]:
            raise ValueError(f"{texts.shape[0]} texts for {labels.shape[0]} labels")
        keep = ~metrics.missing_mask(labels[:, 0])
        texts, labels = texts[keep], labels[keep]
        leaf = metrics.deepest_nodes(labels)
        self.classes_, first = np.unique(leaf.astype(str), return_index=True)
        self.class_paths_ = labels[first]
        targets = np.searchsorted(self.classes_, leaf.astype(str))
        if len(self.classes_) < 2:
            raise ValueError("a baseline needs at least two distinct paths to learn from")
        self.temperature_ = self.temperature if self.temperature is not None else self._fit_temperature(texts, targets)
        self.vectorizer_, self.classifier_ = self._new_pipeline()
        self.classifier_.fit(self.vectorizer_.fit_transform(texts), targets)
        self._build_level_maps()
        return self

    def _fit_temperature(self, texts, targets) -> float:
        rng = np.random.default_rng(self.random_state)
        held_out = rng.uniform(size=texts.shape[0]) < 0.1
        if held_out.sum() < 20 or len(np.unique(targets[~held_out])) < 2:
            return 10.0
        vectorizer, classifier = self._new_pipeline()
        classifier.fit(vectorizer.fit_transform(texts[~held_out]), targets[~held_out])
        margins = classifier.decision_function(vectorizer.transform(texts[held_out]))
        column = np.searchsorted(classifier.classes_, targets[held_out])
        known = (column < len(classifier.classes_)) & (classifier.classes_[np.minimum(column, len(classifier.classes_) - 1)]
                                                        == targets[held_out])
        grid = np.logspace(-0.5, 2.5, 31)
        losses = [-np.log(np.maximum(_softmax(scale * margins)[known, column[known]], 1e-12)).mean() for scale in grid]
        return float(grid[int(np.argmin(losses))])

    def _build_level_maps(self) -> None:
        # One sparse 0/1 matrix per level maps leaf probabilities to the probability of each level's node.
        self.level_classes_, self.level_maps_, self.class_level_index_ = [], [], []
        for column in range(self.class_paths_.shape[1]):
            cells = self.class_paths_[:, column].astype(str)
            nodes = np.unique(cells[cells != ""])
            position = np.searchsorted(nodes, cells)
            present = cells != ""
            rows = np.nonzero(present)[0]
            self.level_maps_.append(sparse.csr_matrix((np.ones(rows.size), (rows, position[present])),
                                                      shape=(len(cells), len(nodes))))
            self.level_classes_.append(nodes.tolist())
            self.class_level_index_.append(np.where(present, position, -1))

    def predict_proba(self, X) -> np.ndarray:
        """Leaf probabilities ``[N, n_classes]`` (softmax of scaled margins)."""
        check_is_fitted(self, "classifier_")
        margins = self.classifier_.decision_function(self.vectorizer_.transform(np.asarray(X, dtype=object)))
        if margins.ndim == 1:  # two classes: LinearSVC returns one margin
            margins = np.stack([-margins, margins], axis=1)
        return _softmax(self.temperature_ * margins)

    def predict_levels(self, X) -> dict:
        """The evaluation dict: ``full_node_ids`` ``[N, L]``, ``confidences`` ``[N, L]``, ``level_scores``,
        ``level_classes``."""
        probabilities = self.predict_proba(X)
        best = probabilities.argmax(axis=1)
        full = self.class_paths_[best]
        confidences = np.zeros(full.shape)
        level_scores = []
        for column, level_map in enumerate(self.level_maps_):
            scores = np.asarray(level_map.T.dot(probabilities.T).T)
            index = self.class_level_index_[column][best]
            confidences[:, column] = np.where(index >= 0, scores[np.arange(len(best)), np.maximum(index, 0)], 0.0)
            level_scores.append(scores)
        return {"full_node_ids": full, "confidences": confidences, "level_scores": level_scores,
                "level_classes": self.level_classes_}

    def predict(self, X) -> np.ndarray:
        """The node-id matrix ``[N, L]`` of the most likely path of each text."""
        check_is_fitted(self, "classifier_")
        margins = self.classifier_.decision_function(self.vectorizer_.transform(np.asarray(X, dtype=object)))
        best = (margins > 0).astype(int) if margins.ndim == 1 else margins.argmax(axis=1)
        return self.class_paths_[best]


class HiclassBaseline(ClassifierMixin, BaseEstimator):
    """TF-IDF features and ``hiclass.LocalClassifierPerParentNode`` with a logistic regression per inner node.

    The confidence of a level is the product of the local probabilities down to it (hiclass's
    ``multiply`` combiner).

    Args:
        word_ngram_range, char_ngram_range, sublinear_tf, min_df: as :class:`TfidfLinearBaseline`.
        C: inverse L2 strength of each local logistic regression.
        max_iter: solver iterations of each local classifier.
        n_jobs: parallel local classifiers.

    Attributes:
        hierarchical_classifier_: the fitted ``LocalClassifierPerParentNode``.
    """

    def __init__(self, word_ngram_range=(1, 2), char_ngram_range=(2, 5), sublinear_tf=True, min_df=1, C=10.0,
                 max_iter=300, n_jobs=1):
        self.word_ngram_range = word_ngram_range
        self.char_ngram_range = char_ngram_range
        self.sublinear_tf = sublinear_tf
        self.min_df = min_df
        self.C = C
        self.max_iter = max_iter
        self.n_jobs = n_jobs

    def fit(self, X, y):
        """Fit on texts ``X`` ``[N]`` and labels ``y`` (node-id matrix ``[N, L]`` or full path strings)."""
        try:
            # lazy: hiclass is optional (the dev extra) and only this baseline needs it
            from hiclass import LocalClassifierPerParentNode
        except ImportError as error:  # an optional dependency: say how to get it
            raise ImportError("the hiclass baseline needs the 'hiclass' package: pip install hiclass") from error

        texts = np.asarray(X, dtype=object)
        labels = _label_matrix(y)
        keep = ~metrics.missing_mask(labels[:, 0])
        self.vectorizer_ = tfidf_features(self.word_ngram_range, self.char_ngram_range, self.sublinear_tf, self.min_df)
        features = self.vectorizer_.fit_transform(texts[keep])
        self.hierarchical_classifier_ = LocalClassifierPerParentNode(
            local_classifier=LogisticRegression(C=self.C, max_iter=self.max_iter),
            n_jobs=self.n_jobs, return_all_probabilities=True, probability_combiner="multiply")
        self.hierarchical_classifier_.fit(features, labels[keep].astype(str))
        self.num_levels_ = labels.shape[1]
        return self

    def predict(self, X) -> np.ndarray:
        """The node-id matrix ``[N, L]`` of the predicted path of each text (``""`` below a shallow path)."""
        check_is_fitted(self, "hierarchical_classifier_")
        predicted = self.hierarchical_classifier_.predict(self.vectorizer_.transform(np.asarray(X, dtype=object)))
        return self._pad(np.asarray(predicted, dtype=object))

    def _pad(self, predicted: np.ndarray) -> np.ndarray:
        predicted = metrics.as_label_matrix(predicted).astype(object)
        if predicted.shape[1] < self.num_levels_:
            predicted = np.hstack([predicted, np.full((predicted.shape[0], self.num_levels_ - predicted.shape[1]), "",
                                                      dtype=object)])
        predicted[metrics.missing_mask(predicted)] = ""
        return predicted

    def predict_levels(self, X) -> dict:
        """The evaluation dict, like :meth:`TfidfLinearBaseline.predict_levels`."""
        check_is_fitted(self, "hierarchical_classifier_")
        features = self.vectorizer_.transform(np.asarray(X, dtype=object))
        full = self._pad(np.asarray(self.hierarchical_classifier_.predict(features), dtype=object))
        probabilities = self.hierarchical_classifier_.predict_proba(features)
        confidences = np.zeros(full.shape)
        level_scores, level_classes = [], []
        for column, (scores, classes) in enumerate(zip(probabilities, self.hierarchical_classifier_.classes_)):
            classes = [str(node) for node in classes]
            position = metrics.index_of(classes, full[:, column])
            found = position >= 0
            confidences[found, column] = scores[np.nonzero(found)[0], position[found]]
            real = np.array([node != "" for node in classes])  # hiclass keeps a "" class for shallow paths
            level_scores.append(np.asarray(scores)[:, real])
            level_classes.append([node for node in classes if node != ""])
        return {"full_node_ids": full, "confidences": confidences, "level_scores": level_scores,
                "level_classes": level_classes}


def make_baseline(kind: str, **params):
    """A baseline by name: ``"tfidf"`` or ``"hiclass"``."""
    if kind == "tfidf":
        return TfidfLinearBaseline(**params)
    if kind == "hiclass":
        return HiclassBaseline(**params)
    raise ValueError(f"unknown baseline kind {kind!r}; choose from {list(BASELINE_KINDS)}")
