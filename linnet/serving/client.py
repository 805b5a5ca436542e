"""Client for a LinNét model behind TF Serving: REST (``instances``/``inputs``) and gRPC ``PredictionService``.

Raw inputs are a dict ``{input name: list of str/bytes}`` (one list per text field, plus ``image_bytes``
with encoded JPEG/PNG bytes or ``b""``), the names of the export's ``serving_default`` signature.
REST sends images as ``{"b64": "<standard base64>"}``; gRPC sends ``DT_STRING`` tensors.
Transient failures (connection errors, HTTP 429/5xx, gRPC ``UNAVAILABLE``/``DEADLINE_EXCEEDED``/
``RESOURCE_EXHAUSTED``) are retried with exponential back-off; every call has a timeout.

Example:
    >>> payload = rest_payload({"title": ["red shirt"], "image_bytes": [b"\\x89PNG"]})
    >>> payload["instances"][0]["image_bytes"]
    {'b64': 'iVBORw=='}
    >>> client = ServingClient("fashion", rest_url="http://localhost:8501")  # doctest: +SKIP
    >>> client.predict({"title": ["red shirt"], "image_bytes": [b""]})["path"]  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping, Sequence

import numpy as np

from linnet.errors import LinnetError

IMAGE_BYTES_INPUT = "image_bytes"
_RETRY_HTTP_STATUS = {429, 500, 502, 503, 504}


class ServingError(LinnetError):
    """TF Serving refused a request or could not be reached after the retries (names URL/target and reason)."""


def _as_bytes(value) -> bytes:
    if isinstance(value, bytes):
        return value
    if value is None:
        return b""
    return str(value).encode("utf-8")


def _json_value(name: str, value):
    if name == IMAGE_BYTES_INPUT or isinstance(value, bytes) and not _is_utf8(value):
        return {"b64": base64.standard_b64encode(_as_bytes(value)).decode("ascii")}
    return value.decode("utf-8") if isinstance(value, bytes) else ("" if value is None else str(value))


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def check_inputs(inputs: Mapping[str, Sequence]) -> int:
    """Number of rows; `ServingError` when the columns differ in length or there are none."""
    lengths = {name: len(values) for name, values in inputs.items()}
    if not lengths or len(set(lengths.values())) != 1:
        raise ServingError(f"inputs must be equally long non-empty columns, got lengths {lengths}")
    return next(iter(lengths.values()))


def rest_payload(inputs: Mapping[str, Sequence], format: str = "instances",
                 signature_name: str = "serving_default") -> dict:
    """The JSON body of a TF Serving REST ``:predict`` call.

    Args:
        inputs: ``{input name: values}``, one entry per signature input.
        format: ``"instances"`` (row format: a list of ``{name: value}``) or ``"inputs"`` (columnar).
        signature_name: the signature to call.
    """
    rows = check_inputs(inputs)
    columns = {name: [_json_value(name, value) for value in values] for name, values in inputs.items()}
    if format == "instances":
        return {"signature_name": signature_name,
                "instances": [{name: column[row] for name, column in columns.items()} for row in range(rows)]}
    if format == "inputs":
        return {"signature_name": signature_name, "inputs": columns}
    raise ServingError(f"REST format must be 'instances' or 'inputs', got {format!r}")


def build_predict_request(inputs: Mapping[str, Sequence], model_name: str, signature_name: str = "serving_default",
                          version: int | None = None):
    """A ``tensorflow_serving.apis.predict_pb2.PredictRequest`` with one ``DT_STRING [B]`` tensor per input."""
    from tensorflow.core.framework import (  # lazy: gRPC only
        tensor_pb2,
        tensor_shape_pb2,
        types_pb2,
    )
    from tensorflow_serving.apis import predict_pb2  # lazy: as above

    rows = check_inputs(inputs)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = int(version)
    for name, values in inputs.items():
        request.inputs[name].CopyFrom(tensor_pb2.TensorProto(
            dtype=types_pb2.DT_STRING,
            tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=rows)]),
            string_val=[_as_bytes(value) for value in values]))
    return request


def response_arrays(response) -> dict[str, np.ndarray]:
    """The outputs of a gRPC ``PredictResponse`` as NumPy arrays (strings as ``bytes``)."""
    import tensorflow as tf  # lazy: gRPC only (the REST client runs without TensorFlow)

    return {name: tf.make_ndarray(tensor) for name, tensor in response.outputs.items()}


def rest_arrays(body: Mapping) -> dict[str, np.ndarray]:
    """The outputs of a REST response (``predictions`` rows or ``outputs`` columns) as NumPy arrays."""
    if "predictions" in body:
        rows = body["predictions"]
        if rows and not isinstance(rows[0], Mapping):  # a single-output signature returns bare values
            return {"output": np.asarray(rows)}
        return {name: np.asarray([row[name] for row in rows]) for name in (rows[0] if rows else {})}
    outputs = body.get("outputs", {})
    if not isinstance(outputs, Mapping):
        return {"output": np.asarray(outputs)}
    return {name: np.asarray(value) for name, value in outputs.items()}


class ServingClient:
    """Calls one model on TF Serving over REST or gRPC, with timeouts, retries and batching.

    Args:
        model_name: the name TF Serving serves the model under (``models.config``).
        rest_url: e.g. ``http://localhost:8501`` (REST).
        grpc_target: e.g. ``localhost:8500`` (gRPC); used when given, else REST.
        signature_name: the signature to call.
        version: a fixed model version (default: the newest TF Serving serves).
        timeout: seconds per call.
        retries: extra attempts after a transient failure.
        backoff: seconds before the first retry; doubles each time.
        rest_format: ``"instances"`` or ``"inputs"``.
        text_fields, image: the signature's inputs (for catalog batching); read them from the export's
            ``assets/inputs.json`` or its model card.
        taxonomy: the export's taxonomy (``assets/taxonomy.json``), needed by `linnet.serving.predict.predict_catalog`.
    """

    def __init__(self, model_name: str, rest_url: str | None = None, grpc_target: str | None = None,
                 signature_name: str = "serving_default", version: int | None = None, timeout: float = 10.0,
                 retries: int = 3, backoff: float = 0.5, rest_format: str = "instances",
                 text_fields: Sequence[str] = ("title",), image: bool = False, taxonomy=None):
        if not rest_url and not grpc_target:
            raise ServingError("give a REST URL (http://host:8501) or a gRPC target (host:8500)")
        self.model_name = model_name
        self.rest_url = rest_url.rstrip("/") if rest_url else None
        self.grpc_target = grpc_target
        self.signature_name = signature_name
        self.version = version
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.rest_format = rest_format
        self.text_fields = list(text_fields)
        self.image = bool(image)
        self.taxonomy = taxonomy
        self._session = None
        self._stub = None

    @property
    def input_names(self) -> list[str]:
        return self.text_fields + ([IMAGE_BYTES_INPUT] if self.image else [])

    @property
    def predict_url(self) -> str:
        version = f"/versions/{self.version}" if self.version is not None else ""
        return f"{self.rest_url}/v1/models/{self.model_name}{version}:predict"

    def predict(self, inputs: Mapping[str, Sequence]) -> dict[str, np.ndarray]:
        """One call with raw inputs; returns the signature's outputs as NumPy arrays."""
        if self.grpc_target:
            return self._with_retries(self._predict_grpc, inputs, self.grpc_target)
        return self._with_retries(self._predict_rest, inputs, self.predict_url)

    predict_raw = predict  # the interface `linnet.serving.predict.predict_catalog` batches through

    def _with_retries(self, call, inputs, where: str):
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                return call(inputs)
            except _Transient as error:
                if attempt == self.retries:
                    raise ServingError(f"{where}: {error} (after {self.retries + 1} attempts)") from None
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def _predict_rest(self, inputs):
        import requests  # lazy: REST only

        if self._session is None:
            self._session = requests.Session()
        payload = rest_payload(inputs, self.rest_format, self.signature_name)
        try:
            response = self._session.post(self.predict_url, json=payload, timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as error:
            raise _Transient(f"{type(error).__name__}: {error}") from None
        if response.status_code in _RETRY_HTTP_STATUS:
            raise _Transient(f"HTTP {response.status_code}: {response.text[:300]}")
        if response.status_code != 200:
            raise ServingError(f"{self.predict_url}: HTTP {response.status_code}: {response.text[:500]}")
        return rest_arrays(response.json())

    def _predict_grpc(self, inputs):
        import grpc  # lazy: gRPC only
        from tensorflow_serving.apis import prediction_service_pb2_grpc  # lazy: as grpc

        if self._stub is None:
            channel = grpc.insecure_channel(self.grpc_target, options=[
                ("grpc.max_receive_message_length", 256 * 1024 * 1024),
                ("grpc.max_send_message_length", 256 * 1024 * 1024)])
            self._stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = build_predict_request(inputs, self.model_name, self.signature_name, self.version)
        try:
            response = self._stub.Predict(request, timeout=self.timeout)
        except grpc.RpcError as error:
            code = error.code() if hasattr(error, "code") else None
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                        grpc.StatusCode.RESOURCE_EXHAUSTED):
                raise _Transient(f"gRPC {code.name}: {error.details() if hasattr(error, 'details') else error}") from None
            raise ServingError(f"{self.grpc_target}: gRPC {getattr(code, 'name', code)}: "
                               f"{error.details() if hasattr(error, 'details') else error}") from None
        return response_arrays(response)


class _Transient(Exception):
    """A failure worth retrying."""
