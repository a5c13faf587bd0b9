"""``plain_header``: a small /v2 header read without pydantic only when the request model certainly
reads it the same way; anything else is left to the model (None)."""

# ruff: noqa: E501  (tables of requests read best one request per line, as in tests/api)

from __future__ import annotations

from typing import Any

import pytest

from service.api.arrays import ArrayLimits
from service.api.v2 import codec
from service.api.v2.plain import Header, plain_header
from service.api.v2.protocol import InferenceRequest
from service.core import InvalidInputError

LOGITS = '{"name": "logits", "datatype": "FP64", "shape": [2, 3], "data": [-1, 0.5, 2, -1, 0.5, 3]}'
TARGET = '{"name": "target", "datatype": "INT64", "shape": [2], "data": [1, 2]}'

PLAIN = [
    f'{{"inputs": [{LOGITS}, {TARGET}], "outputs": [{{"name": "loss"}}, {{"name": "losses"}}, {{"name": "softmax"}}]}}',
    f'{{"inputs": [{LOGITS}, {TARGET}]}}',
    f'{{"id": "42", "model_name": "cross_entropy", "model_version": "1", "inputs": [{LOGITS}, {TARGET}], "outputs": null}}',
    f'{{"id": null, "parameters": {{"reduction": "sum", "ignore_index": -100, "label_smoothing": 0.1, "binary_data_output": false}}, "inputs": [{TARGET}, {LOGITS}]}}',
    f'{{"parameters": {{}}, "inputs": [{TARGET}], "outputs": [{{"name": "loss", "parameters": {{"binary_data": true}}}}]}}',
    '{"inputs": [{"name": "logits", "datatype": "FP32", "shape": [2, 3], "data": [[-1.5e-3, 0.5, 2E2], [-1, 0.5, 3]], "parameters": {"x": 1}}]}',
    '{"inputs": [{"name": "x", "datatype": "FP64", "shape": [], "data": 1.25}, {"name": "y", "datatype": "BOOL", "shape": [2], "data": [true, false]}]}',
    '{"inputs": [{"name": "x", "datatype": "anything", "shape": [0, 5], "data": null}, {"name": "x", "datatype": "INT64", "shape": [1]}]}',
    '{"inputs": [{"name": "x", "datatype": "FP64", "shape": [3], "data": ["a", {}, [1, 2]]}]}',
    '{"inputs": [{"name": "x", "datatype": "FP64", "shape": [2], "data": [999999999999999999, -999999999999999999]}], "parameters": {"big": 9.2e18, "small": -9.2e18}}',
    '{"inputs": []}',
    ' \n{ "inputs" : [ { "name" : "t" , "shape" : [ 1 ] , "datatype" : "INT64" , "data" : [ 0 ] } ] }\t',
    '{"id": "a {b} [c], d", "inputs": []}',
]

NOT_PLAIN = {
    "not JSON": "{",
    "not an object": f"[{TARGET}]",
    "inputs missing": '{"outputs": []}',
    "an unknown field": f'{{"inputs": [{TARGET}], "extra": 1}}',
    "an unknown input field": '{"inputs": [{"name": "t", "datatype": "INT64", "shape": [1], "data": [0], "extra": 1}]}',
    "an unknown output field": f'{{"inputs": [{TARGET}], "outputs": [{{"name": "loss", "binary": true}}]}}',
    "an output without a name": f'{{"inputs": [{TARGET}], "outputs": [{{}}]}}',
    "an input without a shape": '{"inputs": [{"name": "t", "datatype": "INT64", "data": [0]}]}',
    "an input without a datatype": '{"inputs": [{"name": "t", "shape": [1], "data": [0]}]}',
    "an input that is not an object": '{"inputs": [1]}',
    "inputs not a list": '{"inputs": {}}',
    "a name that is a number": '{"inputs": [{"name": 1, "datatype": "INT64", "shape": [1], "data": [0]}]}',
    "an id that is a number": f'{{"id": 42, "inputs": [{TARGET}]}}',
    "a model version that is a number": f'{{"model_version": 1, "inputs": [{TARGET}]}}',
    "a boolean dimension": '{"inputs": [{"name": "t", "datatype": "INT64", "shape": [true], "data": [0]}]}',
    "a negative dimension": '{"inputs": [{"name": "t", "datatype": "INT64", "shape": [-1], "data": [0]}]}',
    "a float dimension": '{"inputs": [{"name": "t", "datatype": "INT64", "shape": [1.0], "data": [0]}]}',
    "33 dimensions": '{"inputs": [{"name": "t", "datatype": "INT64", "shape": ['
    + ", ".join(["1"] * 33)
    + '], "data": [0]}]}',
    "17 inputs": '{"inputs": [' + ", ".join([TARGET] * 17) + "]}",
    "17 outputs": '{"inputs": [], "outputs": [' + ", ".join(['{"name": "loss"}'] * 17) + "]}",
    "33 parameters": '{"inputs": [], "parameters": {' + ", ".join(f'"p{i}": 1' for i in range(33)) + "}}",
    "a nested parameter": f'{{"inputs": [{TARGET}], "parameters": {{"reduction": ["sum"]}}}}',
    "a null parameter": f'{{"inputs": [{TARGET}], "parameters": {{"reduction": null}}}}',
    "parameters not an object": f'{{"inputs": [{TARGET}], "parameters": []}}',
    "a float parameter of 2**63": f'{{"inputs": [{TARGET}], "parameters": {{"p": 9.3e18}}}}',
    "an integer beyond 64 bits in data": '{"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [18446744073709551616]}]}',
    "an integer of 19 digits in a parameter": f'{{"inputs": [{TARGET}], "parameters": {{"p": 1000000000000000000}}}}',
    "an escape in a string": f'{{"id": "a\\u0062", "inputs": [{TARGET}]}}',
    "an escaped key": f'{{"\\u0069d": "x", "inputs": [{TARGET}]}}',
    "a repeated key": f'{{"inputs": [{TARGET}], "inputs": [{TARGET}]}}',
    "a repeated key, spaced": f'{{"inputs": [{TARGET}], "inputs" : [{TARGET}]}}',
    "a repeated key in an input": '{"inputs": [{"name": "t", "name": "t", "datatype": "INT64", "shape": [1], "data": [0]}]}',
    "a repeated key in the data": '{"inputs": [{"name": "t", "datatype": "INT64", "shape": [1], "data": [{"a": 1, "a": 2}]}]}',
    "a key in the data": '{"inputs": [{"name": "t", "datatype": "INT64", "shape": [1], "data": [{"a": 1}]}]}',
    "data nested 250 deep": '{"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": '
    + "[" * 250
    + "1"
    + "]" * 250
    + "}]}",
    "a colon in a string": f'{{"id": "a: b", "inputs": [{TARGET}]}}',
    "a body over 4096 bytes": f'{{"inputs": [{TARGET}], "id": "{"x" * 4096}"}}',
}


def _fields(header: Header | InferenceRequest) -> str:
    """Every value of a header, with its type (``repr``: 1 and 1.0 differ)."""
    inputs = [(item.name, item.shape, item.datatype, item.parameters, item.data) for item in header.inputs]
    outputs = None if header.outputs is None else [(item.name, item.parameters) for item in header.outputs]
    return repr((header.id, header.model_name, header.model_version, header.parameters, inputs, outputs))


@pytest.mark.parametrize("body", PLAIN)
def test_a_plain_header_is_what_the_request_model_reads(body: str) -> None:
    plain = plain_header(body.encode())
    assert plain is not None
    assert _fields(plain) == _fields(InferenceRequest.model_validate_json(body))


@pytest.mark.parametrize("body", NOT_PLAIN.values(), ids=NOT_PLAIN.keys())
def test_anything_unusual_is_left_to_the_request_model(body: str) -> None:
    assert plain_header(body.encode()) is None


def _decoded(body: bytes) -> Any:
    """The decoded request, or the issues that refuse it."""
    try:
        request = codec.decode_request(body, None, ArrayLimits())
    except InvalidInputError as error:
        return repr(error.issues)
    tensors = [
        (t.name, t.datatype, t.array.dtype.str, t.array.shape, t.array.tolist()) for t in request.inputs
    ]
    return repr((request.id, request.parameters, request.outputs, request.binary_output, tensors))


@pytest.mark.parametrize("body", PLAIN)
def test_requests_decode_alike_with_and_without_the_plain_reading(
    body: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = _decoded(body.encode())
    monkeypatch.setattr(codec, "plain_header", lambda header: None)
    assert _decoded(body.encode()) == fast
