"""Evaluate a trained model, an export or a baseline on a catalog split and write the report directory.

The report directory holds ``predictions.csv`` (one row per product), ``metrics.json``, ``report.md`` and PNG
plots. Models and baselines go through the same path: something produces, per product, the node of each
level of its full descent (``full_node_ids``) and that level's confidence; thresholds from a calibration file
are applied here with :func:`linnet.evaluation.calibration.apply_thresholds` (the same rule as the inference wrapper), and
everything is scored on *path strings* (``"Apparel > Topwear"``), so a catalog label outside the model's tree
can still be compared.

Example:
    >>> from linnet.evaluation.evaluate import evaluate_model            # doctest: +SKIP
    >>> metrics = evaluate_model("runs/fashion", "styles.csv", "eval/fashion")   # doctest: +SKIP
    >>> metrics["hierarchical_f1"]                               # doctest: +SKIP
    0.98...
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from linnet.atomic_files import write_text_atomically
from linnet.data import CatalogReader, prepare_catalog
from linnet.data.schema import check_input_columns
from linnet.data.split import DEFAULT_FRACTIONS
from linnet.errors import ConfigError, EvaluationError
from linnet.evaluation import calibration as calibration_lib
from linnet.evaluation import metrics as metrics_lib
from linnet.evaluation import reports
from linnet.progress import progress_bar
from linnet.serving.artifacts import RUN, artifact_kind
from linnet.serving.predict import Predictor, load_predictor

logger = logging.getLogger(__name__)

UNKNOWN_LABEL_MODES = ("score", "skip", "ancestor")
#: Train/validation/test fractions of a baseline given one file (its test split is its hash "test" slice, as
#: for a run trained with ``data.split: [0.7, 0.15, 0.15]``); with ``--test FILE`` the files are the splits.
DEFAULT_SPLIT = tuple(DEFAULT_FRACTIONS)
#: Products per model call when evaluating (`load_model`): text models, and models that run an image CNN,
#: whose activations take tens of MB per 224-pixel image (512 of them were OOM-killed at 16 GB).
TEXT_BATCH_SIZE = 256
IMAGE_BATCH_SIZE = 32
PLOT_FILES = {
    "level_accuracy": "level_accuracy.png",
    "precision_coverage": "precision_coverage.png",
    "calibration_curve": "calibration_curve.png",
}


@dataclass
class LevelPredictions:
    """What a model or baseline says about each product, before thresholds.

    Attributes:
        ids: ``[N]`` product ids.
        full_node_ids: ``[N, L]`` node id of each level of the full descent (``""`` below a leaf).
        confidences: ``[N, L]`` confidence of each of those levels.
        level_scores: optional, per level ``[N, n_k]`` scores for top-k accuracy.
        level_classes: optional, per level the node id of each score column.
        exposed_node_ids: optional ``[N, L]`` thresholded prediction the model made itself; used when no
            calibration is given to this module.
    """

    ids: np.ndarray
    full_node_ids: np.ndarray
    confidences: np.ndarray
    level_scores: list | None = None
    level_classes: list | None = None
    exposed_node_ids: np.ndarray | None = None
    extra: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------- path strings
def node_path_lookup(taxonomy) -> dict:
    """``{node id: path string}`` for every node of ``taxonomy`` (identity for trees inferred from paths)."""
    return {node.id: taxonomy.path_string(node.id) for node in taxonomy.nodes}


def to_path_matrix(node_ids, lookup: Mapping | None) -> np.ndarray:
    """Map a node-id matrix to path strings per level (``""`` stays ``""``; unknown ids are kept as they are)."""
    matrix = metrics_lib.as_label_matrix(node_ids).astype(object)
    missing = metrics_lib.missing_mask(matrix)
    matrix[missing] = ""
    if lookup is None:
        return matrix
    import pandas as pd  # lazy: pandas costs start-up time and the NumPy paths need none

    mapped = pd.Series(matrix.ravel()).map(lookup)
    flat = np.where(mapped.isna().to_numpy(), matrix.ravel(), mapped.to_numpy(dtype=object))
    return flat.reshape(matrix.shape)


def labels_to_node_ids(labels, taxonomy) -> np.ndarray:
    """Class indices ``[N, L]`` (``-1`` none) to node ids, level by level, vectorised."""
    labels = np.asarray(labels)
    out = np.full(labels.shape, "", dtype=object)
    for column in range(labels.shape[1]):
        classes = np.asarray(taxonomy.classes(column + 1), dtype=object)
        present = labels[:, column] >= 0
        out[present, column] = classes[labels[present, column]]
    return out


def catalog_truth(catalog) -> np.ndarray:
    """The true path strings ``[N, L]`` of a prepared catalog."""
    if catalog.taxonomy is None or catalog.labels.shape[1] == 0:
        raise EvaluationError(f"{catalog.source or 'the catalog'} has no category labels to evaluate against")
    return to_path_matrix(labels_to_node_ids(catalog.labels, catalog.taxonomy), node_path_lookup(catalog.taxonomy))


def align_levels(matrix: np.ndarray, num_levels: int) -> np.ndarray:
    """Pad with ``""`` or cut so a path matrix has ``num_levels`` columns (a catalog deeper than the model
    keeps its deeper true levels out of scope; a shallower one is padded)."""
    matrix = metrics_lib.as_label_matrix(matrix)
    if matrix.shape[1] >= num_levels:
        return matrix[:, :num_levels]
    return np.hstack([matrix, np.full((matrix.shape[0], num_levels - matrix.shape[1]), "", dtype=object)])


def to_model_spelling(true_paths: np.ndarray, model_taxonomy) -> np.ndarray:
    """True path strings the model's tree spells only in another case (``apparel & accessories``) take its
    spelling, as `linnet.taxonomy.Taxonomy.find_path` matches them; the rest stay as they are, and so does a label
    that two of the tree's paths fit (where `find_path` raises: here it is scored as an unknown label)."""
    import pandas as pd  # lazy: pandas costs start-up time and the NumPy paths need none

    known = set(node_path_lookup(model_taxonomy).values())
    folded: dict[str, str | None] = {}
    for path in known:
        key = path.casefold()
        folded[key] = None if key in folded else path  # two nodes differing only in case: leave the label alone
    cells = pd.Series(np.asarray(true_paths, dtype=object).ravel())
    other = (~cells.isin(known) & (cells != "")).to_numpy()
    out = cells.to_numpy(dtype=object).copy()
    spelled = cells[other].str.casefold().map(folded).to_numpy(dtype=object)
    out[np.flatnonzero(other)] = np.where(pd.isna(spelled), out[other], spelled)
    return out.reshape(np.shape(true_paths))


def unknown_label_rows(true_paths: np.ndarray, model_taxonomy) -> np.ndarray:
    """bool ``[N]``: the deepest true node is not a path of the model's tree."""
    known = set(node_path_lookup(model_taxonomy).values())
    deepest = metrics_lib.deepest_nodes(true_paths)
    import pandas as pd  # lazy: pandas costs start-up time and the NumPy paths need none

    return ~pd.Series(deepest).isin(known).to_numpy() & (deepest != "")


def to_known_ancestor(true_paths: np.ndarray, model_taxonomy) -> np.ndarray:
    """Cut every true path after its deepest node that the model's tree knows."""
    known = set(node_path_lookup(model_taxonomy).values())
    out = true_paths.copy()
    import pandas as pd  # lazy: pandas costs start-up time and the NumPy paths need none

    for column in range(out.shape[1]):
        unknown = ~pd.Series(out[:, column]).isin(known).to_numpy()
        out[unknown, column] = ""
    # A path is a prefix chain: once a level is cut, the levels below go too.
    present = np.logical_and.accumulate(~metrics_lib.missing_mask(out), axis=1)
    out[~present] = ""
    return out


# -------------------------------------------------------------------------------------------- scoring
def score_predictions(true_paths: np.ndarray, predictions: LevelPredictions, lookup: Mapping | None = None,
                      calibration: calibration_lib.Calibration | None = None, values=None,
                      subtrees: Sequence[str] = (), confusion_top_n: int = 20) -> tuple[dict, np.ndarray, dict]:
    """Score predictions against true path strings.

    Args:
        true_paths: ``[N, L]`` true path strings (``""`` where none).
        predictions: the model's or baseline's :class:`LevelPredictions` (node ids of its own tree).
        lookup: node id -> path string of the predicting tree (None when node ids are path strings).
        calibration: thresholds to apply; None uses ``predictions.exposed_node_ids`` when present, else
            exposes the full descent.
        values: optional ``[N]`` business value per product.
        subtrees: nodes (path strings) to break every score down by; by default every level-1 node.
        confusion_top_n: categories per confusion matrix.

    Returns:
        ``(metrics dict, exposed path matrix, plot data)``.
    """
    num_levels = predictions.full_node_ids.shape[1]
    true_paths = align_levels(true_paths, num_levels)
    if true_paths.shape[0] == 0:
        raise EvaluationError("the evaluation split is empty: no product to score")
    if calibration is not None:
        exposed_ids = calibration.apply(predictions.full_node_ids, predictions.confidences)
    elif predictions.exposed_node_ids is not None:
        exposed_ids = predictions.exposed_node_ids
    else:
        exposed_ids = predictions.full_node_ids
    exposed = to_path_matrix(exposed_ids, lookup)
    full = to_path_matrix(predictions.full_node_ids, lookup)
    result = metrics_lib.summarize(true_paths, exposed, values=values)
    full_summary = metrics_lib.summarize(true_paths, full)
    result["without_thresholds"] = {key: full_summary[key] for key in
                                    ("hierarchical_precision", "hierarchical_recall", "hierarchical_f1",
                                     "level_accuracy", "leaf_accuracy")}
    if predictions.level_scores is not None and predictions.level_classes is not None:
        for k in (1, 5):
            result[f"level_top{k}_accuracy"] = [
                metrics_lib.top_k_accuracy(true_paths[:, column], scores, k,
                                           classes=to_path_matrix(np.asarray(classes, dtype=object), lookup)[:, 0])
                for column, (scores, classes) in enumerate(zip(predictions.level_scores, predictions.level_classes))]
    if calibration is not None:
        result["thresholds"] = calibration.to_dict()
    subtrees = list(subtrees) or metrics_lib.level_nodes(true_paths, 1)
    result["subtrees"] = {node: {key: scores.get(key) for key in
                                 ("n_products", "hierarchical_f1", "leaf_accuracy", "coverage", "level_accuracy")}
                          for node, scores in metrics_lib.subtree_breakdown(true_paths, exposed, subtrees).items()}

    # Judged as the thresholds are (`calibration.judged_mask`): a level below a label that ends above it is wrong.
    judged = calibration_lib.judged_mask(true_paths) & ~metrics_lib.missing_mask(full)
    correct = judged & (full == true_paths)
    curves = [calibration_lib.precision_coverage_curve(predictions.confidences[judged[:, c], c], correct[judged[:, c], c])
              for c in range(num_levels)]
    reliability = [calibration_lib.reliability_curve(predictions.confidences[judged[:, c], c], correct[judged[:, c], c])
                   for c in range(num_levels)]
    result["expected_calibration_error"] = [curve["ece"] for curve in reliability]
    confusions = [metrics_lib.confusion_matrix(true_paths, exposed, level, top_n=confusion_top_n)
                  for level in range(1, num_levels + 1)]
    plot_data = {"curves": curves, "reliability": reliability, "confusions": confusions, "full": full}
    return result, exposed, plot_data


def _json_ready(value):
    """NaN and infinities become None so ``metrics.json`` is strict JSON."""
    if isinstance(value, dict):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    if isinstance(value, np.ndarray):
        return _json_ready(value.tolist())
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_report(out_dir, name: str, true_paths: np.ndarray, predictions: LevelPredictions, result: dict,
                 exposed: np.ndarray, plot_data: dict, compare: Mapping[str, Mapping] | None = None,
                 target_precision: float | None = None, notes: Sequence[str] = ()) -> dict:
    """Write ``predictions.csv``, ``metrics.json``, the plots and ``report.md`` into ``out_dir``.

    Returns:
        ``{artifact name: path}``.
    """
    import pandas as pd  # lazy: pandas costs start-up time and the NumPy paths need none

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    num_levels = exposed.shape[1]
    true_paths = align_levels(true_paths, num_levels)
    frame = pd.DataFrame({
        "id": predictions.ids,
        "true_path": metrics_lib.deepest_nodes(true_paths),
        "predicted_path": metrics_lib.deepest_nodes(exposed),
        "full_path": metrics_lib.deepest_nodes(plot_data["full"]),
        "depth": (~metrics_lib.missing_mask(exposed)).sum(axis=1),
    })
    for column in range(num_levels):
        frame[f"confidence_level_{column + 1}"] = np.round(predictions.confidences[:, column], 6)
    paths = {"predictions": out_dir / "predictions.csv", "metrics": out_dir / "metrics.json",
             "report": out_dir / "report.md"}
    write_text_atomically(paths["predictions"], frame.to_csv(index=False))
    clean = _json_ready(result)
    write_text_atomically(paths["metrics"], json.dumps(clean, indent=2) + "\n")

    plots = [reports.plot_level_accuracy({name: clean, **dict(compare or {})}, out_dir / PLOT_FILES["level_accuracy"]),
             reports.plot_precision_coverage(plot_data["curves"], out_dir / PLOT_FILES["precision_coverage"],
                                             target_precision),
             reports.plot_reliability(plot_data["reliability"], out_dir / PLOT_FILES["calibration_curve"])]
    for confusion in plot_data["confusions"]:
        if confusion.row_labels:
            plots.append(reports.plot_confusion_matrix(confusion, out_dir / f"confusion_level_{confusion.level}.png"))
    tradeoff = None
    judged = ~metrics_lib.missing_mask(true_paths)
    if judged[:, 0].any():
        rows = calibration_lib.tradeoff_table(true_paths, plot_data["full"], predictions.confidences)
        tradeoff = calibration_lib.format_tradeoff_table(rows)
    text = reports.markdown_report(name, clean, compare=compare, tradeoff=tradeoff, plots=[str(p) for p in plots],
                                   notes=notes)
    write_text_atomically(paths["report"], text)
    paths.update({Path(plot).stem: Path(plot) for plot in plots})
    return paths


def load_compare(directories: Sequence) -> dict:
    """``{name: metrics}`` from earlier report directories (their ``metrics.json``), named by directory."""
    results = {}
    for directory in directories:
        path = Path(directory) / "metrics.json"
        if not path.is_file():
            raise ConfigError(f"--compare {directory}: no metrics.json there (run linnet evaluate or baseline first)")
        try:
            results[Path(directory).name] = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ConfigError(f"{path}: not valid JSON: {error}") from None
    return results


def log_to_mlflow(tracking_dir, result: Mapping, artifacts: Mapping, run_name: str) -> bool:
    """Log the headline scores and every report file to the run's MLflow store (``tracking_dir/mlflow.db``)."""
    try:
        from linnet.training.tracking import MlflowTracker  # lazy: mlflow, TF
    except ImportError:  # the training room's tracker is what knows the store layout
        return False
    flat = {f"eval_{key}": result[key] for key in ("hierarchical_precision", "hierarchical_recall", "hierarchical_f1",
                                                   "leaf_accuracy", "coverage") if result.get(key) is not None}
    flat.update({f"eval_level_{level}_accuracy": value
                 for level, value in enumerate(result.get("level_accuracy") or [], 1) if value is not None})
    with MlflowTracker(tracking_dir, run_name=run_name) as tracker:
        tracker.log_metrics(flat)
        for path in artifacts.values():
            tracker.log_artifact(path, artifact_path="evaluation")
    return True


# -------------------------------------------------------------------------------------- orchestration
def run_split_settings(model_path) -> dict:
    """The split a run was trained with (``data.split``, ``data.split_salt`` of its ``config.yaml``), so
    ``--split test`` means the products training never saw; ``{}`` when there is no such file."""
    path = Path(model_path) / "config.yaml"
    if not path.is_file():
        return {}
    try:
        data = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("data") or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    settings = {}
    if data.get("split") is not None:
        settings["split"] = tuple(float(value) for value in data["split"])
    if data.get("split_salt"):
        settings["split_salt"] = str(data["split_salt"])
    return settings


def prepare_for_evaluation(catalog_path, schema, model_taxonomy, split: str = "test", unknown_labels: str = "score",
                           split_fractions=None, progress: bool = False, split_salt: str = ""):
    """Read the catalog, keep ``split`` and return ``(catalog, true path strings, unknown count)``.

    ``unknown_labels``: ``"score"`` keeps labels outside the model's tree (their unseen nodes are misses),
    ``"skip"`` drops those products, ``"ancestor"`` cuts their paths to the deepest node the model knows.
    """
    if unknown_labels not in UNKNOWN_LABEL_MODES:
        raise ConfigError(f"--unknown-labels must be one of {list(UNKNOWN_LABEL_MODES)}, got {unknown_labels!r}")
    kwargs = {} if split_fractions is None else {"split": tuple(split_fractions)}
    if split_salt:
        kwargs["split_salt"] = split_salt
    by_id = getattr(schema, "category_kind", "path") == "id"
    # Catalog paths are read with their own inferred tree so that unknown labels survive to be scored;
    # labels given as node ids can only be read against the model's tree.
    catalog = prepare_catalog(catalog_path, schema, taxonomy=model_taxonomy if by_id else None,
                              unknown_labels="skip" if by_id and unknown_labels == "score" else
                              (unknown_labels if by_id else "error"), progress=progress, **kwargs)
    if split != "all":
        catalog = catalog.subset(split)
    if len(catalog) == 0:
        raise EvaluationError(f"{catalog_path}: the {split!r} split is empty: no product to evaluate "
                              "(check the split fractions or pass --split all)")
    truth = to_model_spelling(align_levels(catalog_truth(catalog), model_taxonomy.num_levels), model_taxonomy)
    unknown = unknown_label_rows(truth, model_taxonomy)
    n_unknown = int(unknown.sum())
    if unknown_labels == "skip" and n_unknown:
        catalog = catalog.subset(~unknown)
        truth = truth[~unknown]
        if len(catalog) == 0:
            raise EvaluationError(f"{catalog_path}: every label of the {split!r} split is outside the model's tree")
    elif unknown_labels == "ancestor" and n_unknown:
        truth = to_known_ancestor(truth, model_taxonomy)
    return catalog, truth, n_unknown


def evaluate_predictions(out_dir, name: str, truth: np.ndarray, predictions: LevelPredictions, taxonomy=None,
                         calibration=None, values=None, subtrees=(), compare_dirs=(), notes=(),
                         mlflow_dir=None) -> dict:
    """Score and write one report directory; returns the metrics dict written to ``metrics.json``."""
    lookup = node_path_lookup(taxonomy) if taxonomy is not None else None
    result, exposed, plot_data = score_predictions(truth, predictions, lookup, calibration, values, subtrees)
    result.update(predictions.extra)
    compare = load_compare(compare_dirs)
    target = None
    if calibration is not None and calibration.report.get("levels"):
        target = calibration.report["levels"][0]["target_precision"]
    artifacts = write_report(out_dir, name, truth, predictions, result, exposed, plot_data, compare=compare,
                             target_precision=target, notes=notes)
    if mlflow_dir is not None:
        log_to_mlflow(mlflow_dir, result, artifacts, run_name=f"evaluate {name}")
    return _json_ready(result)


def baseline_predictions(kind: str, catalog, train_split=("train", "validation"), eval_split: str = "test",
                         **params) -> tuple[LevelPredictions, object, float]:
    """Fit a baseline on ``train_split`` of a prepared catalog and predict ``eval_split``.

    Returns:
        ``(predictions on eval_split, fitted baseline, training seconds)``.
    """
    train = catalog.subset(list(train_split) if not isinstance(train_split, str) else train_split)
    evaluated = catalog.subset(eval_split)
    if len(train) == 0 or len(evaluated) == 0:
        raise EvaluationError(f"baseline {kind}: empty split (train {len(train)} rows, {eval_split} {len(evaluated)} rows)")
    baseline, seconds = fit_baseline(kind, train.texts, train.labels, catalog.taxonomy, **params)
    return predict_with_baseline(baseline, evaluated), baseline, seconds


def fit_baseline(kind: str, texts: Mapping, labels, taxonomy, **params) -> tuple[object, float]:
    """``(baseline fitted on texts {field: [N]} and labels int [N, L] of taxonomy, training seconds)``."""
    from linnet.evaluation.baselines import (  # lazy: sklearn
        make_baseline,
        product_texts,
    )

    started = time.perf_counter()
    baseline = make_baseline(kind, **params).fit(product_texts(texts), labels_to_node_ids(labels, taxonomy))
    return baseline, time.perf_counter() - started


def predict_with_baseline(baseline, catalog) -> LevelPredictions:
    """A fitted baseline's :class:`LevelPredictions` on a prepared catalog."""
    from linnet.evaluation.baselines import product_texts  # lazy: sklearn

    output = baseline.predict_levels(product_texts(catalog.texts))
    full = align_levels(output["full_node_ids"], catalog.num_levels)
    confidences = np.zeros(full.shape)
    width = min(full.shape[1], output["confidences"].shape[1])
    confidences[:, :width] = output["confidences"][:, :width]
    return LevelPredictions(np.asarray(catalog.ids), full, confidences, output["level_scores"], output["level_classes"])


def evaluate_baseline(kind: str, catalog_path, out_dir, schema, split_fractions=None, subtrees=(), compare_dirs=(),
                      calibration_target: float | None = None, progress: bool = False, validation_path=None,
                      test_path=None, **params) -> dict:
    """Train a baseline on the train+validation splits, evaluate on test, write the same report as a model.

    With ``calibration_target``, thresholds are fitted on the validation split (the baseline then trained on
    train only) and applied to test, as ``linnet calibrate`` does for a model.

    With ``test_path`` (``--test FILE``) the files are the splits, as for a model: all of ``catalog_path``
    trains (with ``validation_path`` too, unless it fits the thresholds), and all of ``test_path`` is scored,
    its labels outside the training tree scored as misses (as `evaluate_model` does by default).
    """
    if test_path is None and validation_path is not None:
        raise ConfigError("--validation FILE needs --test FILE for a baseline (without it the splits are hash "
                          "slices of --catalog)")
    if test_path is not None:
        return _evaluate_baseline_on_files(kind, catalog_path, validation_path, test_path, out_dir, schema, subtrees,
                                           compare_dirs, calibration_target, progress, **params)
    catalog = prepare_catalog(catalog_path, schema, progress=progress,
                              split=tuple(split_fractions or DEFAULT_SPLIT))
    if catalog.taxonomy is None or catalog.labels.shape[1] == 0:
        raise EvaluationError(f"{catalog_path}: no category labels; a baseline needs labelled products")
    train_split = ("train",) if calibration_target is not None else ("train", "validation")
    predictions, baseline, seconds = baseline_predictions(kind, catalog, train_split, "test", **params)
    calibration = None
    if calibration_target is not None:
        calibration = _baseline_calibration(baseline, catalog.subset("validation"), calibration_target)
    predictions.extra = {"model": f"baseline:{kind}", "training_seconds": seconds,
                         "unknown_labels": {"mode": "score", "count": 0}}
    test = catalog.subset("test")
    values = None if test.values is None else np.nan_to_num(test.values)
    return evaluate_predictions(out_dir, f"baseline {kind}", catalog_truth(test), predictions, catalog.taxonomy,
                                calibration, values, subtrees, compare_dirs)


def _baseline_calibration(baseline, validation, target: float):
    """Thresholds for ``target`` fitted on a fitted baseline's predictions for ``validation``."""
    predictions = predict_with_baseline(baseline, validation)
    return calibration_lib.calibrate(catalog_truth(validation), predictions.full_node_ids, predictions.confidences,
                                     target, taxonomy_fingerprint=validation.taxonomy.fingerprint())


def _evaluate_baseline_on_files(kind, catalog_path, validation_path, test_path, out_dir, schema, subtrees,
                                compare_dirs, calibration_target, progress, **params) -> dict:
    """`evaluate_baseline` with one file per split (``--catalog``, ``--validation``, ``--test``)."""
    catalog = prepare_catalog(catalog_path, schema, split=(1.0, 0.0, 0.0), progress=progress)
    if catalog.taxonomy is None or catalog.labels.shape[1] == 0:
        raise EvaluationError(f"{catalog_path}: no category labels; a baseline needs labelled products")
    validation = None
    if validation_path is not None:
        # Labelled against the training tree (a path it lacks is cut to its deepest known node), as training does.
        validation = prepare_catalog(validation_path, schema, taxonomy=catalog.taxonomy, unknown_labels="ancestor",
                                     split=(0.0, 1.0, 0.0), progress=progress)
    if calibration_target is not None and validation is None:
        raise ConfigError("--target-precision with --test FILE needs --validation FILE to fit the thresholds on")
    texts, labels = catalog.texts, catalog.labels
    if validation is not None and calibration_target is None:
        texts = {key: np.concatenate([value, validation.texts[key]]) for key, value in texts.items()}
        labels = np.concatenate([labels, validation.labels])
    baseline, seconds = fit_baseline(kind, texts, labels, catalog.taxonomy, **params)
    calibration = (_baseline_calibration(baseline, validation, calibration_target)
                   if calibration_target is not None else None)
    test, truth, n_unknown = prepare_for_evaluation(test_path, schema, catalog.taxonomy, split="all",
                                                    progress=progress)
    predictions = predict_with_baseline(baseline, test)
    predictions.extra = {"model": f"baseline:{kind}", "training_seconds": seconds,
                         "unknown_labels": {"mode": "score", "count": n_unknown}}
    values = None if test.values is None else np.nan_to_num(test.values)
    return evaluate_predictions(out_dir, f"baseline {kind}", truth, predictions, catalog.taxonomy, calibration,
                                values, subtrees, compare_dirs)


# ------------------------------------------------------------------------------------------ the model path
def load_model(model_path, decoding: str | None = None, batch_size: int | None = None) -> Predictor:
    """The serving room's `linnet.serving.predict.Predictor` for a run directory or an exported SavedModel.

    ``decoding``: the descent (`linnet.inference.classifier.HierarchicalClassifier`); None is the model's own
    (``"greedy"``, `linnet.inference.calibration_file.DEFAULT_DECODING`, for a run directory; the one an export was made with). An export's is fixed: asking for another is
    an error. A run is evaluated without the ``calibration.json`` it may hold: thresholds come from
    ``calibration=`` (see `evaluate_model`). ``batch_size``: products per model call, which bounds the memory
    (an image CNN's activations grow with it); None: `TEXT_BATCH_SIZE`, or `IMAGE_BATCH_SIZE` for a model that
    reads images.
    """
    if not Path(model_path).exists():
        raise ConfigError(f"--model {model_path}: no such run or export directory")
    if batch_size is not None and int(batch_size) < 1:
        raise ConfigError(f"--batch-size must be positive, got {batch_size}")
    predictor = load_predictor(model_path, decoding=decoding, run_calibration=False,
                               batch_size=int(batch_size or TEXT_BATCH_SIZE))
    if batch_size is None and predictor.image_size:
        predictor.batch_size = IMAGE_BATCH_SIZE
    return predictor


def raw_frame(catalog_path, catalog, format: str | None = None):
    """The raw catalog rows of a prepared catalog's products (in its order), as the predictor reads them."""
    import pandas as pd  # lazy: pandas costs start-up time and the NumPy paths need none

    wanted = pd.Index(np.asarray(catalog.ids).astype(str))
    id_column = catalog.schema.id_column
    frames = []
    for chunk in CatalogReader(catalog_path, format=format):
        frame = pd.DataFrame.from_records(chunk.records)
        if id_column in frame:
            frames.append(frame[frame[id_column].astype(str).isin(wanted)])
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    frame = frame.drop_duplicates(subset=id_column, keep="first").set_index(frame[id_column].astype(str) if len(frame)
                                                                            else frame.index)
    return frame.loc[wanted].reset_index(drop=True)


def model_predictions(predictor, frame, ids, batch_size: int = 1024, progress: bool = True) -> LevelPredictions:
    """Run an export's predictor over a raw frame in batches (with a progress bar)."""
    outputs: dict[str, list] = {}
    for start in progress_bar(range(0, len(frame), batch_size), desc="evaluate", unit="batch", enabled=progress):
        batch = predictor.predict_frame(frame.iloc[start:start + batch_size])
        for key, value in batch.items():
            outputs.setdefault(key, []).append(value)
    joined = {key: np.concatenate([np.asarray(value) for value in values]) for key, values in outputs.items()
              if all(np.ndim(value) >= 1 for value in values)}
    return predictions_from_outputs(joined, predictor.taxonomy, ids)


def predictions_from_outputs(outputs: Mapping, taxonomy, ids) -> LevelPredictions:
    """:class:`LevelPredictions` from the inference wrapper's output arrays (``full_class_ids`` or
    ``node_ids``, ``confidences``, optionally ``level_k`` probabilities)."""
    def text(array):
        array = np.asarray(array, dtype=object)
        return np.vectorize(lambda cell: cell.decode("utf-8") if isinstance(cell, bytes) else cell,
                            otypes=[object])(array) if array.size else array

    if "full_class_ids" in outputs:
        full = labels_to_node_ids(outputs["full_class_ids"], taxonomy)
    else:
        full = text(outputs["node_ids"])
    exposed = text(outputs["node_ids"]) if "node_ids" in outputs else None
    num_levels = taxonomy.num_levels
    keys = [f"level_{level}" for level in range(1, num_levels + 1)]
    has_scores = all(key in outputs for key in keys)
    return LevelPredictions(np.asarray(ids), full, np.asarray(outputs["confidences"], dtype=np.float64),
                            [np.asarray(outputs[key]) for key in keys] if has_scores else None,
                            [taxonomy.classes(level) for level in range(1, num_levels + 1)] if has_scores else None,
                            exposed)


def predict_on_catalog(predictor, catalog_path, catalog, progress: bool = True) -> LevelPredictions:
    """Predictions for every product of a prepared catalog, from a run (its tf.data pipeline, which keeps the
    per-level probabilities for top-k accuracy) or an export (the raw catalog rows), ``predictor.batch_size``
    products per model call."""
    batch_size = int(predictor.batch_size)
    if getattr(predictor, "classifier", None) is not None:
        return predictions_from_outputs(predictor.predict_prepared(catalog, progress=progress),
                                        predictor.taxonomy, catalog.ids)
    return model_predictions(predictor, raw_frame(catalog_path, catalog), catalog.ids, batch_size=batch_size,
                             progress=progress)


def _model_predictions_on_split(model_path, catalog_path, schema, split, unknown_labels, split_fractions, progress,
                                calibration=None, decoding: str | None = None, batch_size: int | None = None):
    predictor = load_model(model_path, decoding, batch_size)
    if calibration is not None:  # refuse a file fitted for another tree or decoding before any prediction is made
        calibration.check_taxonomy(predictor.taxonomy, source="calibration", decoding=predictor.decoding)
    schema = schema or predictor.schema
    check_input_columns(schema, CatalogReader(catalog_path).columns, catalog_path)
    settings = run_split_settings(model_path)
    catalog, truth, n_unknown = prepare_for_evaluation(
        catalog_path, schema, predictor.taxonomy, split, unknown_labels,
        split_fractions if split_fractions is not None else settings.get("split"), progress,
        settings.get("split_salt", ""))
    predictions = predict_on_catalog(predictor, catalog_path, catalog, progress=progress)
    return predictor, catalog, truth, n_unknown, predictions


def evaluate_model(model_path, catalog_path, out_dir, schema=None, split: str = "all", calibration=None,
                   unknown_labels: str = "score", compare_dirs: Sequence = (), subtrees: Sequence = (),
                   split_fractions=None, log_mlflow: bool = True, progress: bool = True,
                   decoding: str | None = None, batch_size: int | None = None) -> dict:
    """Evaluate a run directory or an export on one split of a catalog and write the report directory.

    Args:
        model_path: run directory (``linnet train --out``) or exported SavedModel directory.
        catalog_path: labelled catalog.
        out_dir: report directory (``predictions.csv``, ``metrics.json``, ``report.md``, PNG plots).
        schema: column roles; the model's own schema by default.
        split: ``"all"`` (default: the file the user passes is scored whole), or one hash split of it,
            ``"train"``, ``"validation"`` or ``"test"`` (cut as the run's ``data.split`` cut it).
        calibration: a :class:`~linnet.evaluation.calibration.Calibration` or a calibration file; None keeps the
            model's own thresholds.
        unknown_labels: ``"score"``, ``"skip"`` or ``"ancestor"`` (see :func:`prepare_for_evaluation`).
        compare_dirs: earlier report directories to put side by side.
        subtrees: nodes (path strings) to break scores down by; every level-1 node by default.
        log_mlflow: log scores and files to the run's MLflow store when ``model_path`` is a run directory.
        decoding: ``"path"`` or ``"greedy"`` descent (see :func:`load_model`); None: the model's own.
        batch_size: products per model call (see :func:`load_model`; None: by whether the model reads images).

    Returns:
        The metrics dict written to ``metrics.json``.

    Raises:
        EvaluationError: an empty split.
        ConfigError: a calibration fitted for another taxonomy (both fingerprints named) or on the other
            decoding's confidences; a decoding an export was not made with.
    """
    if calibration is not None and not isinstance(calibration, calibration_lib.Calibration):
        calibration = calibration_lib.Calibration.load(calibration)
    predictor, catalog, truth, n_unknown, predictions = _model_predictions_on_split(
        model_path, catalog_path, schema, split, unknown_labels, split_fractions, progress, calibration, decoding,
        batch_size)
    predictions.extra = {"model": str(model_path), "split": split,
                         "unknown_labels": {"mode": unknown_labels, "count": n_unknown}}
    notes = [f"{n_unknown} product(s) carry a label outside the model's tree (--unknown-labels {unknown_labels})."]
    values = None if catalog.values is None else np.nan_to_num(catalog.values)
    is_run = (Path(model_path) / "mlflow.db").exists() or artifact_kind(model_path, required=False) == RUN
    return evaluate_predictions(out_dir, Path(model_path).name, truth, predictions, predictor.taxonomy, calibration,
                                values, subtrees, compare_dirs, notes,
                                mlflow_dir=Path(model_path) if log_mlflow and is_run else None)


def calibrate_model(model_path, catalog_path, out_path, target_precision: float = 0.95, node_targets=None,
                    schema=None, split: str = "validation", split_fractions=None, table_targets=None,
                    progress: bool = True, decoding: str | None = None,
                    batch_size: int | None = None) -> tuple[calibration_lib.Calibration, list]:
    """Fit thresholds on a validation split, write the calibration file, return it with the trade-off table.

    ``decoding`` (None: the model's own, see :func:`load_model`) is the descent whose confidences the
    thresholds are fitted on; the file records it, and a model decoding the other way refuses the file.
    """
    calibration_lib.check_target(target_precision)
    for node, target in (node_targets or {}).items():
        calibration_lib.check_target(target, f"target precision of node {node!r}")
    predictor, _, truth, _, predictions = _model_predictions_on_split(
        model_path, catalog_path, schema, split, "skip", split_fractions, progress, decoding=decoding,
        batch_size=batch_size)
    lookup = node_path_lookup(predictor.taxonomy)
    reverse = {path: node for node, path in lookup.items()}
    # Node targets may name a node by id or by path; the file stores ids.
    node_targets = {reverse.get(node, node): target for node, target in (node_targets or {}).items()}
    truth_ids = to_path_matrix(truth, reverse)
    calibration = calibration_lib.calibrate(truth_ids, predictions.full_node_ids, predictions.confidences,
                                            target_precision, node_targets,
                                            taxonomy_fingerprint=predictor.taxonomy.fingerprint())
    calibration.decoding = predictor.decoding
    table = calibration_lib.tradeoff_table(truth_ids, predictions.full_node_ids, predictions.confidences,
                                           table_targets or calibration_lib.DEFAULT_TABLE_TARGETS)
    calibration.save(out_path)
    return calibration, table
