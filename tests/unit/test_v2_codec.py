"""The codec alone: request bytes to arrays, arrays to response bytes, and every malformed body refused."""

# ruff: noqa: E501  (tables of requests read best one request per line, as in tests/api)

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson
import pytest
import tritonclient.http as triton
from numpy.typing import NDArray

from service.api.arrays import ArrayLimits
from service.api.v2 import encoding
from service.api.v2.codec import (
    NUMPY_DTYPES,
    OutputTensor,
    decode_request,
    encode_response,
    header_length,
)
from service.core import InvalidInputError

LIMITS = ArrayLimits(max_elements=1000, max_dims=4)


def blob_request(tensors: list[tuple[str, str, list[int], bytes]], **extra: Any) -> tuple[bytes, int]:
    """A binary request written by hand: header, then each tensor's bytes."""
    header = {
        "inputs": [
            {"name": name, "datatype": datatype, "shape": shape, "parameters": {"binary_data_size": len(raw)}}
            for name, datatype, shape, raw in tensors
        ],
        **extra,
    }
    head = json.dumps(header).encode()
    return head + b"".join(raw for *_, raw in tensors), len(head)


def json_request(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def refused(body: bytes | bytearray, length: int | None = None) -> str:
    with pytest.raises(InvalidInputError) as caught:
        decode_request(body, length, LIMITS)
    return str(caught.value)


# --- decoding ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("datatype", "values"),
    [
        ("FP32", np.array([[1.5, -2.25, 3.0e38]], dtype="<f4")),
        ("FP64", np.array([[1e-300, -0.1], [2.0, 1e300]], dtype="<f8")),
        ("INT32", np.array([-(2**31), 2**31 - 1, 0], dtype="<i4")),
        ("INT64", np.array([[-(2**63)], [2**63 - 1]], dtype="<i8")),
        ("BOOL", np.array([True, False, True], dtype="?")),
    ],
)
def test_binary_tensors_are_read_exactly(datatype: str, values: NDArray[Any]) -> None:
    body, length = blob_request([("x", datatype, list(values.shape), values.tobytes())])
    decoded = decode_request(bytearray(body), length, LIMITS)
    (tensor,) = decoded.inputs
    assert tensor.datatype == datatype
    assert tensor.array.dtype == NUMPY_DTYPES[datatype]
    assert tensor.array.shape == values.shape
    np.testing.assert_array_equal(tensor.array, values)


def test_blobs_are_little_endian_whatever_the_machine() -> None:
    # 1.0 as a little-endian float32 is 00 00 80 3f; read as big-endian it would be a denormal.
    body, length = blob_request([("x", "FP32", [1], b"\x00\x00\x80\x3f")])
    assert decode_request(body, length, LIMITS).inputs[0].array.tolist() == [1.0]
    body, length = blob_request([("x", "INT64", [1], (258).to_bytes(8, "little"))])
    assert decode_request(body, length, LIMITS).inputs[0].array.tolist() == [258]


def _aligned_body() -> tuple[bytearray, int]:
    """A 3 x 4 FP64 blob after a header padded so that the blob starts at a multiple of 8 (then
    np.frombuffer copies nothing)."""
    body, length = blob_request([("x", "FP64", [3, 4], np.arange(12, dtype="<f8").tobytes())])
    pad = b" " * (-length % 8)
    return bytearray(body[:length] + pad + body[length:]), length + len(pad)


def test_aligned_blobs_are_views_of_the_body_and_read_only() -> None:
    body, length = _aligned_body()
    array = decode_request(body, length, LIMITS).inputs[0].array
    assert np.shares_memory(array, np.frombuffer(body, dtype=np.uint8))
    assert not array.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        array[0, 0] = 1.0


def test_a_body_given_up_leaves_its_blobs_writable_views_of_it() -> None:
    body, length = _aligned_body()
    array = decode_request(body, length, LIMITS, writable=True).inputs[0].array
    assert array.flags.writeable
    array[0, 0] = 5.0  # what a model writes over an input goes into the body: nothing was copied
    assert np.frombuffer(body, dtype="<f8", count=1, offset=length)[0] == 5.0
    np.testing.assert_array_equal(array.reshape(-1)[1:], np.arange(1, 12, dtype="<f8"))


def test_misaligned_blobs_are_copied_once_into_aligned_arrays() -> None:
    values = np.arange(6, dtype="<f8")
    head = json.dumps(
        {"inputs": [{"name": "x", "datatype": "FP64", "shape": [6], "parameters": {"binary_data_size": 48}}]}
    ).encode()
    head += b" " * (-len(head) % 8 + 3)  # the blob starts 3 bytes past an 8-byte boundary
    body = bytearray(head + values.tobytes())
    array = decode_request(body, len(head), LIMITS).inputs[0].array
    assert array.flags.aligned
    assert not np.shares_memory(array, np.frombuffer(body, dtype=np.uint8))
    assert not array.flags.writeable
    np.testing.assert_array_equal(array, values)


def test_several_blobs_follow_the_order_of_the_inputs() -> None:
    a, b = np.array([1.0, 2.0], dtype="<f4"), np.array([7, 8, 9], dtype="<i8")
    body, length = blob_request([("a", "FP32", [2], a.tobytes()), ("b", "INT64", [3], b.tobytes())])
    decoded = decode_request(body, length, LIMITS)
    assert [t.name for t in decoded.inputs] == ["a", "b"]
    assert decoded.inputs[0].array.tolist() == [1.0, 2.0]
    assert decoded.inputs[1].array.tolist() == [7, 8, 9]


def test_json_and_binary_inputs_mix() -> None:
    raw = np.array([0.5, 0.25], dtype="<f8").tobytes()
    head = json.dumps(
        {
            "inputs": [
                {"name": "a", "datatype": "INT64", "shape": [2], "data": [3, 4]},
                {"name": "b", "datatype": "FP64", "shape": [2], "parameters": {"binary_data_size": 16}},
            ]
        }
    ).encode()
    decoded = decode_request(head + raw, len(head), LIMITS)
    assert decoded.inputs[0].array.tolist() == [3, 4]
    assert decoded.inputs[1].array.tolist() == [0.5, 0.25]


@pytest.mark.parametrize("data", [[1, 2, 3, 4, 5, 6], [[1, 2, 3], [4, 5, 6]]], ids=["flat", "nested"])
def test_json_data_flat_or_nested_as_the_shape(data: list[Any]) -> None:
    body = json_request(inputs=[{"name": "x", "datatype": "INT64", "shape": [2, 3], "data": data}])
    array = decode_request(body, None, LIMITS).inputs[0].array
    assert array.dtype == np.int64
    assert array.tolist() == [[1, 2, 3], [4, 5, 6]]


def test_json_scalars_have_shape_empty() -> None:
    for data in ([2.5], 2.5):
        body = json_request(inputs=[{"name": "x", "datatype": "FP64", "shape": [], "data": data}])
        array = decode_request(body, None, LIMITS).inputs[0].array
        assert array.shape == ()
        assert array.item() == 2.5


def test_json_fp32_data_is_rounded_to_float32_after_a_range_check() -> None:
    body = json_request(inputs=[{"name": "x", "datatype": "FP32", "shape": [2], "data": [0.1, 1e30]}])
    array = decode_request(body, None, LIMITS).inputs[0].array
    assert array.dtype == np.float32
    assert array.tolist() == [float(np.float32(0.1)), float(np.float32(1e30))]
    body = json_request(inputs=[{"name": "x", "datatype": "FP32", "shape": [2], "data": [0.1, 1e39]}])
    assert "x[1] = 1e+39 is outside the float32 range" in refused(body)


def test_json_int32_is_range_checked_and_narrowed() -> None:
    body = json_request(inputs=[{"name": "t", "datatype": "INT32", "shape": [2], "data": [1, -5]}])
    assert decode_request(body, None, LIMITS).inputs[0].array.dtype == np.int32
    body = json_request(inputs=[{"name": "t", "datatype": "INT32", "shape": [2], "data": [1, 2**31]}])
    assert "t[1] = 2147483648 is outside the INT32 range" in refused(body)


def test_json_bool_tensors() -> None:
    body = json_request(inputs=[{"name": "t", "datatype": "BOOL", "shape": [3], "data": [True, False, True]}])
    assert decode_request(body, None, LIMITS).inputs[0].array.tolist() == [True, False, True]


def test_booleans_among_numbers_are_found_even_beside_bool_tensors(monkeypatch: pytest.MonkeyPatch) -> None:
    flags = {"data": True}
    mixed = json_request(
        inputs=[
            {"name": "t", "datatype": "BOOL", "shape": [2], "data": [True, False]},
            {"name": "x", "datatype": "FP64", "shape": [2], "data": [1.5, True]},
        ],
        outputs=[{"name": "loss", "parameters": {"binary_data": flags["data"]}}],
    )
    assert "x[1] = true is a boolean, not a number" in refused(mixed)
    # Without a stray boolean, the Python walk for them (a microsecond per element) is skipped.
    import service.api.arrays as arrays

    def no_walk(value: Any) -> bool:
        raise AssertionError("walked the data for booleans")

    monkeypatch.setattr(arrays, "_has_bool", no_walk)
    clean = mixed.replace(b"[1.5, true]", b"[1.5, 2.5]")
    assert decode_request(clean, None, LIMITS).inputs[1].array.tolist() == [1.5, 2.5]


def test_request_fields_and_protocol_parameters() -> None:
    body = json_request(
        id="abc",
        parameters={"reduction": "sum", "binary_data_output": True},
        inputs=[{"name": "x", "datatype": "FP64", "shape": [1], "data": [1.0]}],
        outputs=[{"name": "loss"}, {"name": "softmax", "parameters": {"binary_data": False}}],
    )
    decoded = decode_request(body, None, LIMITS)
    assert decoded.id == "abc"
    assert decoded.parameters == {"reduction": "sum"}
    assert decoded.binary_output is True
    assert decoded.outputs is not None
    assert [(o.name, o.binary) for o in decoded.outputs] == [("loss", None), ("softmax", False)]
    bare = decode_request(json_request(inputs=[]), None, LIMITS)
    assert (bare.outputs, bare.binary_output, bare.parameters) == (None, False, {})


def test_a_json_header_within_a_longer_body_is_read_to_its_length() -> None:
    head = json_request(inputs=[{"name": "x", "datatype": "FP64", "shape": [1], "data": [1.0]}])
    assert decode_request(head, len(head), LIMITS).inputs[0].array.tolist() == [1.0]


def test_tritonclient_bodies_decode() -> None:
    logits = np.array([[-1, 0.5, 2], [-1, 0.5, 3]], dtype=np.float32)
    target = np.array([1, 2], dtype=np.int64)
    inputs = [triton.InferInput("logits", [2, 3], "FP32"), triton.InferInput("target", [2], "INT64")]
    inputs[0].set_data_from_numpy(logits)
    inputs[1].set_data_from_numpy(target, binary_data=False)
    body, length = triton.InferenceServerClient.generate_request_body(
        inputs, outputs=[triton.InferRequestedOutput("loss")], parameters={"reduction": "sum"}
    )
    decoded = decode_request(body, length, LIMITS)
    np.testing.assert_array_equal(decoded.inputs[0].array, logits)
    np.testing.assert_array_equal(decoded.inputs[1].array, target)
    assert decoded.parameters == {"reduction": "sum"}
    assert decoded.outputs is not None and decoded.outputs[0].binary is True


# --- refusals ---------------------------------------------------------------------------------

FOUR_FLOATS = np.zeros(4, dtype="<f4").tobytes()


@pytest.mark.parametrize(
    ("body", "length", "message"),
    [
        (b"[1, 2]", None, "the inference request must be a JSON object"),
        (b'{"inputs": [', None, "the JSON header is not valid JSON"),
        (b'{"inputs": []}\x00\x01', None, "needs the Inference-Header-Content-Length header"),
        (json_request(), None, "inputs: field required"),
        (json_request(inputs=[], extra=1), None, "extra: unknown field"),
        (json_request(inputs=[{"name": "x", "datatype": "FP64", "shape": [1], "data": [1], "more": 1}]), None, "unknown field"),
        (json_request(inputs=[{"name": "x", "datatype": "FP16", "shape": [1], "data": [1]}]), None, "input 'x': datatype 'FP16' is not supported; use BOOL, INT32, INT64, FP32, FP64"),
        (json_request(inputs=[{"name": "x", "datatype": "FP64", "shape": [2, -1], "data": [1]}]), None, "inputs[0].shape[1]: Input should be greater than or equal to 0"),
        (json_request(inputs=[{"name": "x", "datatype": "FP64", "shape": [2, True], "data": [1]}]), None, "inputs[0].shape[1]: must be an integer"),
        (json_request(inputs=[{"name": "x", "datatype": "FP64", "shape": "2", "data": [1]}]), None, "inputs[0].shape: must be an array"),
        (json_request(inputs=[{"name": "x", "datatype": "FP64", "shape": [1] * 5, "data": [1]}]), None, "input 'x' has 5 dimensions; at most 4"),
        (json_request(inputs=[{"name": "x", "datatype": "FP64", "shape": [10, 101], "data": [1]}]), None, "1010 elements; at most 1000"),
        (json_request(inputs=[{"name": "x", "datatype": "FP64", "shape": [3], "data": [1, 2]}]), None, "input 'x': shape [3] has 3 element(s), but its data has 2"),
        (json_request(inputs=[{"name": "x", "datatype": "FP64", "shape": [2, 3], "data": [[1, 2], [3, 4], [5, 6]]}]), None, "data is nested as [3, 2] but the shape is [2, 3]"),
        (json_request(inputs=[{"name": "x", "datatype": "FP64", "shape": [2], "data": [1, "2"]}]), None, "x[1] = '2' is a string"),
        (json_request(inputs=[{"name": "x", "datatype": "FP64", "shape": [2], "data": [1, True]}]), None, "x[1] = true is a boolean, not a number"),
        (json_request(inputs=[{"name": "x", "datatype": "FP64", "shape": [2], "data": [[1], 2]}]), None, "arrays must be rectangular"),
        (json_request(inputs=[{"name": "t", "datatype": "INT64", "shape": [2], "data": [1, 2.5]}]), None, "t[1] = 2.5 is not an integer, as INT64 needs"),
        (json_request(inputs=[{"name": "t", "datatype": "INT64", "shape": [2], "data": [1.0, 2.0]}]), None, "write 3, not 3.0"),
        (json_request(inputs=[{"name": "t", "datatype": "BOOL", "shape": [2], "data": [True, 1]}]), None, "input 't' of datatype BOOL must hold only true and false"),
        (json_request(inputs=[{"name": "x", "datatype": "FP64", "shape": [1]}]), None, "input 'x' has neither data nor parameters.binary_data_size"),
        (json_request(inputs=[{"name": "x", "datatype": "FP64", "shape": [1], "data": [1]}] * 2), None, "input 'x' is given more than once"),
        (json_request(inputs=[{"name": "x", "datatype": "FP64", "shape": [1], "data": [1], "parameters": {"shared_memory_region": "r"}}]), None, "shared memory is not available"),
        (json_request(inputs=[{"name": "x", "datatype": "FP64", "shape": [1], "data": [1], "parameters": {"binary_data_size": 8}}]), None, "has both data and binary_data_size"),
        (json_request(inputs=[], parameters={"binary_data_output": "yes"}), None, "binary_data_output must be true or false, not \"yes\""),
        (json_request(inputs=[], parameters={"nested": {"a": 1}}), None, "parameters.nested"),
        (json_request(inputs=[], outputs=[{"name": "loss", "parameters": {"binary_data": 1}}]), None, "output 'loss': binary_data must be true or false, not 1"),
        (json_request(inputs=[], outputs=[{"name": "loss", "parameters": {"classification": 3}}]), None, "output 'loss': parameter(s) classification not supported"),
        (json_request(inputs=[], outputs=[{"name": "loss"}, {"name": "loss"}]), None, "output 'loss' is requested more than once"),
        (json_request(inputs=[]) + b"xx", 2 + len(json_request(inputs=[])) - 2, "2 byte(s) after the JSON header that no input claims"),
        (json_request(inputs=[]), 10**6, "says 1000000 bytes, but the body has only"),
        (blob_request([("x", "FP32", [4], FOUR_FLOATS[:12])])[0], blob_request([("x", "FP32", [4], FOUR_FLOATS[:12])])[1], "input 'x': binary_data_size is 12 bytes, but shape [4] of FP32 needs 4 x 4 = 16"),
        (blob_request([("x", "FP32", [4], FOUR_FLOATS)])[0][:-4], blob_request([("x", "FP32", [4], FOUR_FLOATS)])[1], "input 'x': its 16 bytes of binary data run past the end of the body (only 12 remain"),
        (blob_request([("x", "FP32", [4], FOUR_FLOATS)])[0] + b"\x00", blob_request([("x", "FP32", [4], FOUR_FLOATS)])[1], "1 byte(s) after the binary data of the inputs"),
        (blob_request([("x", "BOOL", [3], b"\x00\x01\x07")])[0], blob_request([("x", "BOOL", [3], b"\x00\x01\x07")])[1], "x[2] = 7 is not a BOOL byte (0 or 1)"),
    ],
)  # fmt: skip
def test_malformed_requests_are_refused_with_a_precise_message(
    body: bytes, length: int | None, message: str
) -> None:
    assert message in refused(body, length)


def test_binary_data_size_must_be_an_integer() -> None:
    head = json.dumps(
        {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "parameters": {"binary_data_size": "4"}}]}
    ).encode()
    assert "input 'x': binary_data_size must be an integer, not \"4\"" in refused(
        head + FOUR_FLOATS[:4], len(head)
    )


@pytest.mark.parametrize("value", [b"12a", b"-5", b"", b"1.5"])
def test_the_header_length_header_must_be_a_byte_count(value: bytes) -> None:
    with pytest.raises(InvalidInputError, match="Inference-Header-Content-Length header is"):
        header_length([(b"inference-header-content-length", value)])


def test_the_header_length_header_is_read() -> None:
    # (A compressed body is refused by the transport, on every route: tests/api/test_hostile_content.py.)
    assert header_length([(b"host", b"x"), (b"inference-header-content-length", b"187")]) == 187
    assert header_length([(b"content-encoding", b"identity")]) is None


def test_nan_in_data_is_left_for_the_core_to_report_with_its_position() -> None:
    # The codec converts; the core, which checks every input of every route, names NaN's position.
    body = b'{"inputs": [{"name": "x", "datatype": "FP64", "shape": [2], "data": [1, NaN]}]}'
    assert np.isnan(decode_request(body, None, LIMITS).inputs[0].array[1])


# --- encoding ---------------------------------------------------------------------------------


def test_json_outputs_are_flat_with_their_shape_and_datatype() -> None:
    encoded = encode_response(
        model_name="m",
        model_version="1",
        request_id="7",
        outputs=[
            OutputTensor("loss", np.asarray(np.float32(0.5)), binary=False),
            OutputTensor("grid", np.arange(6, dtype=np.int64).reshape(2, 3), binary=False),
        ],
    )
    assert encoded.header_length is None
    assert orjson.loads(encoded.body) == {
        "model_name": "m",
        "model_version": "1",
        "id": "7",
        "outputs": [
            {"name": "loss", "datatype": "FP32", "shape": [], "data": [0.5]},
            {"name": "grid", "datatype": "INT64", "shape": [2, 3], "data": [0, 1, 2, 3, 4, 5]},
        ],
    }


def test_binary_outputs_follow_the_header_in_order_and_tritonclient_reads_them() -> None:
    softmax = np.array([[0.25, 0.75], [0.5, 0.5]], dtype=np.float32)
    transposed = np.arange(6, dtype=np.float64).reshape(2, 3).T  # not C-contiguous: written row-major
    encoded = encode_response(
        model_name="m",
        model_version="1",
        request_id=None,
        outputs=[
            OutputTensor("softmax", softmax, binary=True),
            OutputTensor("count", np.asarray(3, dtype=np.int64), binary=False),
            OutputTensor("t", transposed, binary=True),
        ],
    )
    assert encoded.header_length is not None
    header = orjson.loads(encoded.body[: encoded.header_length])
    assert "id" not in header
    assert header["outputs"][0]["parameters"] == {"binary_data_size": 16}
    assert header["outputs"][2]["parameters"] == {"binary_data_size": 48}
    assert (
        encoded.body[encoded.header_length :]
        == softmax.tobytes() + np.ascontiguousarray(transposed).tobytes()
    )
    result = triton.InferenceServerClient.parse_response_body(
        encoded.body, header_length=encoded.header_length
    )
    np.testing.assert_array_equal(result.as_numpy("softmax"), softmax)
    np.testing.assert_array_equal(result.as_numpy("t"), transposed)
    assert result.as_numpy("count").shape == ()
    assert result.as_numpy("count").item() == 3


@pytest.mark.parametrize("binary", [True, False], ids=["binary outputs", "JSON outputs"])
def test_large_outputs_are_streamed_as_the_same_bytes(binary: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    import service.api.payloads as payloads

    rng = np.random.default_rng(2)
    outputs = [
        OutputTensor("loss", np.asarray(np.float64(0.5)), binary=False),
        OutputTensor("softmax", rng.random((300, 7)), binary=binary),
        OutputTensor("grad", rng.random((300, 7)).astype(np.float32), binary=binary),
    ]
    whole = encode_response(model_name="m", model_version="1", request_id="7", outputs=outputs)
    assert whole.chunks is None
    # Thresholds lowered below these outputs' 4,200 numbers (25,200 bytes as binary).
    monkeypatch.setattr(payloads, "STREAM_MIN_NUMBERS", 1000)
    monkeypatch.setattr(encoding, "STREAM_MIN_BLOB_BYTES", 1000)
    monkeypatch.setattr(encoding, "BLOB_PIECE_BYTES", 4096)
    streamed = encode_response(model_name="m", model_version="1", request_id="7", outputs=outputs)
    assert streamed.chunks is not None and streamed.body == b""
    assert streamed.header_length == whole.header_length
    pieces = list(streamed.chunks)
    assert b"".join(pieces) == whole.body
    if binary:
        assert streamed.length == len(whole.body)
        assert len(pieces) == 1 + 5 + 3  # the header, then 16,800 and 8,400 bytes in 4 KiB pieces
    else:
        assert streamed.length is None  # the JSON's length is known once it is written
