"""Request bytes to tensors and tensors to response bytes (``encoding.py``): the Open Inference
Protocol's JSON form and Triton's binary tensor data extension, as pure functions.

A request body is a JSON header (an ``InferenceRequest``), followed, when some inputs are binary, by
their raw bytes in the order the inputs are listed::

    Inference-Header-Content-Length: 187          (the JSON header's length; absent: all JSON)
    {"inputs": [{"name": "logits", "datatype": "FP32", "shape": [2, 3],
                 "parameters": {"binary_data_size": 24}}, ...], ...}<24 bytes><16 bytes>

Binary tensors are little-endian, row-major, without padding; BOOL is one byte, 0 or 1. Each
``binary_data_size`` must be exactly ``prod(shape) * itemsize``, the blobs must end exactly where the
body ends, and the header length must lie within the body: anything else is refused with a message
naming the input, never guessed at. Blobs become arrays with ``np.frombuffer`` over the request's own
buffer (copied only when misaligned for their type), read-only unless the caller gives the body up
(``writable``: a model may then write an output over an input it has read, as softmax over logits).

Everything wrong raises ``InvalidInputError``, the core's error, so that the route turns protocol and
content problems into the same kind of answer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Final, NamedTuple

import numpy as np
import orjson
from numpy.typing import NDArray
from pydantic import ValidationError

from service.api.arrays import ArrayError, ArrayLimits, json_to_array
from service.api.bulk_json import BULK_MIN_BODY_BYTES
from service.api.errors import issues_from_validation_error
from service.api.json_keys import check_keys
from service.api.schemas import known_keys
from service.api.v2.encoding import NUMPY_DTYPES, EncodedResponse, OutputTensor, datatype_of, encode_response
from service.api.v2.json_data import data_may_hold_booleans, parse_bulk
from service.api.v2.plain import Header, HeaderInput, plain_header
from service.api.v2.protocol import DATATYPES, InferenceRequest, ParameterValue
from service.core import InvalidInputError, Issue
from service.core.checks import cast_to_dtype, check_finite, issues_at, raise_if

__all__ = [
    "HEADER_LENGTH",
    "NUMPY_DTYPES",
    "DecodedRequest",
    "EncodedResponse",
    "OutputRequest",
    "OutputTensor",
    "Tensor",
    "datatype_of",
    "decode_request",
    "encode_response",
    "header_length",
]

#: The header that gives the JSON header's length when binary tensors follow it (lower case, as ASGI).
HEADER_LENGTH: Final = b"inference-header-content-length"

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


class Tensor(NamedTuple):
    """An input as the request declared it: name, datatype, and the array of that dtype and shape."""

    name: str
    datatype: str
    array: NDArray[Any]


class OutputRequest(NamedTuple):
    """A requested output; ``binary`` is None when the request leaves it to ``binary_data_output``."""

    name: str
    binary: bool | None


class DecodedRequest(NamedTuple):
    """An inference request with its tensors as arrays and the protocol's own parameters taken out."""

    id: str | None
    model_name: str | None
    model_version: str | None
    parameters: dict[str, ParameterValue]
    inputs: tuple[Tensor, ...]
    outputs: tuple[OutputRequest, ...] | None
    binary_output: bool


def _fail(loc: tuple[str | int, ...], msg: str, kind: str) -> InvalidInputError:
    return InvalidInputError.single(loc, msg, kind)


def _json(value: ParameterValue) -> str:
    """A parameter value as the client wrote it (``true``, ``"4"``), for messages."""
    return orjson.dumps(value).decode()[:40]


# --- request ----------------------------------------------------------------------------------


def header_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    """The ``Inference-Header-Content-Length`` of a request (ASGI headers), or None without one."""
    length: int | None = None
    for name, value in headers:
        if name == HEADER_LENGTH:
            text = value.decode("latin-1").strip()
            if not (text.isascii() and text.isdigit()):
                msg = f"the Inference-Header-Content-Length header is {text[:40]!r}, not a byte count"
                raise _fail((), msg, "header")
            length = int(text)
    return length


def decode_request(
    body: bytes | bytearray, header_length: int | None, limits: ArrayLimits, *, writable: bool = False
) -> DecodedRequest:
    """Parse a request body into its header fields and its input tensors.

    ``header_length`` is the request's ``Inference-Header-Content-Length`` (None: the whole body is
    JSON). Input arrays have the dtype of their datatype (``NUMPY_DTYPES``) and their declared shape,
    except that FP32 data written as JSON is rounded to float32 only after a range check. Binary
    tensors are writable only with ``writable``: the caller gives its (bytearray) body up to them.
    """
    size = len(body)
    if header_length is None:
        header: bytes | bytearray = body
        end = size
    elif header_length > size:
        msg = (
            f"the Inference-Header-Content-Length header says {header_length} bytes, "
            f"but the body has only {size}"
        )
        raise _fail((), msg, "header")
    else:
        header = bytes(memoryview(body)[:header_length])
        end = header_length
    request, bulk_data, header = _read_header(body, header, header_length, limits)
    may_hold_booleans = data_may_hold_booleans(header, request)

    tensors: list[Tensor] = []
    seen: set[str] = set()
    offset = end
    for item in request.inputs:
        if item.name in seen:
            raise _fail((item.name,), f"input '{item.name}' is given more than once", "duplicate")
        seen.add(item.name)
        tensor, offset = _decode_input(
            item, body, offset, limits, may_hold_booleans, bulk_data.get(len(tensors)), writable
        )
        tensors.append(tensor)
    if offset != size:
        extra = size - offset
        where = "the binary data of the inputs" if offset > end else "the JSON header"
        msg = (
            f"the body has {extra} byte(s) after {where} that no input claims "
            "(each binary input needs parameters.binary_data_size)"
        )
        raise _fail((), msg, "trailing_bytes")

    parameters = dict(request.parameters or {})
    binary_output = parameters.pop("binary_data_output", False)
    if not isinstance(binary_output, bool):
        msg = f"parameter binary_data_output must be true or false, not {_json(binary_output)}"
        raise _fail(("parameters", "binary_data_output"), msg, "bool_type")
    return DecodedRequest(
        id=request.id,
        model_name=request.model_name,
        model_version=request.model_version,
        parameters=parameters,
        inputs=tuple(tensors),
        outputs=None if request.outputs is None else _decode_outputs(request),
        binary_output=binary_output,
    )


def _read_header(
    body: bytes | bytearray, header: bytes | bytearray, header_length: int | None, limits: ArrayLimits
) -> tuple[Header, dict[int, NDArray[Any]], bytes | bytearray]:
    """The header (``plain_header``'s when it is plainly valid, else the request model); the large
    ``data`` arrays by input index, already parsed when the body is all JSON and large
    (``parse_bulk``); and the text that may hold booleans in the data."""
    if header_length is None and len(body) >= BULK_MIN_BODY_BYTES:
        bulk = parse_bulk(body, limits)
        if bulk is not None:
            return bulk
    return _parse_header(header, binary_follows=header_length is not None), {}, header


def _parse_header(header: bytes | bytearray, *, binary_follows: bool) -> Header:
    plain = plain_header(header)
    if plain is not None:
        return plain
    # The deepest object of a request: inputs[i].parameters.
    check_keys(header, known_keys(InferenceRequest), max_depth=3)
    try:
        return InferenceRequest.model_validate_json(header)
    except ValidationError as error:
        issues = issues_from_validation_error(error)
    fixed: list[Issue] = []
    for issue in issues:
        if issue.loc == () and issue.kind in {"model_type", "model_attributes_type"}:
            issue = Issue((), "the inference request must be a JSON object", issue.kind)
        elif issue.kind == "json_invalid":
            msg = issue.msg.replace("the body is not valid JSON", "the JSON header is not valid JSON")
            if not binary_follows and "trailing" in msg:  # binary tensors, most likely
                msg += " (a body with binary tensors needs the Inference-Header-Content-Length header)"
            issue = Issue((), msg, issue.kind)
        fixed.append(issue)
    raise InvalidInputError(fixed)


def _decode_outputs(request: Header) -> tuple[OutputRequest, ...]:
    outputs: list[OutputRequest] = []
    seen: set[str] = set()
    for item in request.outputs or ():
        if item.name in seen:
            msg = f"output '{item.name}' is requested more than once"
            raise _fail(("outputs", item.name), msg, "duplicate")
        seen.add(item.name)
        parameters = dict(item.parameters) if item.parameters else {}
        value = parameters.pop("binary_data", None)
        if value is not None and not isinstance(value, bool):
            msg = f"output '{item.name}': binary_data must be true or false, not {_json(value)}"
            raise _fail(("outputs", item.name, "binary_data"), msg, "bool_type")
        if parameters:
            unknown = ", ".join(sorted(parameters))
            msg = f"output '{item.name}': parameter(s) {unknown} not supported (only binary_data is)"
            raise _fail(("outputs", item.name), msg, "not_supported")
        outputs.append(OutputRequest(item.name, value))
    return tuple(outputs)


def _decode_input(
    item: HeaderInput,
    body: bytes | bytearray,
    offset: int,
    limits: ArrayLimits,
    may_hold_booleans: bool,
    bulk_data: NDArray[Any] | None = None,
    writable: bool = False,
) -> tuple[Tensor, int]:
    """One input's array, and where the next binary blob starts; ``bulk_data``: its ``data``, parsed
    already by ``parse_bulk``; ``writable``: as ``decode_request``'s."""
    name = item.name
    dtype = NUMPY_DTYPES.get(item.datatype)
    if dtype is None:
        msg = f"input '{name}': datatype {item.datatype[:20]!r} is not supported; use {', '.join(DATATYPES)}"
        raise _fail((name, "datatype"), msg, "datatype")
    shape = _check_shape(name, item.shape, limits)
    count = math.prod(shape)

    parameters = dict(item.parameters) if item.parameters else {}
    blob_size = parameters.pop("binary_data_size", None)
    if parameters:
        unknown = ", ".join(sorted(parameters))
        hint = " (shared memory is not available here)" if "shared_memory_region" in parameters else ""
        msg = f"input '{name}': parameter(s) {unknown} not supported; only binary_data_size is{hint}"
        raise _fail((name, "parameters"), msg, "not_supported")

    if blob_size is None:
        if item.data is None:
            msg = f"input '{name}' has neither data nor parameters.binary_data_size"
            raise _fail((name,), msg, "missing")
        value = item.data if bulk_data is None else bulk_data
        array = _from_json(value, name, item.datatype, shape, count, limits, may_hold_booleans)
        return Tensor(name, item.datatype, array), offset

    if isinstance(blob_size, bool) or not isinstance(blob_size, int):
        msg = f"input '{name}': binary_data_size must be an integer, not {_json(blob_size)}"
        raise _fail((name, "binary_data_size"), msg, "int_type")
    if item.data is not None:
        msg = f"input '{name}' has both data and binary_data_size; send its elements one way"
        raise _fail((name,), msg, "conflict")
    expected = count * dtype.itemsize
    if blob_size != expected:
        msg = (
            f"input '{name}': binary_data_size is {blob_size} bytes, but shape {list(shape)} of "
            f"{item.datatype} needs {count} x {dtype.itemsize} = {expected}"
        )
        raise _fail((name, "binary_data_size"), msg, "size")
    if offset + blob_size > len(body):
        remaining = len(body) - offset
        msg = (
            f"input '{name}': its {blob_size} bytes of binary data run past the end of the body "
            f"(only {remaining} remain after the header and the inputs before it)"
        )
        raise _fail((name, "binary_data_size"), msg, "size")
    array = _from_blob(body, offset, count, dtype, name, writable).reshape(shape)
    return Tensor(name, item.datatype, array), offset + blob_size


def _check_shape(name: str, shape: list[int], limits: ArrayLimits) -> tuple[int, ...]:
    # Each dimension is a non-negative 64-bit integer already (the protocol model says so).
    if len(shape) > limits.max_dims:
        msg = f"input '{name}' has {len(shape)} dimensions; at most {limits.max_dims} are accepted"
        raise _fail((name, "shape"), msg, "too_many_dims")
    count = math.prod(shape)
    if count == 0 and (widest := max(shape, default=0)) > limits.max_elements:
        # No elements, yet a dimension NumPy could not lay out (an empty array still has strides).
        msg = (
            f"input '{name}' of shape {shape} has a dimension of {widest}; at most "
            f"{limits.max_elements} are accepted per dimension (XENT_MAX_ELEMENTS)"
        )
        raise _fail((name, "shape"), msg, "too_many_elements")
    if count > limits.max_elements:
        msg = (
            f"input '{name}' of shape {shape} has {count} elements; at most {limits.max_elements} "
            "are accepted per array (XENT_MAX_ELEMENTS)"
        )
        raise _fail((name, "shape"), msg, "too_many_elements")
    return tuple(shape)


def _from_blob(
    body: bytes | bytearray, offset: int, count: int, dtype: np.dtype[Any], name: str, writable: bool
) -> NDArray[Any]:
    if dtype == np.bool_:
        raw = np.frombuffer(body, dtype=np.uint8, count=count, offset=offset)
        bad = raw > 1
        if bad.any():
            problem = "is not a BOOL byte (0 or 1)"
            raise InvalidInputError(issues_at(name, bad, raw, problem, "bool_type"))
    array = np.frombuffer(body, dtype=dtype, count=count, offset=offset)
    if not array.flags.aligned:
        # The JSON header has any length, so a blob may start at any byte. NumPy's kernels on
        # misaligned data are slow: on a 4096 x 1000 FP32 batch a core working on the array directly
        # took 19 ms instead of 8, and one copy costs about 1 ms. When every blob is copied, the
        # route frees the body before computing (``routes._free``).
        array = array.copy()
    array.flags.writeable = writable  # over the request's buffer: only if the caller gave it up
    return array


def _from_json(
    value: Any,
    name: str,
    datatype: str,
    shape: tuple[int, ...],
    count: int,
    limits: ArrayLimits,
    may_hold_booleans: bool,
) -> NDArray[Any]:
    array: NDArray[Any]
    if datatype == "BOOL":
        array = _booleans(value, name)
    else:
        try:
            array = json_to_array(
                value,
                name,
                numbers="float" if datatype.startswith("FP") else "number",
                limits=limits,
                may_contain_bool=may_hold_booleans,
            )
        except ArrayError as error:
            raise _fail((name, *error.path), error.msg, error.kind) from None
    if array.size != count:
        msg = f"input '{name}': shape {list(shape)} has {count} element(s), but its data has {array.size}"
        raise _fail((name, "data"), msg, "size")
    if array.ndim > 1 and array.shape != shape:
        msg = (
            f"input '{name}': data is nested as {list(array.shape)} but the shape is {list(shape)}; "
            "send it flat (row-major) or nested as the shape"
        )
        raise _fail((name, "data"), msg, "shape")
    if array.shape != shape:
        array = array.reshape(shape)
    if datatype in {"INT32", "INT64"}:
        return _integers(array, name, datatype)
    if datatype == "FP32":
        raise_if(check_finite(name, array))
        narrow, issues = cast_to_dtype(name, array, "float32")
        raise_if(issues)
        return narrow
    return array


def _booleans(value: Any, name: str) -> NDArray[Any]:
    try:
        array = np.array(value)
    except (ValueError, TypeError):
        array = None
    if array is None or array.dtype != np.bool_:
        msg = f"input '{name}' of datatype BOOL must hold only true and false, in a rectangular array"
        raise _fail((name, "data"), msg, "bool_type")
    return array


def _integers(array: NDArray[Any], name: str, datatype: str) -> NDArray[Any]:
    if array.dtype.kind == "f" and array.size:  # (NumPy reads an empty list as float64)
        fractional = np.isfinite(array) & (array != np.trunc(array))
        if fractional.any():
            problem = f"is not an integer, as {datatype} needs"
            raise InvalidInputError(issues_at(name, fractional, array, problem, "int_type"))
        msg = f"input '{name}' of datatype {datatype} holds numbers written as floats; write 3, not 3.0"
        raise _fail((name, "data"), msg, "int_type")
    if datatype == "INT32":
        outside = (array < _INT32_MIN) | (array > _INT32_MAX)
        if outside.any():
            problem = "is outside the INT32 range"
            raise InvalidInputError(issues_at(name, outside, array, problem, "out_of_range"))
        return array.astype(np.int32)
    return array.astype(np.int64, copy=False)
