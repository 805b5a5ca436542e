"""``linnet data inspect|tfrecords|tfds`` and ``linnet images fetch``: look at, convert and complete a catalog."""

from __future__ import annotations

import argparse
import json

from linnet.cli.schema_options import (
    add_bad_row_options,
    add_schema_options,
    positive_int,
    schema_from_args,
)
from linnet.errors import ConfigError


def _load_taxonomy(path):
    if path is None:
        return None
    from linnet.taxonomy import load_taxonomy  # lazy: the commands' libraries load when one runs

    return load_taxonomy(path)


def _inspect(args: argparse.Namespace) -> int:
    from linnet.data.inspect import inspect_catalog

    inspection = inspect_catalog(args.catalog, schema_from_args(args), _load_taxonomy(args.taxonomy),
                                 max_rows=args.max_rows, check_images=args.check_images, progress=not args.json)
    print(json.dumps(inspection.to_dict(), indent=2) if args.json else inspection.to_markdown())
    return 0


def _prepare(args: argparse.Namespace):
    from linnet.data import prepare_catalog

    catalog = prepare_catalog(args.catalog, schema_from_args(args), _load_taxonomy(args.taxonomy),
                              unknown_labels=args.unknown_labels, errors_path=args.errors_file,
                              max_bad_rows=args.max_bad_rows, split_salt=args.split_salt, stratify=args.stratify,
                              progress=True)
    print(catalog.report.summary())
    return catalog


def _tfrecords(args: argparse.Namespace) -> int:
    from linnet.data.prepare import prepare_catalog_chunks
    from linnet.data.tfrecord import write_tfrecords

    if args.stratify:  # a stratified split needs every label at once
        catalog = _prepare(args)
        out = write_tfrecords(catalog, args.out, examples_per_shard=args.examples_per_shard)
    else:  # streamed: the catalog never sits in memory whole
        chunks = prepare_catalog_chunks(args.catalog, schema_from_args(args), _load_taxonomy(args.taxonomy),
                                        unknown_labels=args.unknown_labels, errors_path=args.errors_file,
                                        max_bad_rows=args.max_bad_rows, split_salt=args.split_salt)
        reports = []

        def remember(chunks):
            for chunk in chunks:
                reports[:] = [chunk.report]
                yield chunk

        out = write_tfrecords(remember(chunks), args.out, examples_per_shard=args.examples_per_shard)
        print(reports[0].summary())
    print(f"TFRecords written to {out} (read them with linnet.data.tfrecord.read_tfrecords)")
    return 0


def _tfds(args: argparse.Namespace) -> int:
    from linnet.data.tfds_builder import build_tfds

    builder = build_tfds(_prepare(args), args.data_dir, progress=True)
    print(f"built {builder.name} {builder.version} in {builder.data_dir}; load it offline with "
          f"tfds.load('linnet_catalog', data_dir={str(args.data_dir)!r})")
    return 0


def _add_preparation_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("catalog", help="catalog file (.csv, .tsv, .jsonl, .parquet)")
    parser.add_argument("--taxonomy", help="label with this tree (default: infer it from the catalog)")
    parser.add_argument("--unknown-labels", choices=["error", "skip", "ancestor"], default="error",
                        help="labels not in the tree: stop, leave the row out, or use the deepest known ancestor")
    add_bad_row_options(parser)
    parser.add_argument("--split-salt", default="", help="change for another deterministic split")
    parser.add_argument("--stratify", action="store_true", help="split per leaf class")
    add_schema_options(parser)


def _fetch(args: argparse.Namespace) -> int:
    from linnet.data.fetch import fetch_images
    from linnet.data.readers import CatalogReader

    schema = schema_from_args(args)
    if not schema.image_column:
        raise ConfigError("linnet images fetch needs --image-column (the column holding image URLs)")
    reader = CatalogReader(args.catalog, columns=[schema.image_column])
    reader.require([schema.image_column])

    def urls():
        for chunk in reader:
            for record in chunk.records:
                value = record.get(schema.image_column)
                # every URL gets a manifest line: file://, ftp:// and the like as "refused"
                if isinstance(value, str) and "://" in value:
                    yield value.strip()

    report = fetch_images(urls(), args.out, workers=args.workers, timeout=args.timeout, retries=args.retries,
                          backoff=args.backoff, max_bytes=args.max_bytes, max_pixels=args.max_pixels,
                          manifest=args.manifest, progress=True, allow_private=args.allow_private_addresses)
    print(report.table())
    print(f"\nmanifest: {report.manifest}\nuse --image-root {args.out} with the same --image-column to train on them")
    return 0


def add_fetch_limit_options(parser: argparse.ArgumentParser) -> None:
    """The download limits of `linnet.data.fetch_images` (``linnet images fetch``, ``linnet beam build-tfrecords``)."""
    parser.add_argument("--workers", type=positive_int, default=8, help="parallel downloads (default: 8)")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds per request, all of it: connect, headers and body (default: 10)")
    parser.add_argument("--allow-private-addresses", action="store_true",
                        help="also fetch from loopback, link-local and private addresses (intranets, tests)")
    parser.add_argument("--retries", type=int, default=2, help="retries after timeouts, 429 and 5xx (default: 2)")
    parser.add_argument("--backoff", type=float, default=0.5, help="first retry delay in seconds, doubling (default: 0.5)")
    parser.add_argument("--max-bytes", type=int, default=20 * 1024 * 1024, help="largest download (default: 20 MiB)")
    parser.add_argument("--max-pixels", type=int, default=50_000_000,
                        help="largest image in pixels, a decompression-bomb guard (default: 50M)")


def register(subparsers) -> None:
    data = subparsers.add_parser("data", help="look at a catalog before training")
    data_commands = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    data_commands.required = True
    inspect = data_commands.add_parser(
        "inspect", help="rows, label coverage per level, unknown labels, imbalance, images, text lengths")
    inspect.add_argument("catalog", help="catalog file (.csv, .tsv, .jsonl, .parquet)")
    inspect.add_argument("--taxonomy", help="check labels against this tree (default: infer it from the catalog)")
    inspect.add_argument("--max-rows", type=int, help="read only the first N rows")
    inspect.add_argument("--check-images", type=int, default=0, metavar="N",
                         help="open and verify up to N image files (default: only check they exist)")
    inspect.add_argument("--json", action="store_true", help="print JSON instead of Markdown tables")
    add_schema_options(inspect)
    inspect.set_defaults(func=_inspect)

    records = data_commands.add_parser("tfrecords", help="write a prepared catalog as sharded TFRecords")
    _add_preparation_options(records)
    records.add_argument("--out", required=True, help="output directory")
    records.add_argument("--examples-per-shard", type=positive_int, default=10_000, help="shard size (default: 10000)")
    records.set_defaults(func=_tfrecords)
    tfds_parser = data_commands.add_parser("tfds", help="build a TensorFlow Datasets dataset (linnet_catalog)")
    _add_preparation_options(tfds_parser)
    tfds_parser.add_argument("--data-dir", required=True, help="TFDS data_dir to build into")
    tfds_parser.set_defaults(func=_tfds)

    images = subparsers.add_parser("images", help="download catalog images")
    image_commands = images.add_subparsers(dest="images_command", metavar="SUBCOMMAND")
    image_commands.required = True
    fetch = image_commands.add_parser("fetch", help="download the image URLs of a catalog (resumable)")
    fetch.add_argument("catalog", help="catalog file whose --image-column holds URLs")
    fetch.add_argument("--out", required=True, help="directory for the images and manifest.jsonl")
    add_fetch_limit_options(fetch)
    fetch.add_argument("--manifest", help="manifest path (default: OUT/manifest.jsonl)")
    add_schema_options(fetch)
    fetch.set_defaults(func=_fetch)
