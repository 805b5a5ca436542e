"""``linnet train``: fit a model on a catalog and write a run directory.

Nothing here imports TensorFlow until the command runs, and then only after the catalog's columns, the
taxonomy file and the config file have been checked (`_check_inputs`): a wrong flag fails in a second.
"""

from __future__ import annotations

import argparse
import gc
from pathlib import Path

from linnet.cli.schema_options import (
    add_bad_row_options,
    add_schema_options,
    positive_int,
    schema_from_args,
    schema_or_none,
)
from linnet.config_fields import config_from_yaml
from linnet.data.readers import CatalogReader
from linnet.data.schema import CatalogSchema
from linnet.data.tfrecord import is_tfrecord_catalog, is_url, tfrecord_catalog_schema
from linnet.errors import ConfigError


def register(subparsers) -> None:
    """Adds ``linnet train`` to the top-level parser."""
    parser = subparsers.add_parser(
        "train",
        help="train a model on a catalog and write a run directory",
        description="Train the hierarchical classifier on a catalog. Writes RUN_DIR with config.yaml, schema.yaml, "
        "taxonomy.json, model.keras, metrics.json, mlflow.db and README.md.",
    )
    parser.add_argument("--catalog", required=True, metavar="FILE", help="catalog file (CSV/TSV/JSONL/Parquet), or a "
                        "TFRecord directory (linnet data tfrecords, linnet beam build-tfrecords) or glob of its shards")
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory to create (never overwritten)")
    parser.add_argument("--config", metavar="YAML", help="training config (default: built-in defaults, "
                        "the same as training/configs/default.yaml)")
    parser.add_argument("--validation", metavar="FILE",
                        help="labelled catalog to validate on (default: a 10%% split of --catalog; with it, all of "
                             "--catalog trains)")
    parser.add_argument("--taxonomy", metavar="FILE", help="taxonomy file (default: infer the tree from the catalog)")
    parser.add_argument("--epochs", type=positive_int, metavar="N", help="override training.epochs")
    parser.add_argument("--resume", action="store_true", help="continue an unfinished run in --out")
    parser.add_argument("--max-rows", type=positive_int, metavar="N", help="read at most N catalog rows")
    parser.add_argument("--strategy", choices=["default", "mirrored", "multi_worker"],
                        help="override training.strategy (multi_worker reads TF_CONFIG; see training/README.md)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_bad_row_options(parser)
    add_schema_options(parser)
    parser.set_defaults(func=_train)


def _config_mapping(data):
    if not isinstance(data, dict):
        raise ConfigError(f"must hold a mapping of config sections, got {type(data).__name__}")
    return data


def _check_inputs(args: argparse.Namespace, schema: CatalogSchema):
    """What can be checked without TensorFlow: the catalog (readable, not empty, every column the schema
    names), the config file (readable YAML mapping) and the taxonomy file (read here and passed on)."""
    if not is_tfrecord_catalog(args.catalog):  # records were checked as they were written
        CatalogReader(args.catalog).require(schema.columns())
    if args.config:
        config_from_yaml(args.config, _config_mapping)
    if args.taxonomy:
        from linnet.taxonomy import load_taxonomy  # lazy: only train with --taxonomy reads one

        return load_taxonomy(args.taxonomy)
    return None


def _train(args: argparse.Namespace) -> int:
    if is_tfrecord_catalog(args.catalog):
        # TFRecords carry the schema they were written with; schema flags, when given, must agree with it
        schema = tfrecord_catalog_schema(args.catalog, schema_or_none(args))
    else:
        schema = schema_from_args(args)
        if not schema.has_category:
            # Without category flags, read the tree from a column named "category".
            schema = schema_from_args(args, default=CatalogSchema(category_column="category"))
    taxonomy = _check_inputs(args, schema)
    from linnet.training.trainer import resolve_config, train  # lazy: loads TensorFlow once the inputs are checked

    # TensorFlow and Keras are millions of long-lived objects; frozen, the collector's full passes during
    # tracing skip them (tour: 2.5 -> 1.3 s of garbage collection).
    gc.freeze()

    config = resolve_config(args.config, args.epochs)
    if args.strategy:
        config = resolve_config({**config.to_dict(), "training": {**config.to_dict()["training"],
                                                                   "strategy": args.strategy}})
    train(
        args.catalog if is_url(args.catalog) else Path(args.catalog),  # a gs:// URL of records stays a URL
        Path(args.out), schema=schema, config=config, taxonomy=taxonomy,
        resume=args.resume, max_rows=args.max_rows, progress=not args.quiet,
        errors_path=args.errors_file, max_bad_rows=args.max_bad_rows,
        validation_path=Path(args.validation) if args.validation else None,
    )
    return 0
