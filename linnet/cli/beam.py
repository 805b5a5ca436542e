"""``linnet beam predict|embed|build-tfrecords``: the batch jobs on Apache Beam (`linnet.engines.beam`), on any runner.

Flags this module does not know are Beam's pipeline options and go to the runner unchanged
(``--runner DataflowRunner --project P --region R --temp_location gs://...``); without ``--runner`` the job
runs in this process (Beam's FnApiRunner). Beam is imported when a command runs, not when the parser is built.
"""

from __future__ import annotations

import argparse

from linnet.cli.data import add_fetch_limit_options
from linnet.cli.schema_options import (
    add_schema_options,
    export_schema_from_args,
    positive_int,
    schema_from_args,
)


class _PipelineArgsParser(argparse.ArgumentParser):
    """A sub-command parser that keeps the flags it does not know as ``pipeline_args`` (Beam's options)."""

    def __init__(self, *args, **kwargs):
        kwargs["allow_abbrev"] = False  # a Beam flag must never be taken for a prefix of ours
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        namespace.pipeline_args = list(getattr(namespace, "pipeline_args", None) or []) + list(extras)
        return namespace, []


def _run(args, job, noun: str) -> int:
    from linnet.engines import beam  # lazy: Apache Beam loads only when a job runs

    state = beam.run_job(getattr(beam, job), args.model, args.catalog, args.out, args.pipeline_args,
                         schema=export_schema_from_args(args), format=args.catalog_format, output_format=args.format,
                         batch_size=args.batch_size)
    print(f"beam {noun}: {state}; {noun} and errors shards under {args.out}")
    return 0


def run_predict(args) -> int:
    return _run(args, "predict_pipeline", "predictions")


def run_embed(args) -> int:
    return _run(args, "embed_pipeline", "embeddings")


def run_build_tfrecords(args) -> int:
    import apache_beam  # lazy: as in _run

    from linnet.engines import beam, beam_tfrecords  # lazy: as in _run

    pipeline = apache_beam.Pipeline(options=beam.pipeline_options(args.pipeline_args))
    limits = {"workers": args.workers, "timeout": args.timeout, "retries": args.retries, "backoff": args.backoff,
              "max_bytes": args.max_bytes, "max_pixels": args.max_pixels,
              "allow_private": args.allow_private_addresses}
    beam_tfrecords.build_tfrecords_pipeline(pipeline, args.catalog, args.out, schema_from_args(args), args.taxonomy,
                                            image_dir=args.image_dir, fetch_limits=limits,
                                            unknown_labels=args.unknown_labels, shards_per_split=args.shards)
    state = pipeline.run().wait_until_finish()
    print(f"beam build-tfrecords: {state}; TFRecords and metadata.json under {args.out} "
          f"(read them with linnet.data.read_tfrecords), failures in {args.out}/failures-*.jsonl")
    return 0


def _add_job(actions, name: str, help: str, formats: list[str], run) -> argparse.ArgumentParser:
    parser = actions.add_parser(name, help=help, description=f"{help}. Unknown flags are Beam pipeline options "
                                "(--runner DataflowRunner|FlinkRunner|SparkRunner ...); docs/scale.md has full commands.")
    parser.add_argument("--model", required=True, metavar="EXPORT", help="export version directory (linnet export)")
    parser.add_argument("--catalog", required=True, metavar="PATH_OR_GLOB",
                        help="catalog file(s): CSV/TSV/JSONL/Parquet/TFRecord, local or any Beam filesystem (gs://, "
                             "s3://, ...)")
    parser.add_argument("--catalog-format", choices=["csv", "tsv", "jsonl", "parquet", "tfrecord"],
                        help="catalog format (default: from each file's name; *.tfrecord: tf.train.Example records, "
                             "build-tfrecords' among them)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory of the shards")
    parser.add_argument("--format", choices=formats, default="parquet", help="shard format (default parquet)")
    parser.add_argument("--batch-size", type=positive_int, default=256, help="rows per model call (default 256)")
    add_schema_options(parser)  # default: the export's schema
    parser.set_defaults(func=run)
    return parser


def register(subparsers) -> None:
    group = subparsers.add_parser("beam", help="batch jobs on Apache Beam (predict, embed, build-tfrecords)",
                                  description="Run LinNét's batch jobs as Apache Beam pipelines (pip install "
                                              "'linnet[beam]').")
    actions = group.add_subparsers(dest="job", metavar="JOB", parser_class=_PipelineArgsParser)
    actions.required = True
    _add_job(actions, "predict", "categories for every product of a catalog, as sharded files", ["parquet", "jsonl"],
             run_predict)
    _add_job(actions, "embed", "one embedding per product of a catalog, as sharded files",
             ["parquet", "jsonl", "tfrecord"], run_embed)
    records = actions.add_parser("build-tfrecords", help="catalog + images (paths or URLs) to sharded TFRecords",
                                 description="Fetch the image URLs of each catalog file (linnet images fetch's limits), "
                                             "label and split the rows, write <split>-*.tfrecord, metadata.json and "
                                             "failures-*.jsonl. Unknown flags are Beam pipeline options.")
    records.add_argument("--catalog", required=True, metavar="PATH_OR_GLOB", help="labelled catalog file(s)")
    records.add_argument("--taxonomy", required=True, metavar="FILE", help="the tree the labels map to")
    records.add_argument("--out", required=True, metavar="DIR", help="output directory")
    records.add_argument("--image-dir", metavar="DIR", help="where fetched images go (default: OUT/images)")
    records.add_argument("--unknown-labels", choices=["skip", "ancestor", "error"], default="skip",
                         help="a label not in the tree: leave the row out (default), its deepest known node, or "
                              "fail the file")
    records.add_argument("--shards", type=positive_int, default=4, help="TFRecord files per split (default: 4)")
    add_fetch_limit_options(records)  # per catalog file
    add_schema_options(records)
    records.set_defaults(func=run_build_tfrecords)
