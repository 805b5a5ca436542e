"""Apache Beam job: catalog files + images (local paths or URLs) ─► sharded TFRecords `linnet.data.read_tfrecords`
reads, with a manifest of failures.

Per catalog file (one worker each): the image URLs are fetched by `linnet.data.fetch_images` (the function behind
`linnet images fetch`: the same timeouts, retries, size and decompression-bomb limits, one manifest line per URL),
then `linnet.data.prepare_catalog_chunks` labels and splits the rows (bad rows skipped and reported) and each row
becomes the ``tf.train.Example`` `linnet.data.write_tfrecords` writes. Beam shards each split
(``OUT/train-00000-of-0000N.tfrecord`` ...) and a last step writes ``OUT/metadata.json`` (schema, taxonomy, class
counts, shard names), so the directory is what `write_tfrecords` makes and `read_tfrecords(OUT, "train")` reads.
Failures go to ``OUT/failures-*.jsonl``: bad catalog rows (file, line, id, field, problem) and images that could
not be fetched (url, status, error); the fetch manifests stay under the images directory.

Example:
    >>> with beam.Pipeline(options=pipeline_options([])) as pipeline:  # doctest: +SKIP
    ...     build_tfrecords_pipeline(pipeline, "catalog/*.csv", "records/", schema, "taxonomy.json")
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import apache_beam as beam
import numpy as np
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems

from linnet.atomic_files import write_atomically
from linnet.data.fetch import fetch_images
from linnet.data.prepare import prepare_catalog_chunks
from linnet.data.readers import CatalogReader
from linnet.data.split import SPLIT_NAMES
from linnet.data.tfrecord import METADATA_FILE

# the one tf.train.Example layout read_tfrecords parses (write_tfrecords' own serializer)
from linnet.data.tfrecord import _serialize as serialize_example
from linnet.engines.beam import WriteTFRecordShards, _local_copy
from linnet.errors import LinnetError
from linnet.taxonomy import load_taxonomy

FAILURES = "failures"
#: `linnet images fetch`'s defaults.
FETCH_LIMITS = {"workers": 8, "timeout": 10.0, "retries": 2, "backoff": 0.5, "max_bytes": 20 * 1024 * 1024,
                "max_pixels": 50_000_000}


def _urls(path: str, schema) -> list[str]:
    urls = []
    for chunk in CatalogReader(path, columns=[schema.image_column]):
        urls += [str(record.get(schema.image_column) or "").strip() for record in chunk.records]
    return [url for url in urls if url.startswith(("http://", "https://"))]


class PrepareFile(beam.DoFn):
    """A catalog file ─► ``(split, serialized Example)`` per usable row; ``counts`` (per split, per level) and
    ``failures`` (dicts) as tagged outputs."""

    def __init__(self, schema, taxonomy_path: str, image_dir: str, fetch_limits: dict, unknown_labels: str):
        self.schema, self.taxonomy_path, self.image_dir, self.fetch_limits, self.unknown_labels = (
            schema, taxonomy_path, image_dir, fetch_limits, unknown_labels)

    def setup(self):
        self.taxonomy = load_taxonomy(self.taxonomy_path)

    def process(self, path: str):
        schema = self.schema
        with _local_copy(path) as local, tempfile.TemporaryDirectory() as scratch:
            urls = _urls(local, schema) if schema.image_column else []
            if urls:
                tag = hashlib.sha256(path.encode("utf-8")).hexdigest()[:16]
                report = fetch_images(urls, self.image_dir, manifest=Path(self.image_dir) / f"manifest-{tag}.jsonl",
                                      **self.fetch_limits)
                for result in report.results.values():
                    if result.status != "ok":
                        yield beam.pvalue.TaggedOutput(FAILURES, {"file": path, "url": result.url, "status":
                                                                  result.status, "problem": result.error or ""})
            errors_path = Path(scratch) / "errors.jsonl"
            # one image root, as for `linnet images fetch` + `linnet data tfrecords`: the fetched images when the
            # file has URLs, else the schema's, else the file's folder
            image_root = self.image_dir if urls else schema.image_root or str(Path(path).parent)
            chunk_schema = type(schema).from_dict({**schema.to_dict(), "image_root": image_root}, where=path)
            try:
                for chunk in prepare_catalog_chunks(local, chunk_schema, self.taxonomy, self.unknown_labels,
                                                    errors_path=errors_path):
                    yield from self._examples(chunk)
            except LinnetError as error:  # the whole file is unusable (no usable row, missing columns)
                yield beam.pvalue.TaggedOutput(FAILURES, {"file": path, "problem": str(error)})
            if errors_path.is_file():
                for line in errors_path.read_text(encoding="utf-8").splitlines():
                    failure = json.loads(line)
                    failure.pop("record", None)
                    yield beam.pvalue.TaggedOutput(FAILURES, {**failure, "file": path})

    def _examples(self, chunk):
        fields = chunk.schema.feature_text_fields
        sizes = chunk.taxonomy.level_sizes()
        for split in SPLIT_NAMES:
            rows = np.flatnonzero(chunk.split == split)
            labels = chunk.labels[rows]
            counts = [np.bincount(labels[:, level][labels[:, level] >= 0], minlength=size).tolist()
                      for level, size in enumerate(sizes)]
            yield beam.pvalue.TaggedOutput("counts", (split, (len(rows), counts)))
            for row in rows:
                yield split, serialize_example(chunk, row, fields)


def _sum_counts(item):
    split, parts = item
    parts = list(parts)
    levels = len(parts[0][1])
    return split, (sum(rows for rows, _ in parts),
                   [np.sum([counts[level] for _, counts in parts], axis=0).tolist() for level in range(levels)])


def _write_metadata(_, out_dir: str, schema, taxonomy_path: str, shards: list, counts: list) -> str:
    taxonomy = load_taxonomy(taxonomy_path)
    names = {split: sorted(os.path.basename(name) for name in shards if os.path.basename(name).startswith(f"{split}-"))
             for split in SPLIT_NAMES}
    class_counts = dict(counts)
    metadata = {
        "format": "linnet-tfrecords", "version": 1, "text_fields": schema.feature_text_fields,
        "num_levels": taxonomy.num_levels, "has_image": schema.image_column is not None,
        "has_value": schema.value_column is not None, "schema": schema.to_dict(), "shards": names,
        "splits": {split: {"examples": int(class_counts[split][0]) if split in class_counts else 0,
                           "class_counts": class_counts[split][1] if split in class_counts else
                           [[0] * size for size in taxonomy.level_sizes()]}
                   for split in SPLIT_NAMES},
        "taxonomy": taxonomy.to_json(),
    }
    path = FileSystems.join(out_dir, METADATA_FILE)
    if FileSystems.get_scheme(path) is None:
        write_atomically(path, json.dumps(metadata))
    else:
        with FileSystems.create(path) as handle:
            handle.write(json.dumps(metadata).encode("utf-8"))
    return path


def build_tfrecords_pipeline(pipeline, catalog: str, out_dir: str, schema, taxonomy_path: str,
                             image_dir: str | None = None, fetch_limits: dict | None = None,
                             unknown_labels: str = "skip", shards_per_split: int = 4):
    """Add the job to ``pipeline``: ``OUT/<split>-*.tfrecord``, ``OUT/metadata.json``, ``OUT/failures-*.jsonl``.

    Args:
        catalog: a catalog file or glob (any Beam filesystem) with labels (the schema's category column(s)).
        schema: the catalog's `linnet.data.CatalogSchema`.
        taxonomy_path: the tree the labels are mapped to (every worker reads it).
        image_dir: where fetched URL images go (default ``OUT/images``; a path every worker can write).
        fetch_limits: `linnet.data.fetch_images` options (default: `FETCH_LIMITS`, `linnet images fetch`'s).
        unknown_labels: a label not in the tree: ``"skip"`` the row (reported in the failures), ``"ancestor"``
            (its deepest known node) or ``"error"`` (the whole file is reported as failed).
        shards_per_split: TFRecord files per split (a split with fewer records than shards gets fewer files).
    """
    image_dir = image_dir or os.path.join(out_dir, "images")
    prepared = (pipeline
                | "Begin" >> beam.Create([None])
                | "Match" >> fileio.MatchFiles(catalog)
                | "Paths" >> beam.Map(lambda metadata: metadata.path)
                | "SpreadFiles" >> beam.Reshuffle()
                | "Prepare" >> beam.ParDo(PrepareFile(schema, os.fspath(taxonomy_path), image_dir,
                                                      {**FETCH_LIMITS, **(fetch_limits or {})}, unknown_labels))
                .with_outputs("counts", FAILURES, main="examples"))
    shards = []
    for split in SPLIT_NAMES:
        written = (prepared.examples
                   | f"Only{split}" >> beam.Filter(lambda item, split=split: item[0] == split)
                   | f"Bytes{split}" >> beam.Map(lambda item: item[1])
                   | f"Write{split}" >> WriteTFRecordShards(out_dir, split, shards_per_split))
        shards.append(written)
    shard_names = shards | "AllShards" >> beam.Flatten()
    counts = prepared.counts | "CountsBySplit" >> beam.GroupByKey() | "Sum" >> beam.Map(_sum_counts)
    (prepared[FAILURES] | "FailureJson" >> beam.Map(lambda failure: json.dumps(failure, ensure_ascii=False))
     | "WriteFailures" >> beam.io.WriteToText(FileSystems.join(out_dir, FAILURES), file_name_suffix=".jsonl"))
    return (pipeline
            | "Once" >> beam.Create([None])
            | "Metadata" >> beam.Map(_write_metadata, out_dir, schema, os.fspath(taxonomy_path),
                                     beam.pvalue.AsList(shard_names), beam.pvalue.AsList(counts)))
