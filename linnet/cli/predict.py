"""``linnet predict``: categories for every row of a catalog file, from a run directory or an export."""

from __future__ import annotations

from pathlib import Path

from linnet.cli.schema_options import add_schema_options, positive_int, schema_from_args


def run_predict(args) -> int:
    from linnet.serving.predict import load_predictor, predict_catalog  # lazy: loads TensorFlow when the command runs

    predictor = load_predictor(args.model, batch_size=args.batch_size)
    schema = schema_from_args(args, default=predictor.schema)
    errors = args.errors_file or str(Path(args.out).with_suffix("")) + ".errors.csv"
    summary = predict_catalog(predictor, args.catalog, schema, args.out, errors, batch_size=args.batch_size,
                              resume=not args.restart, progress=not args.quiet,
                              allow_missing_text=args.allow_missing_text)
    resumed = f" ({summary['resumed']} done before, resumed)" if summary["resumed"] else ""
    print(f"{summary['rows']} products predicted{resumed}, {summary['errors']} bad rows, "
          f"{summary['image_errors']} unusable images (column image_error)")
    print(f"predictions: {summary['out']}" + (f"\nbad rows: {summary['errors_file']}" if summary["errors_file"] else ""))
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict", help="predict categories for a catalog file",
        description="Stream a catalog through a run directory or an exported SavedModel and write one line per "
                    "product (prediction or error). Resumes from OUT.partial after an interruption.")
    parser.add_argument("--model", required=True, metavar="DIR", help="run directory or export version directory")
    parser.add_argument("--catalog", required=True, metavar="FILE", help="CSV/TSV/JSONL/Parquet catalog")
    parser.add_argument("--out", required=True, metavar="FILE", help="predictions CSV")
    parser.add_argument("--errors-file", metavar="FILE", help="bad rows CSV (default: OUT without suffix + "
                                                              ".errors.csv)")
    parser.add_argument("--batch-size", type=positive_int, default=256, help="products per model call (default: 256)")
    parser.add_argument("--restart", action="store_true", help="ignore OUT.partial and start over")
    parser.add_argument("--allow-missing-text", action="store_true",
                        help="predict even when the catalog lacks some of the model's text columns (read as empty); "
                             "by default such a catalog is refused, naming the columns expected and found")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_schema_options(parser)  # default: the model's own schema.yaml
    parser.set_defaults(func=run_predict)
