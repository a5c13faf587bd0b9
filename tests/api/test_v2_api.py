"""The /v2 routes in process (httpx's ASGITransport): health, metadata, JSON and binary inference, errors."""

# ruff: noqa: E501  (tables of requests read best one request per line, as in tests/api)

from __future__ import annotations

import json
from importlib.metadata import version as metadata_version
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import tritonclient.http as triton
from numpy.typing import NDArray

from service.api.v2.protocol import InferenceResponse, ModelMetadata
from service.main import create_app
from service.settings import Settings

pytestmark = pytest.mark.anyio

INFER = "/v2/models/cross_entropy/infer"
SEED_LOGITS = [[-1, 0.5, 2], [-1, 0.5, 3]]
SEED_JSON: dict[str, Any] = {
    "inputs": [
        {"name": "logits", "datatype": "FP64", "shape": [2, 3], "data": [-1, 0.5, 2, -1, 0.5, 3]},
        {"name": "target", "datatype": "INT64", "shape": [2], "data": [1, 2]},
    ]
}
NUMPY: dict[str, type[np.generic]] = {
    "FP32": np.float32,
    "FP64": np.float64,
    "INT32": np.int32,
    "INT64": np.int64,
    "BOOL": np.bool_,
}


def binary_request(tensors: list[tuple[str, NDArray[Any]]], **fields: Any) -> tuple[bytes, dict[str, str]]:
    """Every tensor binary, the body written by hand; returns the body and its headers."""
    datatypes = {np.dtype(v): k for k, v in NUMPY.items()}
    header = {
        "inputs": [
            {
                "name": name,
                "datatype": datatypes[array.dtype],
                "shape": list(array.shape),
                "parameters": {"binary_data_size": array.nbytes},
            }
            for name, array in tensors
        ],
        **fields,
    }
    head = orjson.dumps(header)
    body = head + b"".join(array.astype(array.dtype.newbyteorder("<")).tobytes() for _, array in tensors)
    return body, {"Inference-Header-Content-Length": str(len(head))}


def seed_binary(**fields: Any) -> tuple[bytes, dict[str, str]]:
    return binary_request(
        [("logits", np.array(SEED_LOGITS, dtype=np.float32)), ("target", np.array([1, 2], dtype=np.int64))],
        **fields,
    )


def outputs_of(response: httpx.Response) -> dict[str, NDArray[Any]]:
    """Every output of a 200 response as an array, read the way tritonclient reads it."""
    assert response.status_code == 200, response.text
    length = response.headers.get("inference-header-content-length")
    if length is None:
        assert response.headers["content-type"] == "application/json"
        InferenceResponse.model_validate_json(response.content)
    else:
        assert response.headers["content-type"] == "application/octet-stream"
        InferenceResponse.model_validate_json(response.content[: int(length)])
    result = triton.InferenceServerClient.parse_response_body(
        response.content, header_length=None if length is None else int(length)
    )
    return {output["name"]: result.as_numpy(output["name"]) for output in result.get_response()["outputs"]}


def assert_error(response: httpx.Response, status: int, fragment: str) -> dict[str, Any]:
    """A problem+json with the protocol's error member, equal to detail, containing the fragment."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["error"] == body["detail"]
    assert fragment in body["error"], body["error"]
    return body


# --- health and metadata ----------------------------------------------------------------------


async def test_server_metadata_liveness_and_readiness(client: httpx.AsyncClient) -> None:
    metadata = (await client.get("/v2")).json()
    assert metadata["name"] == "xent-service"
    assert metadata["version"] == metadata_version("xent-service")
    assert "binary_tensor_data" in metadata["extensions"]
    assert (await client.get("/v2/health/live")).json() == {"live": True}
    assert (await client.get("/v2/health/ready")).json() == {"ready": True}


@pytest.mark.parametrize(
    ("model", "inputs", "outputs"),
    [
        (
            "cross_entropy",
            ["logits", "probabilities", "log_probabilities", "target", "weight", "sample_weight"],
            [
                "loss",
                "count",
                "losses",
                "softmax",
                "log_softmax",
                "grad",
                "predictions",
                "target_probability",
            ],
        ),
        (
            "binary_cross_entropy",
            ["logits", "probabilities", "target", "weight", "pos_weight", "sample_weight"],
            ["loss", "count", "losses", "sigmoid", "grad", "predictions"],
        ),
        ("softmax", ["logits"], ["softmax", "log_softmax"]),
        (
            "divergence",
            ["p", "q"],
            ["cross_entropy", "entropy", "kl_divergence", "cross_entropies", "entropies", "kl_divergences"],
        ),
    ],
)
async def test_model_metadata_and_readiness(
    client: httpx.AsyncClient, model: str, inputs: list[str], outputs: list[str]
) -> None:
    for path in (f"/v2/models/{model}", f"/v2/models/{model}/versions/1"):
        response = await client.get(path)
        assert response.status_code == 200
        metadata = ModelMetadata.model_validate(response.json())
        assert metadata.name == model
        assert metadata.versions == ["1"]
        assert [t.name for t in metadata.inputs] == inputs
        assert [t.name for t in metadata.outputs] == outputs
        assert all(all(d == -1 for d in t.shape) for t in metadata.inputs)
    for path in (f"/v2/models/{model}/ready", f"/v2/models/{model}/versions/1/ready"):
        assert (await client.get(path)).json() == {"name": model, "ready": True}


async def test_readiness_is_503_while_draining(settings: Settings) -> None:
    app = create_app(settings)
    app.state.lifecycle.start_draining()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service.test") as draining:
        server = await draining.get("/v2/health/ready")
        assert (server.status_code, server.json()) == (503, {"ready": False})
        model = await draining.get("/v2/models/softmax/ready")
        assert (model.status_code, model.json()) == (503, {"name": "softmax", "ready": False})
        assert (await draining.get("/v2/health/live")).status_code == 200


async def test_scalars_are_described_with_shape_empty(client: httpx.AsyncClient) -> None:
    metadata = (await client.get("/v2/models/cross_entropy")).json()
    shapes = {t["name"]: t["shape"] for t in metadata["outputs"]}
    assert shapes["loss"] == [] and shapes["count"] == []
    assert shapes["softmax"] == [-1, -1]


@pytest.mark.parametrize(
    ("method", "path", "status", "fragment"),
    [
        ("GET", "/v2/models/nope", 404, "unknown model 'nope'; the models are cross_entropy"),
        ("GET", "/v2/models/nope/ready", 404, "unknown model 'nope'"),
        (
            "GET",
            "/v2/models/softmax/versions/2",
            404,
            "model 'softmax' has no version '2'; its versions are 1",
        ),
        ("GET", "/v2/models/softmax/versions/2/ready", 404, "has no version '2'"),
        ("POST", "/v2/models/nope/infer", 404, "unknown model 'nope'"),
        ("POST", "/v2/models/softmax/versions/7/infer", 404, "has no version '7'"),
        ("GET", "/v2/nowhere", 404, "no such resource: /v2/nowhere"),
        (
            "GET",
            "/v2/models/softmax/infer",
            405,
            "GET is not allowed on /v2/models/softmax/infer; allowed: POST",
        ),
        ("DELETE", "/v2/models/softmax", 405, "allowed: GET"),
    ],
)
async def test_unknown_models_versions_paths_and_methods(
    client: httpx.AsyncClient, method: str, path: str, status: int, fragment: str
) -> None:
    response = await client.request(method, path, json=SEED_JSON if method == "POST" else None)
    assert_error(response, status, fragment)
    if status == 405:
        assert response.headers["allow"]


async def test_v1_routes_are_untouched_by_the_v2_fallback(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/cross-entropy")).status_code == 405
    assert "error" not in (await client.get("/nowhere")).json()
    assert (await client.get("/health/ready")).status_code == 200


# --- inference: the seed ----------------------------------------------------------------------


async def test_seed_in_json(client: httpx.AsyncClient) -> None:
    response = await client.post(INFER, json={**SEED_JSON, "id": "seed-1"})
    assert response.json()["id"] == "seed-1"
    assert response.json()["model_name"] == "cross_entropy"
    outputs = outputs_of(response)
    assert list(outputs) == ["loss", "count", "losses", "softmax"]  # the v1 defaults, loss and count first
    assert outputs["loss"].dtype == np.float64 and outputs["loss"].shape == ()
    assert outputs["loss"].item() == 0.9184928130357697
    assert outputs["count"].dtype == np.int64 and outputs["count"].item() == 2
    assert outputs["losses"].tolist() == [1.7413112966571571, 0.09567432941438228]
    np.testing.assert_allclose(
        outputs["softmax"],
        [[0.0391125733, 0.1752903921, 0.7855970346], [0.0166445186, 0.0745955571, 0.9087599243]],
    )


async def test_seed_with_binary_tensors_both_ways(client: httpx.AsyncClient) -> None:
    body, headers = seed_binary(
        outputs=[
            {"name": name, "parameters": {"binary_data": True}} for name in ("loss", "softmax", "predictions")
        ]
    )
    request = client.build_request("POST", INFER, content=body, headers=headers)
    assert "content-type" not in request.headers  # as tritonclient sends it
    response = await client.send(request)
    assert response.headers["content-type"] == "application/octet-stream"
    header_length = int(response.headers["inference-header-content-length"])
    header = json.loads(response.content[:header_length])
    assert [o["parameters"]["binary_data_size"] for o in header["outputs"]] == [4, 24, 16]
    outputs = outputs_of(response)
    assert outputs["loss"].dtype == np.float32
    assert round(float(outputs["loss"]), 4) == 0.9185
    np.testing.assert_allclose(
        outputs["softmax"], [[0.0391, 0.1753, 0.7856], [0.0166, 0.0746, 0.9088]], atol=5e-5
    )
    assert outputs["predictions"].tolist() == [2, 2]


@pytest.mark.parametrize("content_type", [None, "application/octet-stream", "application/json"])
async def test_accepted_content_types(client: httpx.AsyncClient, content_type: str | None) -> None:
    body, headers = seed_binary()
    if content_type:
        headers["Content-Type"] = content_type
    assert (await client.post(INFER, content=body, headers=headers)).status_code == 200


async def test_other_content_types_are_415_with_error(client: httpx.AsyncClient) -> None:
    body, headers = seed_binary()
    response = await client.post(INFER, content=body, headers={**headers, "Content-Type": "text/plain"})
    assert_error(response, 415, "Content-Type text/plain is not supported; send application/octet-stream")


async def test_a_body_over_the_limit_is_413_with_error(client: httpx.AsyncClient, settings: Settings) -> None:
    body = b"{" + b" " * settings.max_body_bytes + b"}"
    response = await client.post(INFER, content=body)
    assert_error(response, 413, f"larger than the limit of {settings.max_body_bytes} bytes")


async def test_the_versioned_path_and_every_output_in_the_order_asked(client: httpx.AsyncClient) -> None:
    names = ["target_probability", "predictions", "grad", "log_softmax", "count"]
    request = {**SEED_JSON, "outputs": [{"name": name} for name in names]}
    response = await client.post("/v2/models/cross_entropy/versions/1/infer", json=request)
    outputs = outputs_of(response)
    assert list(outputs) == names
    assert response.json()["model_version"] == "1"
    np.testing.assert_allclose(outputs["target_probability"], [0.1752903921400367, 0.9087599242585133])
    assert outputs["grad"].shape == (2, 3)


async def test_the_body_may_name_the_model_as_kserve_s_client_does(client: httpx.AsyncClient) -> None:
    named = {**SEED_JSON, "id": "x", "model_name": "cross_entropy", "model_version": "1"}
    assert outputs_of(await client.post(INFER, json=named))["count"].item() == 2
    assert outputs_of(await client.post("/v2/models/cross_entropy/versions/1/infer", json=named))
    other = await client.post(INFER, json={**named, "model_name": "softmax"})
    assert_error(other, 400, "the request names model 'softmax' but was sent to model 'cross_entropy'")
    version = await client.post(INFER, json={**named, "model_version": "2"})
    assert_error(version, 400, "the request names version '2' of model 'cross_entropy', which has 1")


async def test_binary_data_per_output_overrides_binary_data_output(client: httpx.AsyncClient) -> None:
    request = {
        **SEED_JSON,
        "parameters": {"binary_data_output": True},
        "outputs": [{"name": "loss", "parameters": {"binary_data": False}}, {"name": "losses"}],
    }
    response = await client.post(INFER, json=request)
    header = json.loads(response.content[: int(response.headers["inference-header-content-length"])])
    assert header["outputs"][0]["data"] == [0.9184928130357697]
    assert header["outputs"][1]["parameters"] == {"binary_data_size": 16}
    assert outputs_of(response)["losses"].tolist() == [1.7413112966571571, 0.09567432941438228]


# --- inference: semantics ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("datatype", "parameters", "expected"),
    [
        ("FP32", {}, np.float32),
        ("FP64", {}, np.float64),
        ("INT64", {}, np.float64),
        ("FP32", {"dtype": "float64"}, np.float64),
        ("FP64", {"dtype": "float32"}, np.float32),
    ],
)
async def test_precision_follows_the_input_unless_dtype_says(
    client: httpx.AsyncClient, datatype: str, parameters: dict[str, str], expected: type[np.floating[Any]]
) -> None:
    logits: NDArray[Any] = np.array([[-1, 0, 2], [-1, 0, 3]], dtype=NUMPY[datatype])
    body, headers = binary_request(
        [("logits", logits), ("target", np.array([1, 2]))],
        parameters=parameters,
        outputs=[{"name": "loss"}, {"name": "softmax"}, {"name": "predictions"}],
    )
    outputs = outputs_of(await client.post(INFER, content=body, headers=headers))
    assert outputs["loss"].dtype == expected
    assert outputs["softmax"].dtype == expected
    assert outputs["predictions"].dtype == np.int64
    wide = logits.astype(np.float64)
    log_softmax = wide - wide.max(axis=1, keepdims=True)
    log_softmax -= np.log(np.exp(log_softmax).sum(axis=1, keepdims=True))
    expected_loss = -(log_softmax[0, 1] + log_softmax[1, 2]) / 2
    rtol = 1e-6 if expected == np.float32 else 1e-15
    assert float(outputs["loss"]) == pytest.approx(expected_loss, rel=rtol)


async def test_undefined_values_are_absent_and_ignored_targets_have_probability_minus_one(
    client: httpx.AsyncClient,
) -> None:
    every_ignored: dict[str, Any] = {
        "inputs": [
            {"name": "logits", "datatype": "FP64", "shape": [2, 3], "data": [-1, 0.5, 2, -1, 0.5, 3]},
            {"name": "target", "datatype": "INT64", "shape": [2], "data": [-100, -100]},
        ],
        "outputs": [{"name": "loss"}, {"name": "count"}, {"name": "target_probability"}, {"name": "grad"}],
    }
    outputs = outputs_of(await client.post(INFER, json=every_ignored))
    assert "loss" not in outputs  # PyTorch: NaN; v1: null
    assert outputs["count"].item() == 0
    assert outputs["target_probability"].tolist() == [-1.0, -1.0]
    assert not outputs["grad"].any()

    one_ignored = {**every_ignored, "parameters": {"reduction": "none", "binary_data_output": True}}
    one_ignored["inputs"] = [every_ignored["inputs"][0], {**every_ignored["inputs"][1], "data": [1, -100]}]
    response = await client.post(INFER, json=one_ignored)
    outputs = outputs_of(response)
    assert "loss" not in outputs  # reduction "none"
    assert outputs["target_probability"].tolist() == [pytest.approx(0.1752903921400367), -1.0]
    assert b"NaN" not in response.content and b"null" not in response.content


async def test_an_int32_target_and_int_logits_give_the_same_numbers(client: httpx.AsyncClient) -> None:
    reference = outputs_of(await client.post(INFER, json=SEED_JSON))
    body, headers = binary_request(
        [("logits", np.array(SEED_LOGITS, dtype=np.float64)), ("target", np.array([1, 2], dtype=np.int32))]
    )
    outputs = outputs_of(await client.post(INFER, content=body, headers=headers))
    assert outputs["loss"].item() == reference["loss"].item()
    integers = {
        "inputs": [
            {**SEED_JSON["inputs"][0], "datatype": "INT64", "data": [-1, 0, 2, -1, 0, 3]},
            SEED_JSON["inputs"][1],
        ]
    }
    assert outputs_of(await client.post(INFER, json=integers))["loss"].dtype == np.float64


async def test_soft_targets_are_floating_point(client: httpx.AsyncClient) -> None:
    soft = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    body, headers = binary_request([("logits", np.array(SEED_LOGITS, dtype=np.float64)), ("labels", soft)])
    outputs = outputs_of(await client.post(INFER, content=body, headers=headers))
    assert outputs["loss"].item() == pytest.approx(0.9184928130357697, rel=1e-15)


async def test_binary_cross_entropy_takes_bool_targets(client: httpx.AsyncClient) -> None:
    logits = np.array([[1.2, -0.8, 0.3], [-1.5, 2.0, 0.0]])
    answers = []
    for target in (np.array([[1, 0, 1], [0, 1, 0]], dtype=np.bool_), np.array([[1.0, 0, 1], [0, 1, 0]])):
        body, headers = binary_request(
            [("logits", logits), ("target", target), ("pos_weight", np.array([2.0, 1, 1]))],
            outputs=[{"name": "loss"}, {"name": "predictions"}],
        )
        answers.append(
            outputs_of(
                await client.post("/v2/models/binary_cross_entropy/infer", content=body, headers=headers)
            )
        )
    assert answers[0]["loss"].item() == answers[1]["loss"].item() == pytest.approx(0.41226, abs=1e-4)
    assert answers[0]["predictions"].tolist() == [[1, 0, 1], [0, 1, 1]]


async def test_softmax_and_divergence(client: httpx.AsyncClient) -> None:
    body, headers = binary_request(
        [("logits", np.array(SEED_LOGITS, dtype=np.float32))], parameters={"temperature": 0.5}
    )
    outputs = outputs_of(await client.post("/v2/models/softmax/infer", content=body, headers=headers))
    assert list(outputs) == ["softmax", "log_softmax"]
    assert outputs["softmax"].dtype == np.float32
    assert round(float(outputs["softmax"][1, 2]), 4) == 0.9930

    q = [0.1058, 0.1043, 0.0988, 0.1066, 0.0875, 0.0881, 0.1027, 0.1046, 0.1057, 0.0958]
    request = {
        "inputs": [
            {"name": "p", "datatype": "INT64", "shape": [1, 10], "data": [0, 0, 0, 0, 1, 0, 0, 0, 0, 0]},
            {"name": "q", "datatype": "FP64", "shape": [1, 10], "data": q},
        ],
        "parameters": {"reduction": "none"},
    }
    outputs = outputs_of(await client.post("/v2/models/divergence/infer", json=request))
    assert list(outputs) == ["cross_entropies", "entropies", "kl_divergences"]  # reduced ones: null in v1
    assert outputs["cross_entropies"].tolist() == [2.436116485618568]


async def test_a_large_binary_batch_is_computed_off_the_event_loop(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(300, 100)).astype(np.float32)
    target = rng.integers(0, 100, 300)
    body, headers = binary_request(
        [("logits", logits), ("target", target)], parameters={"binary_data_output": True}
    )
    assert len(body) > settings.offload_bytes
    outputs = outputs_of(await client.post(INFER, content=body, headers=headers))
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    expected = -log_softmax[np.arange(300), target]
    np.testing.assert_allclose(outputs["losses"], expected, rtol=1e-5, atol=1e-6)
    assert outputs["softmax"].shape == (300, 100)


# --- inference: bad requests ------------------------------------------------------------------


def seed_with(inputs: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
    return {"inputs": SEED_JSON["inputs"] if inputs is None else inputs, **fields}


LOGITS, TARGET = SEED_JSON["inputs"]

# (id, model, request, fragment of the error)
# fmt: off
BAD_CONTENT: list[tuple[str, str, dict[str, Any], str]] = [
    ("target-out-of-range", "cross_entropy", seed_with([LOGITS, {**TARGET, "data": [1, 7]}]), "target[1] = 7 is out of range for 3 classes"),
    ("unknown-input", "cross_entropy", seed_with([LOGITS, TARGET, {**TARGET, "name": "tragte"}]), "input 'tragte' is not an input of model 'cross_entropy'; it takes logits, probabilities"),
    ("missing-target", "cross_entropy", seed_with([LOGITS]), "model 'cross_entropy' needs the input 'target'"),
    ("missing-scores", "cross_entropy", seed_with([TARGET]), "needs one of the inputs logits, probabilities, log_probabilities"),
    ("two-scores", "cross_entropy", seed_with([LOGITS, {**LOGITS, "name": "probabilities"}, TARGET]), "send only one of the inputs logits, probabilities, log_probabilities (found: logits, probabilities)"),
    ("target-and-labels", "cross_entropy", seed_with([LOGITS, TARGET, {**TARGET, "name": "labels"}]), "send the input 'target' either as 'target' or as its alias 'labels', not both"),
    ("bool-logits", "cross_entropy", seed_with([{**LOGITS, "datatype": "BOOL", "data": [True] * 6}, TARGET]), "input 'logits': datatype BOOL is not accepted; use FP32, FP64, INT32, INT64"),
    ("int-soft-target", "cross_entropy", seed_with([LOGITS, {**TARGET, "shape": [2, 3], "data": [0, 1, 0, 0, 0, 1]}]), "target of datatype INT64 holds class indices, which have the shape of logits without its class dimension, [2]"),
    ("float-index-target", "cross_entropy", seed_with([LOGITS, {**TARGET, "datatype": "FP64", "data": [1.0, 2.0]}]), "target of datatype FP64 holds class probabilities, which have the shape of logits, [2, 3]"),
    ("ignore-index-string", "cross_entropy", seed_with(parameters={"ignore_index": "3"}), "parameter 'ignore_index' must be an integer, not \"3\""),
    ("ignore-index-float", "cross_entropy", seed_with(parameters={"ignore_index": 3.0}), "parameter 'ignore_index' must be an integer, not 3.0"),
    ("smoothing-bool", "cross_entropy", seed_with(parameters={"label_smoothing": True}), "parameter 'label_smoothing' must be a number, not true"),
    ("smoothing-range", "cross_entropy", seed_with(parameters={"label_smoothing": 1.5}), "label_smoothing = 1.5 is outside [0, 1]"),
    ("reduction-unknown", "cross_entropy", seed_with(parameters={"reduction": "avg"}), "reduction = 'avg' is not one of 'mean', 'sum', 'none'"),
    ("dtype-unknown", "cross_entropy", seed_with(parameters={"dtype": "float16"}), "dtype = 'float16' is not one of 'float64', 'float32'"),
    ("unknown-parameter", "cross_entropy", seed_with(parameters={"temperature": 2}), "parameter 'temperature' is not a parameter of model 'cross_entropy'; it takes ignore_index, reduction"),
    ("unknown-output", "cross_entropy", seed_with(outputs=[{"name": "sigmoid"}]), "output 'sigmoid' is not an output of model 'cross_entropy'; it has loss, count"),
    ("soft-with-ignore-index", "cross_entropy", seed_with([LOGITS, {**TARGET, "datatype": "FP64", "shape": [2, 3], "data": [0, 1, 0, 0, 0, 1]}], parameters={"ignore_index": 1}), "ignore_index applies to class-index targets only"),
    ("bce-pos-weight-probabilities", "binary_cross_entropy", seed_with([{**LOGITS, "name": "probabilities", "data": [0.5] * 6}, {**LOGITS, "name": "target", "data": [1, 0, 1, 0, 1, 0]}, {"name": "pos_weight", "datatype": "FP64", "shape": [3], "data": [1, 2, 3]}]), "pos_weight applies to logits only"),
    ("empty-batch", "cross_entropy", seed_with([{**LOGITS, "shape": [0, 3], "data": []}, {**TARGET, "shape": [0], "data": []}]), "logits has shape (0, 3): every dimension needs at least one element"),
    ("empty-binary", "softmax", seed_with([{**LOGITS, "shape": [2, 0], "data": []}]), "logits has shape (2, 0): an array with at least one element per dimension is needed"),
    ("softmax-dim", "softmax", seed_with([LOGITS], parameters={"dim": 2}), "dim = 2 is out of range for logits with 2 dimension(s)"),
    ("softmax-temperature-string", "softmax", seed_with([LOGITS], parameters={"temperature": "hot"}), "parameter 'temperature' must be a number, not \"hot\""),
    ("divergence-base", "divergence", seed_with([{**LOGITS, "name": "p", "data": [0.5, 0.5, 0, 0, 0, 1]}, {**LOGITS, "name": "q", "data": [0.5, 0.5, 0, 0, 0, 1]}], parameters={"base": 2}), "parameter 'base' must be a string, not 2"),
    ("divergence-not-distribution", "divergence", seed_with([{**LOGITS, "name": "p", "data": [0.5, 0.6, 0, 0, 0, 1]}, {**LOGITS, "name": "q", "data": [0.5, 0.5, 0, 0, 0, 1]}]), "p[0][:] is not a probability distribution: sums to 1.1"),
]
# fmt: on


@pytest.mark.parametrize(
    ("model", "request_body", "fragment"), [c[1:] for c in BAD_CONTENT], ids=[c[0] for c in BAD_CONTENT]
)
async def test_bad_content_is_400_naming_the_input_or_parameter(
    client: httpx.AsyncClient, model: str, request_body: dict[str, Any], fragment: str
) -> None:
    response = await client.post(f"/v2/models/{model}/infer", json=request_body)
    body = assert_error(response, 400, fragment)
    assert body["errors"], body


async def test_v1_and_v2_give_the_same_message_for_the_same_mistake(client: httpx.AsyncClient) -> None:
    v1 = await client.post("/v1/cross-entropy", json={"logits": SEED_LOGITS, "target": [1, 7]})
    v2 = await client.post(INFER, json=seed_with([LOGITS, {**TARGET, "data": [1, 7]}]))
    assert v1.json()["detail"] == v2.json()["error"] == "target[1] = 7 is out of range for 3 classes"
    assert v1.json()["errors"] == v2.json()["errors"]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("label_smoothing", 2, "label_smoothing = 2.0 is outside [0, 1]"),
        ("epsilon", 0.5, "epsilon = 0.5 is outside the open interval (0, 0.5)"),
    ],
)
async def test_one_validator_per_option_for_v1_and_v2(
    client: httpx.AsyncClient, name: str, value: float, message: str
) -> None:
    """The core checks an option's bounds for both protocols: one error type, one message, each
    located where its request has the option (a /v1 field, a /v2 parameter: where binding locates a
    parameter of the wrong type too)."""
    v1 = await client.post("/v1/cross-entropy", json={"logits": SEED_LOGITS, "target": [1, 2], name: value})
    v2 = await client.post(INFER, json=seed_with(parameters={name: value}))
    assert v1.status_code == 422 and v2.status_code == 400
    assert v1.json()["detail"] == v2.json()["error"] == message
    assert v1.json()["errors"] == [{"loc": [name], "msg": message, "type": "out_of_range"}]
    assert v2.json()["errors"] == [{"loc": ["parameters", name], "msg": message, "type": "out_of_range"}]
    wrong_type = await client.post(INFER, json=seed_with(parameters={name: "x"}))
    assert [error["loc"] for error in wrong_type.json()["errors"]] == [["parameters", name]]


def _seed_body() -> tuple[bytes, int]:
    body, headers = seed_binary()
    return body, int(headers["Inference-Header-Content-Length"])


# (id, body, Inference-Header-Content-Length, fragment)
MALFORMED_BINARY: list[tuple[str, bytes, str, str]] = [
    (
        "blob-too-short",
        _seed_body()[0][:-8],
        str(_seed_body()[1]),
        "input 'target': its 16 bytes of binary data run past the end",
    ),
    (
        "blob-too-long",
        _seed_body()[0] + b"\x00" * 4,
        str(_seed_body()[1]),
        "4 byte(s) after the binary data of the inputs",
    ),
    (
        "header-past-body",
        _seed_body()[0],
        str(len(_seed_body()[0]) + 1),
        f"says {len(_seed_body()[0]) + 1} bytes, but the body has only {len(_seed_body()[0])}",
    ),
    (
        "header-not-a-number",
        _seed_body()[0],
        "12e3",
        "Inference-Header-Content-Length header is '12e3', not a byte count",
    ),
    ("header-too-short", _seed_body()[0], str(_seed_body()[1] - 5), "the JSON header is not valid JSON"),
    ("header-too-long", _seed_body()[0], str(_seed_body()[1] + 5), "the JSON header is not valid JSON"),
    ("no-header-length", _seed_body()[0], "", "needs the Inference-Header-Content-Length header"),
    (
        "unknown-datatype",
        _seed_body()[0].replace(b'"FP32"', b'"FP16"'),
        str(_seed_body()[1]),
        "input 'logits': datatype 'FP16' is not supported",
    ),
    (
        "wrong-size",
        _seed_body()[0].replace(b'"binary_data_size":24', b'"binary_data_size":20'),
        str(_seed_body()[1]),
        "input 'logits': binary_data_size is 20 bytes, but shape [2, 3] of FP32 needs 6 x 4 = 24",
    ),
    (
        "size-not-integer",
        _seed_body()[0].replace(b'"binary_data_size":24', b'"binary_data_size":2.4'),
        str(_seed_body()[1] - 1 + 2),
        "binary_data_size must be an integer, not 2.4",
    ),
    (
        "shape-mismatch",
        _seed_body()[0].replace(b'"shape":[2,3]', b'"shape":[3,3]'),
        str(_seed_body()[1]),
        "binary_data_size is 24 bytes, but shape [3, 3] of FP32 needs 9 x 4 = 36",
    ),
    ("not-an-object", b"[]", "2", "the inference request must be a JSON object"),
    ("empty", b"", "", "the JSON header is not valid JSON"),
]


@pytest.mark.parametrize(
    ("body", "length", "fragment"), [c[1:] for c in MALFORMED_BINARY], ids=[c[0] for c in MALFORMED_BINARY]
)
async def test_malformed_binary_bodies_are_clean_400s(
    client: httpx.AsyncClient, body: bytes, length: str, fragment: str
) -> None:
    headers = {"Inference-Header-Content-Length": length} if length else {}
    assert_error(await client.post(INFER, content=body, headers=headers), 400, fragment)


async def test_non_finite_json_data_is_named_with_its_position(client: httpx.AsyncClient) -> None:
    body = orjson.dumps(SEED_JSON).replace(b"[-1,0.5,2,-1,0.5,3]", b"[-1, 0.5, 2, -1, 0.5, 1e400]")
    assert b"1e400" in body
    assert_error(
        await client.post(INFER, content=body), 400, "logits[1][2] = Infinity is not a finite number"
    )
    body = body.replace(b"1e400", b"NaN")
    assert_error(await client.post(INFER, content=body), 400, "logits[1][2] = NaN is not a finite number")


async def test_empty_binary_tensors_are_a_clean_400(client: httpx.AsyncClient) -> None:
    body, headers = binary_request(
        [("logits", np.zeros((0, 3), dtype=np.float32)), ("target", np.zeros(0, dtype=np.int64))]
    )
    assert_error(
        await client.post(INFER, content=body, headers=headers),
        400,
        "every dimension needs at least one element",
    )


async def test_nan_in_a_binary_tensor_is_named_with_its_position(client: httpx.AsyncClient) -> None:
    logits = np.array(SEED_LOGITS, dtype=np.float32)
    logits[1, 0] = np.nan
    body, headers = binary_request([("logits", logits), ("target", np.array([1, 2]))])
    assert_error(
        await client.post(INFER, content=body, headers=headers),
        400,
        "logits[1][0] = NaN is not a finite number",
    )


async def test_every_truncation_of_a_binary_body_is_a_clean_400(client: httpx.AsyncClient) -> None:
    body, length = _seed_body()
    for end in range(len(body)):
        for header in (str(length), str(end)):
            response = await client.post(
                INFER, content=body[:end], headers={"Inference-Header-Content-Length": header}
            )
            assert response.status_code == 400, (end, header, response.text)
            assert response.json()["error"]


async def test_random_corruption_never_gives_a_500(client: httpx.AsyncClient) -> None:
    body, length = _seed_body()
    rng = np.random.default_rng(11)
    for _ in range(300):
        corrupted = bytearray(body)
        for position in rng.integers(0, len(body), 3):
            corrupted[position] = int(rng.integers(0, 256))
        response = await client.post(
            INFER, content=bytes(corrupted), headers={"Inference-Header-Content-Length": str(length)}
        )
        assert response.status_code in {200, 400}, response.text
