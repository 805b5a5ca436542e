"""``linnet spark predict|stream``: classify catalog files with Apache Spark (`linnet.engines.spark`).

``--master local[2]`` runs here; on a cluster, submit this command's module with ``spark-submit`` (docs/scale.md).
Spark is imported when a command runs, not when the parser is built.
"""

from __future__ import annotations

import argparse

from linnet.cli.schema_options import (
    add_schema_options,
    export_schema_from_args,
    positive_int,
)


def run_predict(args) -> int:
    from linnet.engines import spark  # lazy: Spark starts only when a job runs

    session = spark.local_session(args.master) if args.master else spark.local_session_or_cluster()
    summary = spark.predict_catalog_spark(session, args.model, args.catalog, args.out, export_schema_from_args(args),
                                          format=args.catalog_format, batch_size=args.batch_size)
    print(f"{summary['rows']} products predicted, {summary['errors']} error rows\n"
          f"predictions: {summary['out']}/predictions\nerrors: {summary['out']}/errors")
    return 0


def run_stream(args) -> int:
    from linnet.engines import spark  # lazy: as in run_predict

    session = spark.local_session(args.master) if args.master else spark.local_session_or_cluster()
    query = spark.classify_stream(session, args.model, args.source, args.out, args.checkpoint, export_schema_from_args(args),
                                  format=args.source_format, batch_size=args.batch_size,
                                  available_now=args.every is None, processing_time=args.every)
    if args.every is not None:
        query.awaitTermination()
    print(f"classified the new files of {args.source} into {args.out} (checkpoint {args.checkpoint})")
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="EXPORT", help="export version directory (linnet export)")
    parser.add_argument("--master", metavar="URL", help="Spark master, e.g. local[2] (default: spark-submit's, "
                                                        "else local[*])")
    parser.add_argument("--batch-size", type=positive_int, default=256, help="rows per model call (default 256)")
    add_schema_options(parser)  # default: the export's schema


def register(subparsers) -> None:
    group = subparsers.add_parser("spark", help="batch and streaming jobs on Apache Spark (predict, stream)",
                                  description="Classify catalogs with Apache Spark (pip install 'linnet[spark]').")
    actions = group.add_subparsers(dest="job", metavar="JOB")
    actions.required = True
    predict = actions.add_parser("predict", help="categories for every row of catalog files (Parquet out)",
                                 description="OUT/predictions: one row per catalog row (linnet predict's columns); "
                                             "OUT/errors: id, field, problem.")
    _common(predict)
    predict.add_argument("--catalog", required=True, metavar="PATH", help="catalog file, directory or glob")
    predict.add_argument("--catalog-format", choices=["csv", "tsv", "jsonl", "parquet"],
                         help="catalog format (default: from the name)")
    predict.add_argument("--out", required=True, metavar="DIR", help="output directory")
    predict.set_defaults(func=run_predict)
    stream = actions.add_parser("stream", help="classify catalog files as they land in a folder (Structured "
                                               "Streaming, checkpointed)",
                                description="File source -> LinNét UDF -> Parquet sink. Without --every: process "
                                            "the files not seen yet and stop (availableNow).")
    _common(stream)
    stream.add_argument("--source", required=True, metavar="DIR", help="folder new catalog files land in")
    stream.add_argument("--source-format", choices=["csv", "tsv", "jsonl", "parquet"], default="jsonl",
                        help="format of the landing files (default jsonl)")
    stream.add_argument("--out", required=True, metavar="DIR", help="Parquet output folder")
    stream.add_argument("--checkpoint", required=True, metavar="DIR", help="checkpoint folder (which files are done)")
    stream.add_argument("--every", metavar="INTERVAL", help="keep running, one micro-batch per interval "
                                                            "(e.g. '1 minute')")
    stream.set_defaults(func=run_stream)
