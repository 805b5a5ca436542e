"""The serving client without TF Serving: request formats against the signature, a local REST server and a
local gRPC PredictionService that run the loaded SavedModel, retries, catalog batching, and consistency of
model.predict, the reloaded SavedModel and client-built requests."""

from __future__ import annotations

import base64
import json
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from serving.conftest import IMAGE_SIZE, png_bytes

ROWS = {"title": ["red cotton tee", "leather boots", "canvas bag"], "brand": ["acme", "", "zeta"],
        "image_bytes": [png_bytes(), b"", b"corrupt"]}


def encoded_rows() -> dict[str, list[bytes]]:
    return {name: [value if isinstance(value, bytes) else value.encode() for value in values]
            for name, values in ROWS.items()}


def decode_json_inputs(body: dict) -> dict[str, list]:
    """What TF Serving does with a REST body: rows or columns, {"b64": ...} to bytes."""
    def value(cell):
        return base64.b64decode(cell["b64"]) if isinstance(cell, dict) else cell.encode("utf-8")

    if "instances" in body:
        names = list(body["instances"][0])
        return {name: [value(row[name]) for row in body["instances"]] for name in names}
    return {name: [value(cell) for cell in column] for name, column in body["inputs"].items()}


def call_signature(signature, inputs: dict[str, list]) -> dict[str, np.ndarray]:
    import tensorflow as tf

    return {name: value.numpy() for name, value in signature(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


def jsonable(value):
    if isinstance(value, np.ndarray):
        return [jsonable(item) for item in value] if value.ndim else jsonable(value.item())
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value.item() if isinstance(value, np.generic) else value


@pytest.fixture(scope="module")
def rest_server(loaded):
    """A local stand-in for TF Serving's REST API running the loaded export; fails the next N calls with 503."""
    state = {"fail_next": 0, "calls": 0, "bodies": []}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state["calls"] += 1
            state["bodies"].append(body)
            if state["fail_next"]:
                state["fail_next"] -= 1
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.path != "/v1/models/tiny:predict":
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            outputs = call_signature(loaded.signatures[body.get("signature_name", "serving_default")],
                                     decode_json_inputs(body))
            if "instances" in body:
                rows = len(next(iter(outputs.values())))
                payload = {"predictions": [{name: jsonable(value[row]) for name, value in outputs.items()}
                                           for row in range(rows)]}
            else:
                payload = {"outputs": {name: jsonable(value) for name, value in outputs.items()}}
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()


@pytest.fixture(scope="module")
def grpc_server(loaded):
    """A local gRPC PredictionService that runs the loaded export (the request arrives as TF Serving gets it)."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    class Service(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            signature = loaded.signatures[request.model_spec.signature_name or "serving_default"]
            inputs = {name: tf.make_ndarray(tensor) for name, tensor in request.inputs.items()}
            outputs = signature(**{name: tf.constant(value) for name, value in inputs.items()})
            response = predict_pb2.PredictResponse()
            response.model_spec.CopyFrom(request.model_spec)
            for name, value in outputs.items():
                response.outputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))
            return response

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Service(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(None)


def test_rest_json_matches_the_signature_names_and_dtypes(loaded):
    import tensorflow as tf

    from linnet.serving.client import rest_payload

    _, spec = loaded.signatures["serving_default"].structured_input_signature
    for format in ("instances", "inputs"):
        body = json.loads(json.dumps(rest_payload(ROWS, format)))  # survives JSON as is
        decoded = decode_json_inputs(body)
        assert set(decoded) == set(spec)
        assert all(spec[name].dtype == tf.string and spec[name].shape.as_list() == [None] for name in decoded)
        assert decoded == encoded_rows()  # texts as UTF-8, images through standard base64, exactly
    instance = rest_payload(ROWS)["instances"][0]
    assert instance["image_bytes"] == {"b64": base64.standard_b64encode(ROWS["image_bytes"][0]).decode()}


def test_grpc_request_round_trips_through_the_loaded_signature(loaded):
    import tensorflow as tf

    from linnet.serving.client import build_predict_request

    request = build_predict_request(ROWS, "tiny", "serving_default", version=1)
    request = type(request).FromString(request.SerializeToString())  # what goes over the wire
    assert request.model_spec.name == "tiny" and request.model_spec.version.value == 1
    inputs = {name: list(tf.make_ndarray(tensor)) for name, tensor in request.inputs.items()}
    assert inputs == encoded_rows()
    via_request = call_signature(loaded.signatures["serving_default"], inputs)
    direct = call_signature(loaded.signatures["serving_default"], encoded_rows())
    np.testing.assert_array_equal(via_request["path"], direct["path"])
    np.testing.assert_allclose(via_request["confidences"], direct["confidences"], rtol=1e-6)


def test_model_predict_savedmodel_and_clients_agree(loaded, image_model, tiny_taxonomy, calibration_path,
                                                    rest_server, grpc_server):
    import tensorflow as tf

    from linnet.inference.calibration_file import load_calibration
    from linnet.data.images import decode_image
    from linnet.inference.classifier import HierarchicalClassifier
    from linnet.serving.client import ServingClient

    classifier = HierarchicalClassifier(image_model, tiny_taxonomy, *load_calibration(calibration_path, tiny_taxonomy),
                                        top_k=3)
    image, present = decode_image(tf.constant(ROWS["image_bytes"]), IMAGE_SIZE)
    keras_outputs = classifier.predict({"title": np.array(ROWS["title"], dtype=object),
                                        "brand": np.array(ROWS["brand"], dtype=object),
                                        "image": image.numpy(), "image_present": present.numpy()}, verbose=0)
    saved = call_signature(loaded.signatures["serving_default"], encoded_rows())
    url, _ = rest_server
    rest_rows = ServingClient("tiny", rest_url=url).predict(ROWS)
    rest_columns = ServingClient("tiny", rest_url=url, rest_format="inputs").predict(ROWS)
    grpc = ServingClient("tiny", grpc_target=grpc_server).predict(ROWS)
    others = {"saved model": saved, "REST instances": rest_rows, "REST inputs": rest_columns, "gRPC": grpc}
    for where, other in others.items():
        for name in ("confidences", "top_k_scores", "embedding"):
            np.testing.assert_allclose(np.asarray(other[name], dtype=np.float32), keras_outputs[name], rtol=1e-5,
                                       atol=1e-6, err_msg=f"{where}: {name}")
        for name in ("class_ids", "depth", "full_class_ids"):
            np.testing.assert_array_equal(np.asarray(other[name]), keras_outputs[name], err_msg=f"{where}: {name}")
        paths = [path.decode() if isinstance(path, bytes) else path for path in other["path"]]
        assert paths == [path.decode() for path in keras_outputs["path"]], where
    np.testing.assert_array_equal(grpc["image_present"], [1.0, 0.0, 0.0])


def test_transient_failures_are_retried_then_reported(rest_server):
    from linnet.serving.client import ServingClient, ServingError

    url, state = rest_server
    state["fail_next"] = 2
    outputs = ServingClient("tiny", rest_url=url, retries=2, backoff=0.01).predict(ROWS)
    assert len(outputs["path"]) == 3 and state["fail_next"] == 0
    state["fail_next"] = 5
    with pytest.raises(ServingError, match="HTTP 503.*after 2 attempts"):
        ServingClient("tiny", rest_url=url, retries=1, backoff=0.01).predict(ROWS)
    state["fail_next"] = 0
    with pytest.raises(ServingError, match="HTTP 404"):  # not transient: no retry
        ServingClient("other", rest_url=url, retries=3, backoff=5).predict(ROWS)
    with pytest.raises(ServingError, match="after 1 attempts"):  # nothing listens on port 9
        ServingClient("tiny", rest_url="http://127.0.0.1:9", retries=0, timeout=1).predict(ROWS)
    with pytest.raises(ServingError, match="equally long"):
        ServingClient("tiny", rest_url=url).predict({"title": ["a"], "brand": []})


def test_catalog_batches_through_the_client(rest_server, export_schema, tiny_taxonomy, tmp_path):
    from linnet.serving.predict import predict_catalog
    from linnet.serving.client import ServingClient

    url, state = rest_server
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("id,title,brand,image\n" + "".join(f"p{index},item {index},acme,\n" for index in range(7)))
    client = ServingClient("tiny", rest_url=url, text_fields=["title", "brand"], image=True, taxonomy=tiny_taxonomy)
    calls_before = state["calls"]
    summary = predict_catalog(client, catalog, export_schema, tmp_path / "out.csv", tmp_path / "errors.csv",
                              batch_size=3, progress=False)
    assert summary["rows"] == 7 and state["calls"] - calls_before == 3  # batches of 3, 3, 1
    assert [len(body["instances"]) for body in state["bodies"][calls_before:]] == [3, 3, 1]
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert len(lines) == 8 and lines[1].startswith("p0,")


def test_serve_client_command(rest_server, capsys):
    from linnet.cli.main import main

    url, _ = rest_server
    assert main(["serve-client", "--model-name", "tiny", "--rest-url", url, "--title", "red tee",
                 "--text-fields", "title,brand", "--image"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert len(printed["path"]) == 1 and printed["image_present"] == [0.0]
    assert main(["serve-client", "--model-name", "tiny", "--rest-url", url, "--text-fields", "title,brand"]) == 2
    assert "--title TEXT, or --catalog" in capsys.readouterr().err
