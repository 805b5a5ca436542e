"""The SavedModel export: layout, signatures, assets, warm-up, loading without LinNét, TFSMLayer, bad images."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from serving.conftest import IMAGE_SIZE, png_bytes
from linnet.errors import ConfigError
from linnet.serving.export import export_summary

TITLES = np.array(["red cotton tee", "leather boots", "blue jeans", "canvas bag"], dtype=object)
BRANDS = np.array(["acme", "", "zeta", "acme"], dtype=object)


def raw_inputs(images=None):
    import tensorflow as tf

    images = images if images is not None else [png_bytes(), b"", png_bytes(value=30), b"not an image"]
    return {"title": tf.constant(TITLES.astype(str)), "brand": tf.constant(BRANDS.astype(str)),
            "image_bytes": tf.constant(images)}


def expected_outputs(image_model, tiny_taxonomy, calibration_path, images):
    """The in-process wrapper on the same rows, images decoded by the data room's decode_image."""
    import tensorflow as tf

    from linnet.inference.calibration_file import load_calibration
    from linnet.data.images import decode_image
    from linnet.inference.classifier import HierarchicalClassifier

    classifier = HierarchicalClassifier(image_model, tiny_taxonomy, *load_calibration(calibration_path, tiny_taxonomy),
                                        top_k=3)
    image, present = decode_image(tf.constant(images), IMAGE_SIZE)
    outputs = classifier({"title": tf.constant(TITLES.astype(str)), "brand": tf.constant(BRANDS.astype(str)),
                          "image": image, "image_present": present})
    return {key: np.asarray(value) for key, value in outputs.items()}


def test_layout_assets_and_model_card(exported, tiny_taxonomy):
    from linnet.taxonomy import Taxonomy

    assert exported.name == "1" and exported.parent.name == "tiny"
    assert (exported / "saved_model.pb").is_file() and (exported / "variables").is_dir()
    assert Taxonomy.load(exported / "assets" / "taxonomy.json") == tiny_taxonomy
    calibration = json.loads((exported / "assets" / "calibration.json").read_text())
    assert calibration["level_thresholds"] == pytest.approx([0.2, 0.3, 0.3])
    assert calibration["node_thresholds"] == {"Shoes": pytest.approx(0.5)}
    assert calibration["taxonomy_fingerprint"] == tiny_taxonomy.fingerprint()
    assert (exported / "assets.extra" / "tf_serving_warmup_requests").stat().st_size > 0
    card = (exported / "MODEL_CARD.md").read_text()
    assert "validation_level_1_accuracy" in card and "`image_bytes`" in card and '"instances"' in card
    assert [entry.name for entry in exported.parent.iterdir()] == ["1"], "no temporary directory left behind"


def test_every_weight_is_stored_once(exported, image_model, loaded):
    # keras-team/keras#23553: ExportArchive.track listed the keras.Variable wrappers beside the tf.Variables
    # the endpoints capture, and the checkpoint held every weight twice.
    import tensorflow as tf

    stored = {name: shape for name, shape in tf.train.list_variables(str(exported / "variables" / "variables"))
              if name != "_CHECKPOINTABLE_OBJECT_GRAPH"}
    stored_values = sum(int(np.prod(shape)) for shape in stored.values())
    model_values = int(image_model.count_params())
    thresholds = sum(int(np.prod(variable.shape)) for variable in loaded.variables) - model_values
    assert 0 <= thresholds < 100  # the classifier's threshold tables on top of the model's weights
    assert stored_values == model_values + thresholds
    assert {id(variable) for variable in loaded.variables} >= {
        id(variable) for variable in loaded.signatures["serving_default"].variables}


def test_versions_count_up_and_never_overwrite(image_model, tiny_taxonomy, export_schema, exported):
    from linnet.serving.export import export_model, next_version

    assert next_version(exported.parent) == 2
    with pytest.raises(ConfigError, match="never overwrites"):
        export_model(image_model, tiny_taxonomy, exported.parent.parent, name="tiny", version=1, schema=export_schema)
    with pytest.raises(ConfigError, match="model name"):
        export_model(image_model, tiny_taxonomy, exported.parent.parent, name="../evil", schema=export_schema)


def test_signatures_have_named_string_inputs_and_match_the_wrapper(loaded, image_model, tiny_taxonomy,
                                                                   calibration_path):
    import tensorflow as tf

    assert {"serving_default", "embed", "scores"} <= set(loaded.signatures)
    for name in ("serving_default", "embed", "scores"):
        _, inputs = loaded.signatures[name].structured_input_signature
        assert {key: (spec.dtype, spec.shape.as_list()) for key, spec in inputs.items()} == {
            "title": (tf.string, [None]), "brand": (tf.string, [None]), "image_bytes": (tf.string, [None])}
    images = [png_bytes(), b"", png_bytes(value=30), b"\xff\xd8 truncated jpeg"]
    served = {key: value.numpy() for key, value in loaded.signatures["serving_default"](**raw_inputs(images)).items()}
    expected = expected_outputs(image_model, tiny_taxonomy, calibration_path, images)
    for key, value in expected.items():
        if value.dtype.kind in "fc":
            np.testing.assert_allclose(served[key], value, rtol=1e-5, atol=1e-6, err_msg=key)
        else:
            np.testing.assert_array_equal(served[key], value, err_msg=key)
    # A corrupt image does not fail the batch: that row has a blank image and image_present = 0.
    np.testing.assert_array_equal(served["image_present"], [1.0, 0.0, 1.0, 0.0])

    embedded = loaded.signatures["embed"](**raw_inputs(images))["embedding"].numpy()
    np.testing.assert_allclose(embedded, expected["embedding"], rtol=1e-5, atol=1e-6)
    scores = loaded.signatures["scores"](**raw_inputs(images))
    assert sorted(scores) == ["level_1", "level_2", "level_3"]
    np.testing.assert_allclose(scores["level_1"].numpy().sum(axis=1), 1.0, rtol=1e-5)


def test_warmup_requests_are_valid_prediction_logs(exported, loaded):
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    records = list(tf.data.TFRecordDataset(str(exported / "assets.extra" / "tf_serving_warmup_requests")))
    assert len(records) == 2
    serve = loaded.signatures["serving_default"]
    for record in records:
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        request = log.predict_log.request
        assert request.model_spec.name == "tiny" and request.model_spec.signature_name == "serving_default"
        inputs = {name: tf.make_tensor_proto(tf.make_ndarray(tensor)) for name, tensor in request.inputs.items()}
        assert set(inputs) == {"title", "brand", "image_bytes"}
        outputs = serve(**{name: tf.constant(tf.make_ndarray(proto)) for name, proto in inputs.items()})
        assert outputs["depth"].shape[0] == request.inputs["title"].tensor_shape.dim[0].size


def test_fresh_process_with_only_tensorflow_and_saved_model_cli(exported):
    """One child process (TensorFlow imports are slow): load without LinNét, then `saved_model_cli` show + run."""
    script = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        import tensorflow as tf
        import tensorflow_text  # registers text ops a model may use; harmless otherwise
        loaded = tf.saved_model.load({str(exported)!r})
        out = loaded.signatures["serving_default"](title=tf.constant(["red tee"]), brand=tf.constant([""]),
                                                   image_bytes=tf.constant([b""]))
        banned = sorted(name for name in sys.modules if name.split(".")[0] == "linnet")
        print(json.dumps({{"path": out["path"].numpy()[0].decode(), "depth": int(out["depth"].numpy()[0]),
                          "banned": banned, "signatures": sorted(loaded.signatures)}}))
        from tensorflow.python.tools import saved_model_cli  # what the saved_model_cli command runs
        print("=== show --all", flush=True)
        saved_model_cli._show_all({str(exported)!r})
        print("=== run", flush=True)
        saved_model_cli.run_saved_model_with_feed_dict(
            {str(exported)!r}, "serve", "serving_default",
            {{"title": np.array([b"red tee"]), "brand": np.array([b"x"]), "image_bytes": np.array([b""])}},
            None, False)
    """)
    result = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded_part, rest = result.stdout.split("=== show --all")
    shown, ran = rest.split("=== run")
    report = json.loads(loaded_part.strip().splitlines()[-1])
    assert report["banned"] == [], "the SavedModel must load without linnet"
    assert report["signatures"] == ["embed", "scores", "serving_default"]
    assert 0 <= report["depth"] <= 3
    for expected in ("signature_def['serving_default']", "signature_def['embed']", "signature_def['scores']",
                     "inputs['title'] tensor_info", "inputs['image_bytes'] tensor_info", "dtype: DT_STRING",
                     "outputs['path'] tensor_info", "outputs['top_k_scores'] tensor_info"):
        assert expected in shown, expected
    assert "Result for output key path" in ran and "Result for output key depth" in ran


def test_tfsm_layer_in_another_keras_graph(exported, loaded):
    import keras
    import tensorflow as tf

    layer = keras.layers.TFSMLayer(str(exported), call_endpoint="embed")
    inputs = {name: keras.Input(shape=(), dtype="string", name=name) for name in ("title", "brand", "image_bytes")}
    embedding = layer(inputs)["embedding"]
    downstream = keras.Model(inputs, keras.layers.Dense(2, name="downstream")(embedding))
    raw = raw_inputs()
    assert downstream(raw).shape == (4, 2)
    np.testing.assert_allclose(layer(raw)["embedding"], loaded.signatures["embed"](**raw)["embedding"], rtol=1e-6)
    classified = keras.layers.TFSMLayer(str(exported), call_endpoint="serving_default")(raw)
    assert classified["path"].dtype == tf.string


def test_export_summary_names_the_model_card():
    assert export_summary("run", Path("exports/m/3")) == (
        f"exported run to {Path('exports/m/3')}\nmodel card: {Path('exports/m/3/MODEL_CARD.md')}")


def test_the_model_is_traced_once_for_every_endpoint(image_model, tiny_taxonomy, export_schema, tmp_path, monkeypatch):
    """tf.saved_model.save traces the shared model function once, in its save context; Keras's ExportArchive
    traced it once more before saving (and the classifier's default signature besides)."""
    from linnet.serving.export import RawInputFunctions, export_model

    traces = []
    features = RawInputFunctions.features
    monkeypatch.setattr(RawInputFunctions, "features", lambda self, raw: traces.append(1) or features(self, raw))
    exported = export_model(image_model, tiny_taxonomy, tmp_path, name="once", schema=export_schema)
    assert len(traces) == 1
    assert (exported / "saved_model.pb").is_file()
