"""Scale-out: products/s of the Beam and Spark jobs against the raw SavedModel loop, and their peak memory as rows grow.

The model is `linnet.model.build_model` with the default config (hashed n-grams + wide path, untrained: speed does
not depend on the weights) on the fashion catalogue's category tree, exported once. The catalog is synthetic and
flat (``id``, ``title``), built by cycling the catalogue's real product titles to the row count asked for.

Throughput (batch 256, one catalog of ``LINNET_BENCH_SCALE_ROWS`` rows, default 100,000: at 20,000 rows, about 3 s of
raw work, a Beam job's fixed ~2 s of pipeline set-up was a third of what was timed; users run millions). Every job
runs ``LINNET_BENCH_SCALE_ROUNDS`` times (default 3), the four back to back in each round; the table gives the median
products/s, the median over rounds of the ratio to the same round's raw loop, and the ratios' range:

- raw SavedModel loop: ``serving_default`` on pre-built batches of 256 titles, nothing else (the ceiling);
- ``linnet predict`` (`linnet.serving.predict.predict_catalog`, reading the JSONL file, writing CSV);
- Beam: `linnet.engines.beam.predict_pipeline` on the in-process FnApiRunner with its default of one worker thread
  per core (reading, one row per id, RunInference, Parquet shards), after a warm-up job so the worker has TensorFlow
  and the export loaded (the "cold job" column has the first job's wall time, start-up included);
- Spark ``local[2]``: `linnet.engines.spark.predict_catalog_spark` (JSON reader, mapInArrow, Parquet), also
  after a warm-up job (Python workers are reused and keep the export loaded). The warm-up catalog has
  ``WARM_ROWS`` rows, enough for Spark to read it as two partitions, so both Python workers are warm.

The raw loop is one thread calling the model; the engines may use both cores (the model call releases the GIL),
so on an idle machine a ratio above 1 is possible, and on a loaded one the engines lose most.

Goal (issue 25): Beam and Spark at batch 256 reach at least 0.8 of the raw loop.

Memory: each command (``linnet beam predict``, ``linnet spark predict --master local[2]``) runs in a child process at
``LINNET_BENCH_SCALE_RSS_ROWS`` rows (default ``100000,1000000``); its process tree is sampled every 0.2 s (Spark's
JVM and Python workers included). Peak RSS should stay flat as rows grow. An empty ``LINNET_BENCH_SCALE_RSS_ROWS``
skips the memory table (the throughput rounds alone, to repeat them).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import FASHION

BATCH = 256
WARM_ROWS = 4096
THROUGHPUT_ROWS = int(os.environ.get("LINNET_BENCH_SCALE_ROWS", "100000"))
ROUNDS = int(os.environ.get("LINNET_BENCH_SCALE_ROUNDS", "3"))
RSS_ROWS = [int(value) for value in os.environ.get("LINNET_BENCH_SCALE_RSS_ROWS", "100000,1000000").split(",") if value]



def _log(message: str) -> None:
    print(f"scale benchmark: {message}", file=sys.stderr, flush=True)


def _fashion_rows() -> tuple[list[str], list[str]]:
    with open(FASHION / "styles.csv", newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["productDisplayName"] and row["category_path"]]
    return [row["productDisplayName"] for row in rows], sorted({row["category_path"] for row in rows})


def write_catalog(path: Path, titles: list[str], rows: int) -> Path:
    """A flat JSONL catalog of ``rows`` products, cycling the real titles (ids unique)."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps({"id": f"p{index}", "title": titles[index % len(titles)]}) + "\n"
                          for index in range(rows))
    return path


def _export(work: Path, paths: list[str]) -> Path:
    from linnet.data import CatalogSchema
    from linnet.model import ModelConfig, build_model
    from linnet.serving.export import export_model
    from linnet.taxonomy import Taxonomy

    taxonomy = Taxonomy.from_paths(paths)
    model = build_model(ModelConfig(), taxonomy, text_fields=["title"])
    schema = CatalogSchema(id_column="id", text_columns=["title"], category_column=None)
    return export_model(model, taxonomy, work / "exports", name="scale", schema=schema, warmup_rows=1)


def _timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _throughput(export_dir: Path, titles: list[str], work: Path) -> list[dict]:
    import statistics

    import tensorflow as tf

    from linnet.engines import beam, spark
    from linnet.engines.signature_batches import load_export
    from linnet.serving.predict import load_predictor, predict_catalog

    rows = THROUGHPUT_ROWS
    catalog = write_catalog(work / "catalog.jsonl", titles, rows)
    (work / "warm").mkdir()
    warm = write_catalog(work / "warm" / "catalog.jsonl", titles, WARM_ROWS)
    load = os.getloadavg()[0]

    serve = load_export(str(export_dir)).saved_model.signatures["serving_default"]
    batches = [tf.constant(titles_batch) for titles_batch in
               ([titles[i % len(titles)] for i in range(start, min(start + BATCH, rows))]
                for start in range(0, rows, BATCH))]
    serve(title=batches[0])

    def raw_loop():
        for batch in batches:
            {name: value.numpy() for name, value in serve(title=batch).items()}

    predictor = load_predictor(export_dir, batch_size=BATCH)
    predict_catalog(predictor, warm, predictor.schema, work / "warm.csv", work / "warm.errors.csv", progress=False)
    beam_options = {"batch_size": BATCH}
    _log("Beam (in-process FnApiRunner): cold job")
    beam_cold = _timed(lambda: beam.run_job(beam.predict_pipeline, export_dir, str(warm), str(work / "beam-warm"),
                                            **beam_options))
    session = spark.local_session("local[2]", "linnet-bench-scale")
    rates: dict[str, list[float]] = {}
    try:
        _log("Spark local[2]: cold job")
        spark_cold = _timed(lambda: spark.predict_catalog_spark(session, export_dir, str(warm),
                                                                str(work / "spark-warm"), batch_size=BATCH))
        jobs = {
            "raw": raw_loop,
            "predict": lambda: predict_catalog(predictor, catalog, predictor.schema, work / "p.csv",
                                               work / "p.errors.csv", batch_size=BATCH, progress=False),
            "beam": lambda: beam.run_job(beam.predict_pipeline, export_dir, str(catalog),
                                         str(work / f"beam-{len(rates.get('beam', []))}"), **beam_options),
            "spark": lambda: spark.predict_catalog_spark(session, export_dir, str(catalog),
                                                         str(work / f"spark-{len(rates.get('spark', []))}"),
                                                         batch_size=BATCH),
        }
        # Rounds of every job back to back: a ratio compares an engine with the raw loop of its own round, so a
        # change of the machine's load between rounds moves both.
        for number in range(1, ROUNDS + 1):
            for name, job in jobs.items():
                _log(f"round {number}/{ROUNDS}: {name}, {rows} rows")
                rates.setdefault(name, []).append(rows / _timed(job))
    finally:
        session.stop()

    def row(engine: str, name: str, cold: float | None = None) -> dict:
        ratios = [rate / raw for rate, raw in zip(rates[name], rates["raw"])]
        return {"engine": engine, "rows": rows, "batch": BATCH, "products/s (median)": statistics.median(rates[name]),
                "ratio to raw loop (median of rounds)": statistics.median(ratios),
                "ratio range": f"{min(ratios):.2f}..{max(ratios):.2f}", "rounds": ROUNDS,
                f"cold job s ({WARM_ROWS} rows, start-up included)": cold, "load avg (1 min) before": round(load, 2)}

    return [row("raw SavedModel loop (serving_default)", "raw"), row("linnet predict (in-process)", "predict"),
            row("Beam, in-process FnApiRunner", "beam", beam_cold), row("Spark local[2]", "spark", spark_cold)]


def _peak_rss(command: list[str]) -> tuple[float, float, float]:
    """Runs ``command``; returns (peak RSS of its largest process, peak RSS summed over its process tree, in MiB;
    seconds), sampling every 0.2 s (Spark's JVM and Python workers are grandchildren ``getrusage`` cannot see)."""
    import subprocess

    import psutil

    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    root = psutil.Process(process.pid)
    largest = total = 0
    while process.poll() is None:
        try:
            sizes = [member.memory_info().rss for member in [root, *root.children(recursive=True)]]
        except psutil.Error:
            sizes = []
        largest, total = max(largest, *sizes, 0), max(total, sum(sizes))
        time.sleep(0.2)
    stderr = process.stderr.read()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{stderr[-3000:]}")
    return largest / 2**20, total / 2**20, time.perf_counter() - started


def _memory(export_dir: Path, titles: list[str], work: Path) -> list[dict]:
    linnet = [sys.executable, "-m", "linnet"]
    out = []
    for rows in RSS_ROWS:
        catalog = write_catalog(work / f"rss-{rows}.jsonl", titles, rows)
        for engine, command in (
                ("Beam, in-process FnApiRunner", [*linnet, "beam", "predict", "--model", str(export_dir),
                                                  "--catalog", str(catalog), "--out", str(work / f"rss-beam-{rows}")]),
                ("Spark local[2]", [*linnet, "spark", "predict", "--model", str(export_dir), "--catalog", str(catalog),
                                    "--out", str(work / f"rss-spark-{rows}"), "--master", "local[2]"])):
            _log(f"peak RSS: {engine}, {rows} rows")
            load = os.getloadavg()[0]
            peak, tree, seconds = _peak_rss(command)
            out.append({"engine": engine, "rows": rows, "peak RSS of the largest process (MiB)": round(peak),
                        "peak RSS of all its processes (MiB)": round(tree),
                        "wall s": round(seconds, 1), "products/s (whole command)": rows / seconds,
                        "load avg (1 min) before": round(load, 2)})
        catalog.unlink()
    return out


def run() -> dict[str, list[dict]]:
    if not (FASHION / "styles.csv").is_file():
        return {"throughput": [{"note": f"fashion catalogue not found at {FASHION}; skipped"}]}
    titles, paths = _fashion_rows()
    work = Path(tempfile.mkdtemp(prefix="linnet-bench-scale-"))
    try:
        _log("exporting the default model on the fashion tree")
        export_dir = _export(work, paths)
        tables = {f"products/s at batch {BATCH} ({THROUGHPUT_ROWS:,} synthetic rows of real titles)":
                  _throughput(export_dir, titles, work)}
        if RSS_ROWS:
            tables["peak memory as rows grow"] = _memory(export_dir, titles, work)
        return tables
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    from benchmarks.__main__ import markdown_table

    for title, table in run().items():
        print(f"## {title}\n\n{markdown_table(table)}\n")
