"""Inference speed: raw functional model vs the `HierarchicalClassifier` wrapper vs the reloaded SavedModel.

All three run on the same rows (raw product titles; text normalisation and hashing run inside the model in
every case) at batch sizes 1, 32 and 256, and single-product latency of the SavedModel is measured over
many calls. The model is `linnet.model.build_model` with the default config (hashed n-grams, wide path)
on the real Google product taxonomy when ``../shared/data`` is there (5,595 nodes), else on a generated
3-level tree. Target (issue 5): at batch 256 the wrapper and the SavedModel cost at most 5% more than the
raw model, i.e. their throughput ratio to the raw model is at least 0.95.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BATCH_SIZES = (1, 32, 256)
ROWS = {1: 64, 32: 1024, 256: 2048}
LATENCY_CALLS = 200
REPEATS = 2
REPO_ROOT = Path(__file__).resolve().parents[1]
from benchmarks import SHARED


def _taxonomy():
    from linnet.taxonomy import Taxonomy, load_taxonomy

    google = SHARED / "taxonomy" / "google" / "taxonomy-with-ids.en-US.2021-09-21.txt"
    if google.is_file():
        return load_taxonomy(google), "Google (5,595 nodes)"
    paths = [f"L{a} > L{a}.{b} > L{a}.{b}.{c}" for a in range(20) for b in range(10) for c in range(8)]
    return Taxonomy.from_paths(paths), "generated (1,820 nodes)"


def _titles(count: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    words = ["red", "blue", "black", "cotton", "leather", "shirt", "dress", "boots", "sandal", "lamp", "table", "chair", "phone", "case", "cable", "usb", "organic", "coffee", "tea", "mug", "steel", "bottle", "kids", "women", "men", "running", "hiking", "garden", "tool", "drill", "battery"]
    return np.array([" ".join(rng.choice(words, size=rng.integers(4, 12))) for _ in range(count)], dtype=object)


def _best_rate(call, rows: int) -> float:
    call()  # warm-up: tracing, thread pools
    best = 0.0
    for _ in range(REPEATS):
        started = time.perf_counter()
        call()
        best = max(best, rows / (time.perf_counter() - started))
    return best


def run() -> list[dict]:
    import keras
    import tensorflow as tf

    from linnet.serving.export import export_model
    from linnet.inference.classifier import HierarchicalClassifier
    from linnet.model import ModelConfig, build_model

    taxonomy, tree = _taxonomy()
    model = build_model(ModelConfig(), taxonomy, text_fields=["title"])
    classifier = HierarchicalClassifier(model, taxonomy, [0.5] * taxonomy.num_levels, top_k=5)
    with tempfile.TemporaryDirectory() as work:
        print(f"inference benchmark: exporting ({tree})", file=sys.stderr, flush=True)
        export_dir = export_model(model, taxonomy, work, name="bench")
        loaded = tf.saved_model.load(str(export_dir))
        serve = loaded.signatures["serving_default"]
        rows_out = []
        for batch_size in BATCH_SIZES:
            print(f"inference benchmark: batch {batch_size}", file=sys.stderr, flush=True)
            titles = _titles(ROWS[batch_size])
            batches = [tf.constant(titles[start:start + batch_size].astype(str))
                       for start in range(0, len(titles), batch_size)]

            def saved_model_call(batches=batches):
                for batch in batches:
                    serve(title=batch)

            def predict_call(keras_model, titles=titles, batch_size=batch_size):
                return lambda: keras_model.predict({"title": titles}, batch_size=batch_size, verbose=0)

            raw = _best_rate(predict_call(model), len(titles))
            wrapper = _best_rate(predict_call(classifier), len(titles))
            saved = _best_rate(saved_model_call, len(titles))
            rows_out.append({"batch": batch_size, "tree": tree, "raw model /s": raw, "wrapper predict /s": wrapper,
                             "SavedModel /s": saved, "wrapper / raw": wrapper / raw, "SavedModel / raw": saved / raw})

        single = [tf.constant([title]) for title in _titles(LATENCY_CALLS).astype(str)]
        serve(title=single[0])
        latencies = []
        for batch in single:
            started = time.perf_counter()
            serve(title=batch)["path"].numpy()
            latencies.append((time.perf_counter() - started) * 1000)
        rows_out.append({"batch": "1 (latency)", "tree": tree, "SavedModel p50 ms": float(np.percentile(latencies, 50)),
                         "SavedModel p99 ms": float(np.percentile(latencies, 99))})
    keras.backend.clear_session()
    return rows_out


if __name__ == "__main__":
    from benchmarks.__main__ import markdown_table

    print(markdown_table(run()))
