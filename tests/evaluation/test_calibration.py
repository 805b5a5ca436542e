"""Threshold search on synthetic scores whose answer is known."""

from __future__ import annotations

import json

import numpy as np
import pytest

from linnet.evaluation import metrics
from linnet.evaluation.calibration import (
    WITHHOLD_ALL,
    Calibration,
    apply_thresholds,
    calibrate,
    precision_coverage_curve,
    reliability_curve,
    threshold_for_precision,
    tradeoff_table,
)
from linnet.errors import ConfigError, EvaluationError


# The cut-off mechanics on a handful of items are those of the measured precision (bound_z=0); the default
# lower-bound rule on top of them is tested in test_threshold_bound.py.
def test_deepest_cut_wins_when_precision_is_not_monotone():
    confidence = [0.9, 0.8, 0.7, 0.6, 0.5]
    correct = [1, 0, 1, 1, 1]  # running precision 1, .5, .67, .75, .8
    assert threshold_for_precision(confidence, correct, 0.75, bound_z=0.0) == pytest.approx((0.5, 0.8, 1.0))
    assert threshold_for_precision(confidence, correct, 0.9, bound_z=0.0) == pytest.approx((0.9, 1.0, 0.2))


def test_a_target_met_by_every_item_accepts_all_of_them_and_nothing_less_confident():
    # Every item right: the threshold is the lowest confidence seen (0.6), not 0, so every item of the split is
    # accepted and a new item at 0.4, below anything the split judged, is withheld rather than assumed as good.
    threshold, precision, coverage = threshold_for_precision([0.9, 0.7, 0.6], [1, 1, 1], 0.95, bound_z=0.0)
    assert (threshold, precision, coverage) == pytest.approx((0.6, 1.0, 1.0))
    exposed = apply_thresholds(np.array([["A"], ["A"]], dtype=object), np.array([[0.4], [0.6]]), [threshold])
    assert exposed[:, 0].tolist() == ["", "A"]


def test_ties_are_accepted_or_refused_together():
    threshold, precision, coverage = threshold_for_precision([0.5] * 4 + [0.9], [1, 0, 0, 0, 1], 0.9, bound_z=0.0)
    assert (threshold, precision, coverage) == pytest.approx((0.9, 1.0, 0.2))
    threshold, precision, coverage = threshold_for_precision([0.5] * 4, [1, 0, 1, 0], 0.9, bound_z=0.0)
    assert threshold == WITHHOLD_ALL and coverage == 0.0


def test_known_answer_on_bernoulli_scores():
    # correct ~ Bernoulli(conf), conf ~ U(0, 1): precision above t is (1 + t) / 2, so 0.95 needs t = 0.9
    rng = np.random.default_rng(7)
    confidence = rng.uniform(size=40_000)
    correct = rng.uniform(size=confidence.size) < confidence
    threshold, precision, coverage = threshold_for_precision(confidence, correct, 0.95)
    assert threshold == pytest.approx(0.9, abs=0.02)
    assert precision >= 0.95
    assert coverage == pytest.approx(0.1, abs=0.02)
    fresh = rng.uniform(size=40_000)
    fresh_correct = rng.uniform(size=fresh.size) < fresh
    assert fresh_correct[fresh >= threshold].mean() >= 0.94  # holds on new data from the same distribution


def _two_level_split(n=4000, seed=0):
    """Level 1 right when conf1 > 0.3; level 2 right when conf2 > 0.6; subtree 'B' is always wrong below."""
    rng = np.random.default_rng(seed)
    top = rng.choice(["A", "B"], size=n)
    truth = np.stack([top, np.char.add(top, " > x")], axis=1).astype(object)
    conf = rng.uniform(size=(n, 2))
    full = truth.copy()
    full[conf[:, 0] <= 0.3, 0] = "C"
    full[conf[:, 0] <= 0.3, 1] = "C > z"
    wrong_leaf = (conf[:, 1] <= 0.6) | ((top == "B") & (conf[:, 1] <= 0.8))
    full[wrong_leaf & (conf[:, 0] > 0.3), 1] = np.char.add(top[wrong_leaf & (conf[:, 0] > 0.3)], " > y")
    return truth, full, conf


def test_calibrate_reaches_the_target_at_every_level_with_the_known_thresholds():
    truth, full, conf = _two_level_split()
    calibration = calibrate(truth, full, conf, target_precision=1.0, taxonomy_fingerprint="abc")
    t1, t2 = calibration.level_thresholds
    assert 0.3 < t1 <= 0.302  # the smallest confidence above the known 0.3 boundary
    assert 0.8 < t2 <= 0.81   # level 2 also has subtree B wrong up to 0.8
    exposed = calibration.apply(full, conf)
    assert metrics.precision_on_covered(truth, exposed).tolist() == [1.0, 1.0]
    assert calibration.report["levels"][0]["coverage"] == pytest.approx(0.7, abs=0.03)


def test_node_target_adds_an_override_for_a_weak_subtree_only():
    truth, full, conf = _two_level_split(seed=1)
    calibration = calibrate(truth, full, conf, target_precision=[1.0, 0.8], node_targets={"B": 1.0})
    assert 0.6 < calibration.level_thresholds[1] < 0.75  # mixes A (right above 0.6) and B (above 0.8)
    assert 0.75 < calibration.node_thresholds["B"] <= 0.81  # holds for B itself and below
    node_threshold = calibration.node_thresholds["B"]
    assert node_threshold > calibration.level_thresholds[1]
    exposed = calibration.apply(full, conf)
    under_b = metrics.subtree_mask(full, "B")
    assert metrics.precision_on_covered(truth[under_b], exposed[under_b]).tolist() == [1.0, 1.0]
    # Products outside B keep the level thresholds: some of them are exposed below B's override.
    outside = ~under_b & (conf[:, 1] < node_threshold) & (exposed[:, 1] != "")
    assert outside.any()
    with pytest.raises(EvaluationError, match="'Z'"):
        calibrate(truth, full, conf, node_targets={"Z": 0.9})


def test_apply_thresholds_gives_prefixes_and_int_blanks():
    full = np.array([[0, 3], [1, 4]])
    conf = np.array([[0.9, 0.2], [0.4, 0.99]])
    assert apply_thresholds(full, conf, [0.5, 0.5]).tolist() == [[0, -1], [-1, -1]]  # no level 2 after a withheld 1
    assert apply_thresholds(full, conf, [0.5, 0.1], {0: 0.95}).tolist() == [[-1, -1], [-1, -1]]


@pytest.mark.parametrize("target", [0, -0.1, 1.5, float("nan"), "high"])
def test_target_outside_unit_interval_is_a_config_error(target):
    with pytest.raises(ConfigError, match=r"\(0, 1\]"):
        calibrate(np.array([["A"]]), np.array([["A"]]), np.array([[0.5]]), target_precision=target)


def test_empty_split_is_a_clear_error():
    empty = np.empty((0, 2), dtype=object)
    with pytest.raises(EvaluationError, match="empty"):
        calibrate(empty, empty, np.empty((0, 2)))


def test_tradeoff_table_is_monotone_in_the_target():
    truth, full, conf = _two_level_split(seed=2)
    rows = tradeoff_table(truth, full, conf, targets=(0.8, 0.9, 1.0), bound_z=0.0)
    coverages = [row["level_coverage"][1] for row in rows]
    assert coverages == sorted(coverages, reverse=True)
    for row in rows:
        assert row["level_precision"][1] >= row["target_precision"] - 1e-9


def test_curves_for_plots():
    curve = precision_coverage_curve([0.9, 0.8, 0.8, 0.1], [1, 1, 0, 0])
    assert curve["threshold"].tolist() == [0.9, 0.8, 0.1]
    assert curve["coverage"].tolist() == [0.25, 0.75, 1.0]
    assert curve["precision"].tolist() == pytest.approx([1.0, 2 / 3, 0.5])
    reliability = reliability_curve([0.95, 0.95, 0.15, 0.15], [1, 0, 0, 0], bins=10)
    assert reliability["accuracy"].tolist() == [0.0, 0.5]
    assert reliability["ece"] == pytest.approx(0.5 * 0.15 + 0.5 * 0.45)


def test_save_load_round_trip_writes_the_contract_keys(tmp_path):
    calibration = Calibration([0.5, 0.7], {"A > x": 0.9}, "fp-1")
    path = calibration.save(tmp_path / "sub" / "calibration.json")
    assert set(json.loads(path.read_text())) == {"level_thresholds", "node_thresholds", "taxonomy_fingerprint"}
    loaded = Calibration.load(path)
    assert loaded.to_dict() == calibration.to_dict()
    (tmp_path / "bad.json").write_text('{"node_thresholds": {}}')
    with pytest.raises(ConfigError, match="bad.json"):
        Calibration.load(tmp_path / "bad.json")


def test_taxonomy_mismatch_names_both_fingerprints(tmp_path):
    from linnet.taxonomy import Taxonomy

    fitted_for = Taxonomy.from_paths(["A > x", "B > y"])
    other = Taxonomy.from_paths(["A > x", "B > z"])
    path = Calibration([0.5, 0.6], {}, fitted_for.fingerprint()).save(tmp_path / "calibration.json")
    assert Calibration.load(path, taxonomy=fitted_for).level_thresholds == [0.5, 0.6]
    with pytest.raises(ConfigError) as error:
        Calibration.load(path, taxonomy=other)
    assert fitted_for.fingerprint() in str(error.value) and other.fingerprint() in str(error.value)
    with pytest.raises(ConfigError, match="3 levels"):
        Calibration([0.5, 0.6], {}, None).check_taxonomy(Taxonomy.from_paths(["A > x > q"]))


def test_save_writes_the_file_the_inference_room_writes(tmp_path):
    from linnet.inference.calibration_file import load_calibration, save_calibration
    from linnet.taxonomy import Taxonomy

    taxonomy = Taxonomy.from_paths(["A > x", "B > y"])
    ours = Calibration([0.5, 0.6], {"A": 0.9}, taxonomy.fingerprint(), decoding="greedy").save(tmp_path / "a.json")
    theirs = save_calibration(tmp_path / "b.json", [0.5, 0.6], {"A": 0.9}, taxonomy, decoding="greedy")
    assert ours.read_bytes() == theirs.read_bytes()
    assert load_calibration(ours, taxonomy, decoding="greedy") == ([0.5, 0.6], {"A": 0.9})
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["a.json", "b.json"], "no temporary file left"
    with pytest.raises(ConfigError, match=r"level_thresholds\[1\] must be in \[0, 1\]"):
        Calibration([0.5, 2.0], {}).save(tmp_path / "c.json")
    assert not (tmp_path / "c.json").exists()


def test_a_node_below_a_shallower_label_counts_as_wrong():
    # 200 products labelled "A > x", 100 labelled "A" alone (an inner node with a label). Every prediction is
    # "A > x"; level 2 is sure (0.9) on the shallow-labelled half and unsure (0.2 - 0.3) on the others, so only
    # thresholds that judge those extra nodes can reach the target in hierarchical precision.
    truth = np.array([["A", "x"]] * 200 + [["A", ""]] * 100, dtype=object)
    full = np.array([["A", "x"]] * 300, dtype=object)
    conf = np.column_stack([np.full(300, 0.99), np.r_[np.linspace(0.2, 0.3, 200), np.full(100, 0.9)]])
    thresholds = calibrate(truth, full, conf, target_precision=0.95).level_thresholds
    assert thresholds[0] == 0.99  # every product right at level 1: all of them pass
    assert thresholds[1] > 0.9, "every level-2 cut-off exposes the 100 wrong extra nodes first"
    exposed = apply_thresholds(full, conf, thresholds)
    assert metrics.hierarchical_precision_recall_f1(truth, exposed)["precision"] >= 0.95
    assert (exposed[:, 1] == "").all()
