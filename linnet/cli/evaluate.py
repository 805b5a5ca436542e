"""``linnet evaluate``, ``linnet calibrate`` and ``linnet baseline``: score models, fit thresholds, run baselines."""

from __future__ import annotations

import argparse

from linnet.cli.schema_options import (
    add_schema_options,
    schema_from_args,
    schema_or_none,
)
from linnet.inference.calibration_file import DECODINGS


def _node_target(text: str) -> tuple[str, float]:
    node, separator, value = text.rpartition("=")
    if not separator or not node:
        raise argparse.ArgumentTypeError(f"expected NODE=PRECISION, got {text!r}")
    try:
        return node.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NODE=PRECISION with a number, got {text!r}") from None


def _add_batch_size_option(parser) -> None:
    parser.add_argument("--batch-size", type=int, default=None, metavar="N",
                        help="products per model call; bounds memory (default: 256, or 32 for a model that reads "
                             "images)")


def _add_decoding_option(parser) -> None:
    parser.add_argument("--decoding", choices=DECODINGS, default=None,
                        help="descent of a run directory's model (default: greedy; an export keeps the one it was "
                             "exported with). Confidences differ between the two, so calibrate with the decoding "
                             "you export")


def run_evaluate(args) -> int:
    from linnet.evaluation.evaluate import (
        evaluate_model,  # lazy: loads TensorFlow when the command runs
    )
    from linnet.evaluation.summaries import evaluation_summary

    metrics = evaluate_model(args.model, args.catalog, args.out, schema=schema_or_none(args), split=args.split,
                             calibration=args.calibration, unknown_labels=args.unknown_labels,
                             compare_dirs=args.compare or (), subtrees=args.subtree or (),
                             log_mlflow=not args.no_mlflow, progress=not args.quiet, decoding=args.decoding,
                             batch_size=args.batch_size)
    print(evaluation_summary(metrics, args.out))
    return 0


def run_calibrate(args) -> int:
    from linnet.evaluation.evaluate import calibrate_model
    from linnet.evaluation.summaries import calibration_summary

    calibration, table = calibrate_model(args.model, args.catalog, args.out, args.target_precision,
                                         dict(args.node_target or []), schema=schema_or_none(args), split=args.split,
                                         progress=not args.quiet, decoding=args.decoding, batch_size=args.batch_size)
    print(calibration_summary(calibration, table, args.target_precision, args.out))
    return 0


def run_baseline(args) -> int:
    from linnet.evaluation.evaluate import evaluate_baseline
    from linnet.evaluation.summaries import baseline_summary

    metrics = evaluate_baseline(args.kind, args.catalog, args.out, schema_from_args(args),
                                subtrees=args.subtree or (), compare_dirs=args.compare or (),
                                calibration_target=args.target_precision, progress=not args.quiet,
                                validation_path=args.validation, test_path=args.test, n_jobs=args.n_jobs)
    print(baseline_summary(metrics, args.out))
    return 0


def register(subparsers) -> None:
    evaluate = subparsers.add_parser(
        "evaluate", help="score a run or an export on a labelled catalog and write a report",
        description="Write predictions.csv, metrics.json, report.md and PNG plots for a catalog (or one split of it).")
    evaluate.add_argument("--model", required=True, metavar="RUN_OR_EXPORT", help="run directory or exported model")
    evaluate.add_argument("--catalog", required=True, help="labelled catalog file")
    evaluate.add_argument("--out", required=True, metavar="DIR", help="report directory")
    evaluate.add_argument("--split", default="all", choices=["train", "validation", "test", "all"],
                          help="score one hash split of --catalog (default: all of it)")
    evaluate.add_argument("--calibration", metavar="FILE", help="thresholds from 'linnet calibrate'")
    evaluate.add_argument("--unknown-labels", default="score", choices=["score", "skip", "ancestor"],
                          help="labels outside the model's tree: score as misses (default), skip, or cut to the "
                               "deepest known ancestor")
    evaluate.add_argument("--compare", nargs="+", metavar="DIR", help="other report directories to put side by side")
    evaluate.add_argument("--subtree", action="append", metavar="NODE", help="break scores down under this node")
    evaluate.add_argument("--no-mlflow", action="store_true", help="do not log to the run's MLflow store")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_decoding_option(evaluate)
    _add_batch_size_option(evaluate)
    add_schema_options(evaluate)
    evaluate.set_defaults(func=run_evaluate)

    calibrate = subparsers.add_parser(
        "calibrate", help="fit per-level confidence thresholds that reach a target precision",
        description="Fit thresholds on a validation split; write the calibration file the inference and export read.")
    calibrate.add_argument("--model", required=True, metavar="RUN_OR_EXPORT", help="run directory or exported model")
    calibrate.add_argument("--catalog", required=True, help="labelled catalog file (the one the run was trained on)")
    calibrate.add_argument("--out", required=True, metavar="FILE", help="calibration JSON to write")
    calibrate.add_argument("--target-precision", type=float, default=0.95, help="precision every level must reach")
    calibrate.add_argument("--node-target", type=_node_target, action="append", metavar="NODE=P",
                           help="a stricter precision for a node and its subtree (repeatable)")
    calibrate.add_argument("--split", default="validation", choices=["train", "validation", "test", "all"],
                           help="which split to fit the thresholds on (default: validation)")
    calibrate.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_decoding_option(calibrate)
    _add_batch_size_option(calibrate)
    add_schema_options(calibrate)
    calibrate.set_defaults(func=run_calibrate)

    baseline = subparsers.add_parser(
        "baseline", help="train and score a TF-IDF or hiclass baseline on the same split and metrics",
        description="Train on the train (+validation) split, score the test split, write the same report as evaluate. "
                    "With --test FILE: train on all of --catalog (and --validation FILE) and score all of FILE.")
    baseline.add_argument("--catalog", required=True, help="labelled catalog file")
    baseline.add_argument("--validation", metavar="FILE",
                          help="labelled catalog for validation (thresholds with --target-precision; else it trains too)")
    baseline.add_argument("--test", metavar="FILE", help="labelled catalog to score whole (default: --catalog's test split)")
    baseline.add_argument("--out", required=True, metavar="DIR", help="report directory (the same files as evaluate)")
    baseline.add_argument("--kind", default="tfidf", choices=["tfidf", "hiclass"],
                          help="TF-IDF + LinearSVC per level, or hiclass's local classifier per parent node "
                               "(default: tfidf)")
    baseline.add_argument("--target-precision", type=float, default=None,
                          help="fit thresholds on the validation split for this precision and apply them")
    baseline.add_argument("--compare", nargs="+", metavar="DIR", help="other report directories to put side by side")
    baseline.add_argument("--subtree", action="append", metavar="NODE", help="break scores down under this node")
    baseline.add_argument("--quiet", action="store_true", help="no progress bar")
    baseline.add_argument("--n-jobs", type=int, default=-1, metavar="N",
                          help="cores that fit the linear classifiers in parallel (-1: all)")
    add_schema_options(baseline)
    baseline.set_defaults(func=run_baseline)
