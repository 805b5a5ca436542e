"""One SavedModel per model version for TF Serving, ``tf.saved_model.load`` and ``keras.layers.TFSMLayer``.

Layout (TF Serving's): ``BASE/<model name>/<version>/`` with ``saved_model.pb``, ``variables/``,
``assets/taxonomy.json``, ``assets/calibration.json``, ``assets.extra/tf_serving_warmup_requests`` and
``MODEL_CARD.md``. A version is written to a temporary directory next to it and renamed into place, so
TF Serving never sees half a model, and an existing version is never overwritten.

Signatures take raw inputs (one ``tf.string [B]`` per text field, plus ``image_bytes`` ``tf.string [B]``,
encoded JPEG/PNG or ``""``, when the model reads images) and do every preprocessing step in the graph:

- ``serving_default``: the `HierarchicalClassifier` outputs plus ``image_present``;
- ``embed``: ``{"embedding": [B, D]}``;
- ``scores``: ``{"level_1": [B, n_1], ...}``, the raw per-level probabilities.

Example:
    >>> export_dir = export_run("runs/fashion", "exports")  # doctest: +SKIP
    >>> import tensorflow as tf, tensorflow_text  # doctest: +SKIP
    >>> serve = tf.saved_model.load(str(export_dir)).signatures["serving_default"]  # doctest: +SKIP
    >>> serve(title=tf.constant(["red shirt"]), image_bytes=tf.constant([b""]))["path"]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from linnet.atomic_files import atomic_directory
from linnet.data.images import decode_image
from linnet.errors import ConfigError
from linnet.inference.calibration_file import (
    DEFAULT_DECODING,
    calibration_payload,
    load_calibration,
)
from linnet.serving.client import build_predict_request

IMAGE_BYTES_INPUT = "image_bytes"
EMBED_SIGNATURE = "embed"
SIGNATURES = ("serving_default", EMBED_SIGNATURE, "scores")
#: Not a signature: the loaded object's function that returns the classifier outputs and the level scores.
PREDICT_WITH_SCORES = "predict_with_scores"
TAXONOMY_ASSET = "taxonomy.json"
CALIBRATION_ASSET = "calibration.json"
INPUTS_ASSET = "inputs.json"
WARMUP_FILE = "tf_serving_warmup_requests"
MODEL_CARD = "MODEL_CARD.md"
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# ------------------------------------------------------------------------------------- raw-input graph
def model_input_names(model) -> list[str]:
    return [tensor.name.split(":")[0] for tensor in model.inputs]


def model_image_size(model) -> int | None:
    for tensor in model.inputs:
        if tensor.name.split(":")[0] == "image":
            return int(tensor.shape[1])
    return None


def raw_text_fields(model, schema=None) -> list[str]:
    """The text inputs of ``model`` in the schema's order; `ConfigError` when the two disagree."""
    names = model_input_names(model)
    model_fields = [name for name in names if name not in ("image", "image_present")]
    if schema is None or not model_fields:  # an image-only model reads none of the schema's text fields
        return model_fields
    fields = list(schema.feature_text_fields)
    if sorted(fields) != sorted(model_fields):
        raise ConfigError(f"the schema's text fields {fields} do not match the model's text inputs {model_fields}")
    return fields


def same_batch_size(raw: Mapping) -> dict:
    """``raw`` once its inputs are checked to hold as many rows each (TF ops, so in the SavedModel too).

    A request whose inputs differ in length (3 titles, 2 images) fails with a message naming two of them,
    which TF Serving returns as the request's error, instead of failing deep inside the model.
    """
    import tensorflow as tf  # lazy: linnet.serving and the export's constants load without TensorFlow

    names = list(raw)
    first = tf.shape(raw[names[0]])[0]
    checks = [tf.debugging.assert_equal(first, tf.shape(raw[name])[0],
                                        message=f"inputs {names[0]} and {name} have different batch sizes; "
                                                "every input needs one value per product")
              for name in names[1:]]
    with tf.control_dependencies(checks):
        return {name: tf.identity(value) for name, value in raw.items()}


class RawInputFunctions:
    """The classifier behind raw inputs: text strings and encoded image bytes, preprocessing in TF ops.

    Used by the export (as SavedModel signatures) and by `linnet.serving.predict` on a run directory, so both
    run the same graph.

    Args:
        classifier: a `linnet.inference.classifier.HierarchicalClassifier`.
        text_fields: raw text input names, in order.
        image_size: side of the model's ``image`` input (None: no image input).
    """

    def __init__(self, classifier, text_fields: Sequence[str], image_size: int | None):
        import tensorflow as tf  # lazy: linnet.serving and the export's constants load without TensorFlow

        self.classifier = classifier
        self.text_fields = list(text_fields)
        self.image_size = image_size
        self._model_outputs = None
        self.input_signature = {field: tf.TensorSpec([None], tf.string, name=field) for field in self.text_fields}
        if image_size:
            self.input_signature[IMAGE_BYTES_INPUT] = tf.TensorSpec([None], tf.string, name=IMAGE_BYTES_INPUT)

    @property
    def input_names(self) -> list[str]:
        return list(self.input_signature)

    def features(self, raw: Mapping):
        """Model features from raw inputs: ``image_bytes`` decoded by `linnet.data.images.decode_image`."""
        raw = same_batch_size(raw)
        features = {field: raw[field] for field in self.text_fields}
        if self.image_size:
            features["image"], features["image_present"] = decode_image(raw[IMAGE_BYTES_INPUT], self.image_size)
        return features

    def model_outputs(self, raw):
        """The model's outputs (level scores + embedding) and ``image_present``, from raw inputs.

        One ``tf.function`` shared by every endpoint below, so the encoders and heads are traced once (and once
        more inside ``tf.saved_model.save``'s save context), not once per signature (docs/serving.md, "Export
        size and tracing"). In the SavedModel the signatures call the same function, which TensorFlow inlines
        when it runs them.
        """
        if self._model_outputs is None:
            import tensorflow as tf  # lazy: as in __init__

            def model_outputs(raw):
                features = self.features(raw)
                scores = dict(self.classifier.scores(features))
                if self.image_size:
                    scores["image_present"] = features["image_present"]
                return scores

            self._model_outputs = tf.function(model_outputs, input_signature=[self.input_signature],
                                              autograph=False)
        return self._model_outputs(raw)

    def serve(self, raw):
        scores = self.model_outputs(raw)
        outputs = dict(self.classifier.classify(scores))
        if self.image_size:
            outputs["image_present"] = scores["image_present"]
        return outputs

    def embed(self, raw):
        return {"embedding": self.model_outputs(raw)["embedding"]}

    def scores(self, raw):
        scores = self.model_outputs(raw)
        return {name: value for name, value in scores.items() if name.startswith("level_")}

    def predict_with_scores(self, raw):
        scores = self.model_outputs(raw)
        outputs = dict(self.classifier.classify(scores))
        outputs.update({name: value for name, value in scores.items() if name.startswith("level_")})
        if self.image_size:
            outputs["image_present"] = scores["image_present"]
        return outputs


# ------------------------------------------------------------------------------------------ the export
def load_saved_model(path):
    """``tf.saved_model.load`` after registering the TF Text ops a LinNét export's text normaliser uses."""
    import tensorflow as tf  # lazy: linnet.serving and the export's constants load without TensorFlow

    try:
        import tensorflow_text  # noqa: F401  registers NormalizeUTF8 and the tokenisers' ops
    except ImportError:  # pragma: no cover - part of the install
        pass
    return tf.saved_model.load(str(path))


def next_version(model_dir: Path) -> int:
    """1 + the largest integer version directory under ``model_dir`` (1 when there is none)."""
    versions = [int(entry.name) for entry in model_dir.iterdir() if entry.name.isdigit()] if model_dir.is_dir() else []
    return max(versions, default=0) + 1


def _check_name(name: str) -> str:
    if not name or not _NAME_PATTERN.match(name):
        raise ConfigError(f"model name {name!r}: use letters, digits, '_', '-' and '.' (it is a directory name "
                          "and the name clients ask TF Serving for)")
    return name


def export_run(run_dir, base_dir, name: str | None = None, version: int | None = None, calibration=None,
               top_k: int = 5, warmup_rows: int = 8, decoding: str = DEFAULT_DECODING, progress: bool = False) -> Path:
    """Export a run directory (``linnet train --out``) as ``base_dir/<name>/<version>/``.

    Args:
        run_dir: the run directory.
        base_dir: the TF Serving model base directory (created when missing).
        name: model name (default: the run directory's name).
        version: integer version (default: the next free one). An existing version is never overwritten.
        calibration: a calibration file (`linnet calibrate`) whose thresholds the export carries; without
            it, every threshold is 0 (the full descent is exposed).
        top_k: leaf candidates in the outputs.
        decoding: ``"path"`` or ``"greedy"`` descent (`linnet.inference.classifier.HierarchicalClassifier`).
        warmup_rows: size of the largest warm-up request.
        progress: print each step and its seconds on stderr (``export: ...`` lines).

    Returns:
        The version directory.

    Raises:
        ConfigError: not a run directory, bad name, version exists, or a calibration file for another taxonomy.

    Example:
        >>> export_run("runs/fashion", "exports", calibration="runs/fashion/calibration.json")  # doctest: +SKIP
        PosixPath('exports/fashion/1')
    """
    from linnet.training.run_directory import load_run  # lazy: it loads Keras

    steps = _Steps(progress)
    steps.start(f"loading the run {run_dir}")
    run = load_run(run_dir)
    name = name or re.sub(r"[^A-Za-z0-9_.-]", "_", Path(run_dir).resolve().name)
    return export_model(run.model, run.taxonomy, base_dir, name=name, version=version, schema=run.schema,
                        calibration=calibration, metrics=run.metrics, top_k=top_k, source=str(run_dir),
                        warmup_rows=warmup_rows, decoding=decoding, steps=steps)


class _Steps:
    """``export: <step>`` lines on stderr, each closed with its seconds, when ``enabled``."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.started = None

    def start(self, what: str | None) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.started is not None:
            print(f" {now - self.started:.1f} s", file=sys.stderr, flush=True)
        self.started = now if what else None
        if what:
            print(f"export: {what}...", end="", file=sys.stderr, flush=True)


def export_model(model, taxonomy, base_dir, name: str, version: int | None = None, schema=None, calibration=None,
                 metrics: Mapping | None = None, top_k: int = 5, source: str | None = None,
                 warmup_rows: int = 8, decoding: str = DEFAULT_DECODING, steps: _Steps | None = None) -> Path:
    """Export a trained functional model (see `export_run`, which reads these from a run directory)."""
    from linnet.inference.classifier import (
        HierarchicalClassifier,  # lazy: it loads Keras
    )

    name = _check_name(name)
    model_dir = Path(base_dir) / name
    if version is None:
        version = next_version(model_dir)
    if not isinstance(version, (int, np.integer)) or isinstance(version, bool) or version < 1:
        raise ConfigError(f"version must be a positive integer, got {version!r}")
    target = model_dir / str(int(version))
    if target.exists():
        raise ConfigError(f"{target} exists; an export never overwrites a version (pass another --version)")
    level_thresholds, node_thresholds = (load_calibration(calibration, taxonomy, decoding=decoding)
                                         if calibration is not None else (None, None))
    classifier = HierarchicalClassifier(model, taxonomy, level_thresholds, node_thresholds, top_k=top_k,
                                        decoding=decoding)
    functions = RawInputFunctions(classifier, raw_text_fields(model, schema), model_image_size(model))

    steps = steps or _Steps(False)
    with atomic_directory(target) as temporary:  # TF Serving never sees a half-written version
        steps.start("tracing the signatures and writing the SavedModel")
        write_saved_model(functions, temporary, taxonomy, schema)
        steps.start("warm-up requests and model card")
        write_warmup_requests(functions, temporary / "assets.extra" / WARMUP_FILE, name, warmup_rows)
        (temporary / MODEL_CARD).write_text(model_card(name, int(version), functions, taxonomy, metrics, source),
                                            encoding="utf-8")
        if target.exists():
            raise ConfigError(f"{target} appeared while exporting; not overwriting it")
    steps.start(None)
    return target


def write_saved_model(functions: RawInputFunctions, directory: Path, taxonomy, schema=None) -> None:
    """Save the signatures, the taxonomy/calibration/input assets and the thresholds' variables.

    ``tf.saved_model.save`` traces the endpoints once, in its save context, and the shared model function
    (`RawInputFunctions.model_outputs`) once for all of them. Keras's ``ExportArchive`` traced them all once
    more before saving (to list the variables they capture) and the classifier's own default signature a
    third time: 20.9 s of CPU for the tour's small model, most of it the n-gram featurizer traced again.
    """
    import tensorflow as tf  # lazy: linnet.serving and the export's constants load without TensorFlow

    classifier = functions.classifier
    scratch = Path(tempfile.mkdtemp(prefix="linnet-assets-"))
    try:
        taxonomy.save(scratch / TAXONOMY_ASSET)
        payload = calibration_payload(classifier.level_thresholds, classifier.node_thresholds, taxonomy,
                                      classifier.decoding)
        (scratch / CALIBRATION_ASSET).write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", "utf-8")
        inputs = {"text_fields": functions.text_fields, "image_size": functions.image_size,
                  "image_input": IMAGE_BYTES_INPUT if functions.image_size else None,
                  "schema": schema.to_dict() if schema is not None else None, "top_k": classifier.top_k,
                  "decoding": classifier.decoding}
        (scratch / INPUTS_ASSET).write_text(json.dumps(inputs, indent=2) + "\n", "utf-8")

        root = tf.__internal__.tracking.AutoTrackable()
        track_variables(root, classifier)
        signature = [functions.input_signature]
        endpoints = {"serving_default": functions.serve, EMBED_SIGNATURE: functions.embed, "scores": functions.scores}
        signatures = {}
        for name, method in endpoints.items():
            signatures[name] = tf.function(method, input_signature=signature, autograph=False)
            setattr(root, name, signatures[name])  # also an attribute, as Keras's ExportArchive left them
        root.predict_with_scores = tf.function(functions.predict_with_scores, input_signature=signature,
                                               autograph=False)
        root.taxonomy_file = tf.saved_model.Asset(str(scratch / TAXONOMY_ASSET))
        root.calibration_file = tf.saved_model.Asset(str(scratch / CALIBRATION_ASSET))
        root.inputs_file = tf.saved_model.Asset(str(scratch / INPUTS_ASSET))
        tf.saved_model.save(root, str(directory), signatures=signatures)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def track_variables(root, classifier) -> None:
    """Give ``root`` the ``variables`` collections of ``classifier``'s weights and its resources (lookup tables).

    The collections list the ``tf.Variable`` inside each Keras variable, the object the endpoints capture:
    TensorFlow de-duplicates checkpoint values by object, so listing the Keras wrappers wrote every weight
    twice (keras-team/keras#23553; docs/serving.md, "Export size and tracing"). ``loaded.variables`` holds
    them after ``tf.saved_model.load``.
    """
    import tensorflow as tf  # lazy: as in load_saved_model

    def inner(variable):
        value = getattr(variable, "value", None)
        return value if isinstance(value, tf.Variable) else variable

    trainable = [inner(variable) for variable in classifier.trainable_weights]
    non_trainable = [inner(variable) for variable in classifier.non_trainable_weights]
    root.variables = trainable + non_trainable
    root.trainable_variables = trainable
    root.non_trainable_variables = non_trainable
    root.resources = [trackable for trackable in tf.train.TrackableView(classifier).descendants()
                      if isinstance(trackable, tf.saved_model.experimental.TrackableResource)]


def example_inputs(functions: RawInputFunctions, rows: int) -> dict[str, list[bytes]]:
    """Raw inputs for ``rows`` products: short texts and, with images, a small PNG and one empty image."""
    import tensorflow as tf  # lazy: as in load_saved_model

    inputs = {field: [f"example {field} {row}".encode() for row in range(rows)] for field in functions.text_fields}
    if functions.image_size:
        png = tf.io.encode_png(tf.fill([functions.image_size, functions.image_size, 3], tf.constant(128, tf.uint8)))
        inputs[IMAGE_BYTES_INPUT] = [png.numpy() if row % 2 == 0 else b"" for row in range(rows)]
    return inputs


def write_warmup_requests(functions: RawInputFunctions, path: Path, model_name: str, largest_batch: int = 8) -> None:
    """TF Serving warm-up file: ``PredictionLog`` records for ``serving_default`` at batch 1 and ``largest_batch``."""
    import tensorflow as tf  # lazy: as in load_saved_model
    from tensorflow_serving.apis import prediction_log_pb2  # lazy: as tensorflow

    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for batch in sorted({1, max(1, int(largest_batch))}):
            request = build_predict_request(example_inputs(functions, batch), model_name, "serving_default")
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


# ------------------------------------------------------------------------------------------ model card
def model_card(name: str, version: int, functions: RawInputFunctions, taxonomy, metrics: Mapping | None,
               source: str | None) -> str:
    classifier = functions.classifier
    sizes = taxonomy.level_sizes()
    example = {field: "red cotton t-shirt" if field == functions.text_fields[0] else "" for field in functions.text_fields}
    if functions.image_size:
        example[IMAGE_BYTES_INPUT] = {"b64": "<standard base64 of a JPEG/PNG, or empty>"}
    lines = [
        f"# Model card: {name} (version {version})", "",
        f"Exported from `{source}` by `linnet export`." if source else "Exported by `linnet export`.", "",
        "## Taxonomy", "",
        (f"- source: {taxonomy.source or 'unknown'}; {len(taxonomy)} nodes, {len(taxonomy.leaves())} leaves, "
        f"{taxonomy.num_levels} levels"),
        f"- classes per level: {', '.join(f'level {k}: {n}' for k, n in enumerate(sizes, start=1))}",
        f"- fingerprint: `{taxonomy.fingerprint()}` (also in `assets/taxonomy.json`)", "",
        "## Thresholds", "",
        ("A level is exposed when its confidence reaches max(level threshold, overrides of the nodes above it) and "
        "every level above is exposed (`assets/calibration.json`)."), "",
        "| level | threshold |", "|---|---|",
        *[f"| {k} | {value:.4g} |" for k, value in enumerate(classifier.level_thresholds, start=1)], "",
    ]
    overrides = classifier.node_thresholds
    if overrides:
        lines += ["Node overrides (node and its subtree):", "",
                  *[f"- `{node}`: {value:.4g}" for node, value in sorted(overrides.items())], ""]
    lines += ["## Metrics of the run", ""]
    flat = {key: value for key, value in (metrics or {}).items() if isinstance(value, (int, float, str))}
    lines += ([f"- {key}: {value:.4g}" if isinstance(value, float) else f"- {key}: {value}"
               for key, value in sorted(flat.items())] or ["(the run recorded no metrics)"])
    lines += ["", "## Inputs", "", "| signature | inputs | outputs |", "|---|---|---|",
              (f"| `serving_default` | {', '.join(f'`{n}` string [B]' for n in functions.input_names)} | class_ids, "
              "node_ids, names, confidences, depth, path, full_class_ids, full_path, top_k_node_ids, top_k_scores, "
              f"embedding{', image_present' if functions.image_size else ''} |"),
              "| `embed` | same | embedding [B, D] |",
              f"| `scores` | same | level_1 … level_{taxonomy.num_levels} [B, n_k] |", "",
              "Texts are raw strings (normalised and tokenised in the graph)."]
    if functions.image_size:
        lines.append(f"`image_bytes` is an encoded JPEG/PNG (empty for none), decoded and resized to "
                     f"{functions.image_size}x{functions.image_size} in the graph; a corrupt image gives "
                     "`image_present = 0` and the batch still succeeds.")
    lines += ["", "Example REST request (`POST /v1/models/" + name + ":predict`):", "", "```json",
              json.dumps({"signature_name": "serving_default", "instances": [example]}, indent=2), "```", "",
              "Load it in Python without LinNét:", "", "```python", "import tensorflow as tf",
              "import tensorflow_text  # registers the text-normalisation ops, when the model uses them", "",
              "serve = tf.saved_model.load(EXPORT_DIR).signatures['serving_default']", "```", ""]
    return "\n".join(lines)


def export_summary(run_dir: str | os.PathLike, export_dir: Path) -> str:
    """`linnet export`: where the SavedModel and its model card went."""
    return f"exported {run_dir} to {export_dir}\nmodel card: {Path(export_dir) / 'MODEL_CARD.md'}"
