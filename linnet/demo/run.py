"""`linnet demo`: the whole job on a real public catalogue, offline, on a laptop CPU.

Steps (each one is the same `linnet` command a user would type, run in-process, so the demo shows and
tests the real paths):

1. read the fashion catalogue (`linnet.demo.catalog`) into a tidy CSV;
2. ``linnet train`` the default model (hashed n-gram text + MobileNetV2 image, tree inferred from the three
   category columns), with the deterministic 70/15/15 split;
3. ``linnet calibrate`` thresholds on the validation split for 0.95 precision per level;
4. ``linnet export`` the SavedModel in TF Serving layout, then reload it in a fresh Python process that
   imports only TensorFlow and classify held-out products from raw strings and image bytes;
5. ``linnet evaluate`` on the test split, ``linnet baseline`` (TF-IDF + linear SVM) on the same split, and a
   side-by-side table;
6. where everything is and what to try next.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from linnet.demo.catalog import DEMO_SCHEMA, DEMO_SCHEMA_FLAGS, write_demo_catalog
from linnet.errors import LinnetError

REPO_CONFIGS = Path(__file__).resolve().parents[1] / "training" / "configs"


@dataclass(frozen=True)
class DemoSettings:
    """How big the demo is. ``quick`` is the test-suite size (under 2 minutes on 2 cores)."""

    rows: int | None
    epochs: int
    batch_size: int
    image_size: int = 96
    held_out_examples: int = 8
    text_bins: int | None = None  # None: the default config's hash tables
    wide_buckets: int | None = None

    @classmethod
    def for_mode(cls, quick: bool) -> DemoSettings:
        if quick:
            # 3,000 products hash into far fewer distinct n-grams than 2^18 rows; tables a quarter of the
            # default size (2^16 x 64 text, 2^15 x classes wide) write, load and export 4x fewer bytes.
            return cls(rows=3_000, epochs=3, batch_size=64, held_out_examples=5, text_bins=2**16,
                       wide_buckets=2**15)
        return cls(rows=None, epochs=4, batch_size=256)


def _section(number: int, title: str, started: float) -> None:
    """A numbered heading with the time since ``started`` (the demo's start), so a user sees where the minutes go."""
    elapsed = time.perf_counter() - started
    print(f"\n== {number}. {title} == [{int(elapsed // 60)}:{int(elapsed % 60):02d}]", flush=True)


def _linnet(*argv: str) -> None:
    """Runs one `linnet` command in-process; a failure stops the demo with that command's message."""
    from linnet.cli.main import main

    print("$ linnet " + " ".join(argv), flush=True)
    code = main(list(argv))
    if code:
        raise LinnetError(f"`linnet {argv[0]}` exited with {code}; the demo stops here")


# Runs in a fresh interpreter: only TensorFlow (+ tensorflow_text for in-graph tokenisation ops).
RELOAD_SCRIPT = r"""
import csv, json, sys
import tensorflow as tf
try:
    import tensorflow_text  # noqa: F401  (registers tokenisation ops a SavedModel may use)
except ImportError:
    pass
export_dir, catalog, ids = sys.argv[1], sys.argv[2], set(sys.argv[3].split(","))
model = tf.saved_model.load(export_dir)
serve = model.signatures["serving_default"]
rows = [row for row in csv.DictReader(open(catalog, encoding="utf-8")) if row["id"] in ids]
feeds = {}
for name, spec in serve.structured_input_signature[1].items():
    if name == "image_bytes":
        feeds[name] = tf.constant([open(r["image"], "rb").read() if r["image"] else b"" for r in rows])
    elif name == "attributes":
        feeds[name] = tf.constant(["; ".join(f"{k}: {r[k]}" for k in ("gender", "colour", "season", "usage") if r[k])
                                   for r in rows])
    else:
        feeds[name] = tf.constant([r.get(name, "") for r in rows])
outputs = serve(**feeds)
result = []
for index, row in enumerate(rows):
    result.append({
        "id": row["id"], "title": row["title"],
        "true_path": " > ".join(row[f"level_{k}"] for k in (1, 2, 3)),
        "predicted_path": outputs["path"][index].numpy().decode(),
        "confidences": [round(float(c), 3) for c in outputs["confidences"][index].numpy()],
        "has_image": bool(row["image"]),
    })
print(json.dumps(result))
"""


def classify_in_fresh_process(export_dir: Path, catalog: Path, ids: list[str]) -> list[dict]:
    """Reloads the export in a new interpreter (as a serving process would) and classifies ``ids``."""
    completed = subprocess.run(
        [sys.executable, "-c", RELOAD_SCRIPT, str(export_dir), str(catalog), ",".join(ids)],
        capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    if completed.returncode != 0:
        raise LinnetError(f"reloading {export_dir} in a fresh process failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _held_out_ids(catalog: Path, config_path: Path, count: int) -> list[str]:
    """The first ``count`` products of the run's test split, about half with an image (as a user would pick)."""
    from linnet.data import CatalogSchema, prepare_catalog
    from linnet.training.config import TrainingConfig

    config = TrainingConfig.from_yaml(config_path)
    prepared = prepare_catalog(catalog, CatalogSchema.from_dict(dict(DEMO_SCHEMA)),
                               split=tuple(config.data.split), split_salt=config.data.split_salt)
    test = prepared.subset("test")
    ids = [str(product_id) for product_id in test.ids]
    sources = test.image_sources if test.image_sources is not None else [""] * len(ids)
    with_image = [product_id for product_id, source in zip(ids, sources) if source]
    without = [product_id for product_id, source in zip(ids, sources) if not source]
    half = count // 2 + 1
    return (with_image[:half] + without)[:count]


MOBILENET_V2_CACHE_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_{size}_no_top.h5"


def image_encoder_options(settings: DemoSettings, weights: str | None) -> dict:
    """A frozen MobileNetV2 (width 0.35) for the demo.

    With ``weights="imagenet"`` (or a weights file) its features are what a user would ship. Without them
    (the offline default when Keras has no ImageNet copy cached) the backbone keeps its random
    initialisation: the image path, its decoding and the export's ``image_bytes`` input are all exercised,
    but the random features add little, so the demo says so. Training a CNN from scratch is not an option
    on a 2-core laptop in minutes.
    """
    return {"name": "mobilenet_v2", "alpha": 0.35, "image_size": settings.image_size, "weights": weights,
            "trainable": False}


def default_image_weights(settings: DemoSettings) -> str | None:
    """``"imagenet"`` when Keras already has the ImageNet weights in its cache (no download), else None."""
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    name = MOBILENET_V2_CACHE_FILE.format(alpha="0.35", size=settings.image_size)
    return "imagenet" if (keras_home / "models" / name).is_file() else None


def _write_config(out_dir: Path, settings: DemoSettings, image_weights: str | None) -> Path:
    """The repository's default training config with the demo's size settings and image encoder."""
    default = REPO_CONFIGS / "default.yaml"
    config = (yaml.safe_load(default.read_text(encoding="utf-8")) if default.is_file() else None) or {}
    config.setdefault("model", {})["image_encoder"] = image_encoder_options(settings, image_weights)
    if settings.text_bins:
        text_encoder = config["model"].get("text_encoder") or {"name": "hashed_ngrams"}
        config["model"]["text_encoder"] = {**text_encoder, "num_bins": settings.text_bins}
    if settings.wide_buckets:
        config["model"]["wide"] = {**(config["model"].get("wide") or {}), "num_buckets": settings.wide_buckets}
    config.setdefault("data", {})["image_size"] = settings.image_size
    config.setdefault("training", {}).update(epochs=settings.epochs, batch_size=settings.batch_size)
    path = out_dir / "demo-config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def _table(rows: list[dict]) -> str:
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(f"{row[c]:.4f}" if isinstance(row[c], float) else str(row[c])
                                        for c in columns) + " |")
    return "\n".join(lines)


COMPARED_METRICS = ("hierarchical_precision", "hierarchical_recall", "hierarchical_f1", "leaf_accuracy", "coverage")


def run_demo(data_dir: str | os.PathLike, out_dir: str | os.PathLike, quick: bool = False,
             image_weights: str | None = "auto") -> dict:
    """Runs the demo; returns the paths it wrote and the metrics it printed.

    Example:
        >>> summary = run_demo("../shared/data/fashion_product_images", "linnet-demo", quick=True)  # doctest: +SKIP
    """
    settings = DemoSettings.for_mode(quick)
    out_dir = Path(out_dir).resolve()
    run_dir, export_base = out_dir / "run", out_dir / "exports"
    if run_dir.exists():
        raise LinnetError(f"{run_dir} already exists; pass a new --out (the demo never overwrites a run)")
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    _section(1, "Read the catalogue", started)
    catalog = out_dir / "catalog.csv"
    report = write_demo_catalog(data_dir, catalog, limit=settings.rows)
    print(f"{report.rows:,} products ({report.with_image:,} with an image) from {data_dir} [{report.layout}]"
          + (f"; {len(report.rejoined_titles)} titles with unquoted commas rejoined" if report.rejoined_titles else ""))

    _section(2, "Train the default model (tree inferred from the three category columns)", started)
    if image_weights == "auto":
        image_weights = default_image_weights(settings)
    print(f"image encoder: MobileNetV2 (width 0.35, {settings.image_size} px, frozen), " + (
        f"weights {image_weights}" if image_weights else
        "random weights: no ImageNet copy is in the Keras cache and the demo stays offline, so the image path "
        "runs but adds little (--image-weights imagenet downloads them once)"))
    config = _write_config(out_dir, settings, image_weights)
    _linnet("train", "--catalog", str(catalog), "--out", str(run_dir), "--config", str(config),
            "--epochs", str(settings.epochs), *DEMO_SCHEMA_FLAGS)

    _section(3, "Calibrate thresholds for 0.95 precision on the validation split", started)
    calibration = out_dir / "calibration.json"
    _linnet("calibrate", "--model", str(run_dir), "--catalog", str(catalog), "--split", "validation",
            "--target-precision", "0.95", "--out", str(calibration))

    _section(4, "Export for TF Serving, reload in a fresh process, classify held-out products", started)
    _linnet("export", str(run_dir), "--out", str(export_base), "--name", "fashion", "--calibration", str(calibration))
    export_dir = max((export_base / "fashion").iterdir(), key=lambda path: int(path.name))
    examples = classify_in_fresh_process(export_dir, catalog, _held_out_ids(catalog, config, settings.held_out_examples))
    for example in examples:
        print(f"- {example['title']}" + ("" if example["has_image"] else " (no image)"))
        print(f"    true:      {example['true_path']}")
        print(f"    predicted: {example['predicted_path'] or '(withheld: below threshold)'}   "
              f"confidences {example['confidences']}")

    _section(5, "Evaluate on the test split against a TF-IDF + linear SVM baseline", started)
    evaluation, baseline = out_dir / "evaluation", out_dir / "baseline"
    _linnet("baseline", "--catalog", str(catalog), "--kind", "tfidf", "--out", str(baseline), *DEMO_SCHEMA_FLAGS)
    _linnet("evaluate", "--model", str(run_dir), "--catalog", str(catalog), "--split", "test",
            "--calibration", str(calibration), "--out", str(evaluation), "--compare", str(baseline))
    model_metrics = json.loads((evaluation / "metrics.json").read_text())
    baseline_metrics = json.loads((baseline / "metrics.json").read_text())
    comparison = [
        {"model": name, **{metric: float(metrics[metric]) for metric in COMPARED_METRICS}}
        for name, metrics in (("LinNét (default)", model_metrics), ("TF-IDF + LinearSVC", baseline_metrics))
    ]
    print(_table(comparison))

    minutes = (time.perf_counter() - started) / 60
    _section(6, f"Done in {minutes:.1f} min. Where everything is", started)
    print(f"""\
  run directory   {run_dir}   (model.keras, config.yaml, schema.yaml, taxonomy.json, metrics.json)
  calibration     {calibration}
  SavedModel      {export_dir}
  report          {evaluation / 'report.md'} (plots next to it)
  MLflow store    {run_dir / 'mlflow.db'}

Next:
  serve it        linnet export {run_dir} --out exports --name linnet --calibration {calibration}
                  docker compose -f serving/docker-compose.yml up     (REST :8501, gRPC :8500)
  call it         linnet serve-client --model-name linnet --image --text-fields title,attributes --title "Men Blue Jeans"
  predict a CSV   linnet predict --model {export_dir} --catalog {catalog} --out predictions.csv
  MLflow UI       mlflow ui --backend-store-uri sqlite:///{run_dir / 'mlflow.db'}
  TensorBoard     tensorboard --logdir {run_dir / 'tensorboard'}""")
    return {
        "catalog": str(catalog), "run_dir": str(run_dir), "export_dir": str(export_dir),
        "evaluation": str(evaluation), "metrics": model_metrics, "baseline_metrics": baseline_metrics,
        "examples": examples, "minutes": minutes,
    }
