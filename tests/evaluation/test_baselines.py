"""Both baselines on a tiny catalog: scikit-learn conventions and the shared prediction format."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from linnet.evaluation import metrics
from linnet.evaluation.baselines import (
    HiclassBaseline,
    TfidfLinearBaseline,
    make_baseline,
    product_texts,
)

from .conftest import make_catalog_frame


@pytest.fixture(scope="module")
def split_frame():
    frame = make_catalog_frame()
    texts = product_texts({"title": frame["title"].to_numpy(), "attributes": ("colour: " + frame["colour"]).to_numpy()})
    labels = metrics.paths_to_matrix(frame["path"], num_levels=2)
    test = np.arange(len(frame)) % 4 == 0
    return texts, labels, test


@pytest.mark.parametrize("kind", ["tfidf", "hiclass"])
def test_baseline_learns_and_returns_the_shared_format(kind, split_frame):
    texts, labels, test = split_frame
    params = {"temperature": 5.0} if kind == "tfidf" else {}
    baseline = make_baseline(kind, **params)
    assert clone(baseline).get_params() == baseline.get_params()  # estimator conventions
    baseline.fit(texts[~test], labels[~test])
    output = baseline.predict_levels(texts[test])
    full, confidences = output["full_node_ids"], output["confidences"]
    assert full.shape == confidences.shape == (test.sum(), 2)
    assert np.all((confidences > 0) & (confidences <= 1 + 1e-9))
    assert np.all(confidences[:, 1] <= confidences[:, 0] + 1e-6)  # a level is never surer than its parent
    assert metrics.hierarchical_precision_recall_f1(labels[test], full)["f1"] > 0.85
    assert (baseline.predict(texts[test]) == full).all()
    for scores, classes in zip(output["level_scores"], output["level_classes"]):
        assert scores.shape == (test.sum(), len(classes))
        assert np.allclose(scores.sum(axis=1), 1.0, atol=1e-6)
    assert metrics.top_k_accuracy(labels[test, 1], output["level_scores"][1], 5,
                                  classes=output["level_classes"][1]) >= metrics.level_accuracy(labels[test], full)[1]


def test_tfidf_fits_its_temperature_on_held_out_rows(split_frame):
    texts, labels, _ = split_frame
    baseline = TfidfLinearBaseline().fit(texts, labels[:, 1])  # full path strings work as labels too
    assert 0.3 < baseline.temperature_ < 400
    assert baseline.classes_.tolist() == sorted(set(labels[:, 1]))


def test_baselines_refuse_unfitted_use_and_unknown_kind(split_frame):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        HiclassBaseline().predict(["x"])
    with pytest.raises(ValueError, match="unknown baseline kind"):
        make_baseline("bert")


def test_tfidf_on_two_cores_fits_the_same_one_vs_rest_svms(split_frame):
    texts, labels, test = split_frame
    one = TfidfLinearBaseline(temperature=5.0).fit(texts[~test], labels[~test])
    two = TfidfLinearBaseline(temperature=5.0, n_jobs=2).fit(texts[~test], labels[~test])
    assert type(two.classifier_).__name__ == "OneVsRestClassifier"
    np.testing.assert_allclose(two.predict_proba(texts[test]), one.predict_proba(texts[test]), atol=1e-3)
    assert (two.predict(texts[test]) == one.predict(texts[test])).all()
