"""The /v1 reference cases, translated to Open Inference Protocol requests, and v2 answers translated back.

A v1 request's arrays become input tensors (FP64, so that the default precision stays v1's float64;
a cross-entropy target of the input's own shape is FP64 class probabilities, any other is INT64 class
indices); its options become parameters; ``outputs`` lists ``loss`` and ``count`` and the arrays the
case expects. A v2 answer becomes a dict shaped like the v1 response, so that ``assert_matches``
compares it with PyTorch's values: absent outputs are null, and ``target_probability``'s -1 (an
ignored target) is NaN, as ``assert_matches`` reads v1's null.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import tritonclient.http as triton
from numpy.typing import NDArray

from tests.reference import Case, request_of

__all__ = [
    "DATATYPES",
    "MODELS",
    "V2Request",
    "as_v1_response",
    "binary_body",
    "json_body",
    "triton_inputs",
    "triton_outputs",
    "v2_request",
]

MODELS: Final = {
    "/v1/cross-entropy": "cross_entropy",
    "/v1/binary-cross-entropy": "binary_cross_entropy",
    "/v1/softmax": "softmax",
    "/v1/divergence": "divergence",
}
INPUT_FIELDS: Final = {
    "/v1/cross-entropy": ("logits", "probabilities", "log_probabilities", "target", "labels", "weight"),
    "/v1/binary-cross-entropy": ("logits", "probabilities", "target", "labels", "weight", "pos_weight"),
    "/v1/softmax": ("logits",),
    "/v1/divergence": ("p", "q"),
}
DEFAULT_ARRAYS: Final = {
    "/v1/cross-entropy": ["losses", "softmax"],
    "/v1/binary-cross-entropy": ["losses", "sigmoid"],
    "/v1/softmax": ["softmax", "log_softmax"],
    "/v1/divergence": [
        "cross_entropy",
        "entropy",
        "kl_divergence",
        "cross_entropies",
        "entropies",
        "kl_divergences",
    ],
}
DATATYPES: Final = {
    np.dtype(np.float64): "FP64",
    np.dtype(np.float32): "FP32",
    np.dtype(np.int64): "INT64",
    np.dtype(np.int32): "INT32",
    np.dtype(np.bool_): "BOOL",
}


@dataclass(frozen=True)
class V2Request:
    """A translated case: the model, the input arrays (in order), parameters and output names."""

    model: str
    inputs: list[tuple[str, NDArray[Any]]]
    parameters: dict[str, Any]
    outputs: list[str]


def v2_request(case: Case) -> V2Request:
    endpoint = case["endpoint"]
    request = request_of(case)
    fields = INPUT_FIELDS[endpoint]
    scores = next((np.asarray(request[name]) for name in fields if name in request), None)
    inputs: list[tuple[str, NDArray[Any]]] = []
    for name in fields:
        if name not in request:
            continue
        value = np.asarray(request[name])
        index_target = (
            endpoint == "/v1/cross-entropy"
            and name in {"target", "labels"}
            and scores is not None
            and value.ndim != scores.ndim
        )
        inputs.append((name, value.astype(np.int64 if index_target else np.float64)))
    parameters = {key: value for key, value in request.items() if key not in fields and key != "outputs"}
    arrays = request.get("outputs", DEFAULT_ARRAYS[endpoint])
    scalars = ["loss", "count"] if endpoint in {"/v1/cross-entropy", "/v1/binary-cross-entropy"} else []
    return V2Request(MODELS[endpoint], inputs, parameters, scalars + list(arrays))


def json_body(request: V2Request, *, nested: bool = False) -> dict[str, Any]:
    """The request in the protocol's JSON form (flat data, or nested as the shape)."""
    return {
        "inputs": [
            {
                "name": name,
                "datatype": DATATYPES[array.dtype],
                "shape": list(array.shape),
                "data": array.tolist() if nested and array.ndim > 0 else array.reshape(-1).tolist(),
            }
            for name, array in request.inputs
        ],
        "parameters": request.parameters,
        "outputs": [{"name": name} for name in request.outputs],
    }


def binary_body(request: V2Request) -> tuple[bytes, int]:
    """The request with every tensor binary, encoded by tritonclient itself; and the header length."""
    body, header_length = triton.InferenceServerClient.generate_request_body(
        triton_inputs(request), outputs=triton_outputs(request), parameters=request.parameters
    )
    return body, header_length


def triton_inputs(request: V2Request) -> list[triton.InferInput]:
    inputs = []
    for name, array in request.inputs:
        tensor = triton.InferInput(name, list(array.shape), DATATYPES[array.dtype])
        tensor.set_data_from_numpy(array, binary_data=True)
        inputs.append(tensor)
    return inputs


def triton_outputs(request: V2Request) -> list[triton.InferRequestedOutput]:
    return [triton.InferRequestedOutput(name, binary_data=True) for name in request.outputs]


def as_v1_response(outputs: Mapping[str, NDArray[Any] | None], names: list[str]) -> dict[str, Any]:
    """The v2 outputs as the v1 response of the same case would carry them."""
    response: dict[str, Any] = {}
    for name in names:
        value = outputs.get(name)
        if value is None:
            response[name] = None
        elif name == "target_probability":
            response[name] = np.where(value == -1, np.nan, value).tolist()
        else:
            response[name] = value.tolist()
    return response
