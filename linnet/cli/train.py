"""``linnet train``: fit a model on a catalog and write a run directory.

Nothing here imports TensorFlow until the command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from linnet.cli.schema_options import add_schema_options, schema_from_args
from linnet.data.schema import CatalogSchema


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def register(subparsers) -> None:
    """Adds ``linnet train`` to the top-level parser."""
    parser = subparsers.add_parser(
        "train",
        help="train a model on a catalog and write a run directory",
        description="Train the hierarchical classifier on a catalog. Writes RUN_DIR with config.yaml, schema.yaml, "
        "taxonomy.json, model.keras, metrics.json, mlflow.db and README.md.",
    )
    parser.add_argument("--catalog", required=True, metavar="FILE", help="catalog file (CSV/TSV/JSONL/Parquet)")
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory to create (never overwritten)")
    parser.add_argument("--config", metavar="YAML", help="training config (default: built-in defaults, "
                        "the same as training/configs/default.yaml)")
    parser.add_argument("--validation", metavar="FILE",
                        help="labelled catalog to validate on (default: a 10%% split of --catalog; with it, all of "
                             "--catalog trains)")
    parser.add_argument("--taxonomy", metavar="FILE", help="taxonomy file (default: infer the tree from the catalog)")
    parser.add_argument("--epochs", type=_positive_int, metavar="N", help="override training.epochs")
    parser.add_argument("--resume", action="store_true", help="continue an unfinished run in --out")
    parser.add_argument("--max-rows", type=_positive_int, metavar="N", help="read at most N catalog rows")
    parser.add_argument("--strategy", choices=["default", "mirrored", "multi_worker"],
                        help="override training.strategy (multi_worker reads TF_CONFIG; see training/README.md)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_schema_options(parser)
    parser.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    from linnet.training.trainer import resolve_config, train  # lazy: loads TensorFlow when the command runs

    schema = schema_from_args(args)
    if not schema.has_category:
        # Without category flags, read the tree from a column named "category".
        schema = schema_from_args(args, default=CatalogSchema(category_column="category"))
    config = resolve_config(args.config, args.epochs)
    if args.strategy:
        config = resolve_config({**config.to_dict(), "training": {**config.to_dict()["training"],
                                                                   "strategy": args.strategy}})
    train(
        Path(args.catalog), Path(args.out), schema=schema, config=config, taxonomy=args.taxonomy,
        resume=args.resume, max_rows=args.max_rows, progress=not args.quiet,
        validation_path=Path(args.validation) if args.validation else None,
    )
    return 0
