"""Requests as bytes and answers as arrays, for the service's two transports.

* **JSON** (``/v1/<endpoint>``): the request fields as one JSON object; arrays as nested lists.
  Float64 values are written with Python's shortest round-trip ``repr``, float32 values as the exact
  float64 of the float32, so the service reads exactly the numbers the caller holds.
* **Binary tensors** (``/v2/models/<model>/infer``, Triton's binary tensor data extension): a JSON
  header naming each input's datatype, shape and ``binary_data_size``, followed by the raw
  little-endian row-major bytes of the inputs in order; the ``Inference-Header-Content-Length``
  header gives the JSON part's length. Every output is asked for as binary too
  (``binary_data_output``) and read with ``np.frombuffer``. An endpoint without a /v2 model
  (``Endpoint.binary`` false: /v1/focal-loss) is sent as JSON whatever its size.

Both compute with the same core function, so they give the same numbers to the last bit (the
client's tests check every golden case both ways). JSON costs no more for small inputs (up to about
350 numbers); binary is faster from about 500 numbers on, twice as fast by 1400, and 50 times as
fast for large inputs (``bench/client.py``, quoted in the client's README).

A request is a ``Prepared``: its path, headers and body as a tuple of buffers, joined only when small
(a large input's bytes are sent straight from the caller's array or memory map, in pieces of
``PIECE_BYTES``), so a request in flight costs no copy of its body.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, cast

import httpx
import numpy as np
from numpy.typing import ArrayLike, NDArray

from xent_client._errors import XentError

__all__ = [
    "ENDPOINTS",
    "JSON_MAX_NUMBERS",
    "PIECE_BYTES",
    "Endpoint",
    "Prepared",
    "Transport",
    "decode",
    "prepare",
]

Transport = Literal["auto", "json", "binary"]

#: Inputs of at most this many numbers go as JSON when the transport is "auto"; larger as binary
#: tensors. Measured by ``python bench/client.py`` (its first table, in the client's README).
JSON_MAX_NUMBERS: Final = 400

#: A request body is handed to the connection in pieces of at most this many bytes (h11 copies each
#: piece once as it frames it: the pieces in flight are the only copies of a body the client makes).
#: A body of at most this size is joined and sent in one write (a copy that small costs less than
#: the writes it saves).
PIECE_BYTES: Final = 64 << 10

HEADER_LENGTH: Final = "Inference-Header-Content-Length"

_DATATYPES: Final[dict[str, np.dtype[Any]]] = {
    "BOOL": np.dtype("?"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One operation of the service, under both transports."""

    path: str
    model: str
    #: The array fields, in the order they are sent; the first group are alternatives (scores).
    scores: tuple[str, ...]
    others: tuple[str, ...]
    #: Outputs that always come back (scalars), and the arrays returned when ``outputs`` is not given.
    scalars: tuple[str, ...]
    default_arrays: tuple[str, ...]
    #: Whether the request takes an ``outputs`` field (v1), and whether results follow ``dtype``.
    has_outputs: bool
    follows_dtype: bool
    #: Whether the service serves it as binary tensors too (a /v2 model named ``model``); when not,
    #: every request goes as JSON and an explicit transport="binary" is refused before sending.
    binary: bool = True


ENDPOINTS: Final = {
    "cross_entropy": Endpoint(
        "/v1/cross-entropy",
        "cross_entropy",
        ("logits", "probabilities", "log_probabilities"),
        ("target", "weight", "sample_weight"),
        ("loss", "count"),
        ("losses", "softmax"),
        has_outputs=True,
        follows_dtype=True,
    ),
    "binary_cross_entropy": Endpoint(
        "/v1/binary-cross-entropy",
        "binary_cross_entropy",
        ("logits", "probabilities"),
        ("target", "weight", "pos_weight", "sample_weight"),
        ("loss", "count"),
        ("losses", "sigmoid"),
        has_outputs=True,
        follows_dtype=True,
    ),
    "softmax": Endpoint(
        "/v1/softmax", "softmax", ("logits",), (), (), ("softmax", "log_softmax"), False, True
    ),
    "divergence": Endpoint(
        "/v1/divergence",
        "divergence",
        ("p",),
        ("q",),
        ("cross_entropy", "entropy", "kl_divergence"),
        ("cross_entropies", "entropies", "kl_divergences"),
        has_outputs=False,
        follows_dtype=False,
    ),
    "focal_loss": Endpoint(
        "/v1/focal-loss",
        "focal_loss",
        ("logits",),
        ("target", "alpha"),
        ("loss", "count"),
        ("losses",),
        has_outputs=True,
        follows_dtype=True,
        binary=False,
    ),
}


@dataclass(frozen=True, slots=True)
class Prepared:
    """A request ready to send (and to send again on a retry: the buffers are only read)."""

    endpoint: Endpoint
    binary: bool
    path: str
    headers: Mapping[str, str]
    parts: tuple[bytes | memoryview, ...]
    #: The float dtype of the results (v1 JSON carries no datatype).
    result_dtype: np.dtype[Any]
    #: The output names asked for, scalars first.
    outputs: tuple[str, ...]

    @property
    def length(self) -> int:
        return sum(part.nbytes if isinstance(part, memoryview) else len(part) for part in self.parts)

    def content(self) -> bytes | Iterator[bytes]:
        """What httpx sends: a small body joined (one write), a large one in pieces (no copy)."""
        if self.length <= PIECE_BYTES:
            return b"".join(self.parts)
        return self.pieces()

    def acontent(self) -> bytes | AsyncIterator[bytes]:
        """``content`` for ``httpx.AsyncClient``."""
        if self.length <= PIECE_BYTES:
            return b"".join(self.parts)
        return self.apieces()

    def pieces(self) -> Iterator[bytes]:
        """The body, a piece at a time, read from the arrays themselves. (httpx and h11 take any
        bytes-like object, though httpx's annotations say ``bytes``.)"""
        for part in self.parts:
            for start in range(0, len(part), PIECE_BYTES):
                yield cast(bytes, part[start : start + PIECE_BYTES])

    async def apieces(self) -> AsyncIterator[bytes]:
        for piece in self.pieces():
            yield piece


def _array(name: str, value: ArrayLike) -> NDArray[Any]:
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise XentError(f"{name} must hold numbers, not {array.dtype} values")
    return array


def _float_datatype(dtype: str | None) -> str:
    return "FP32" if dtype == "float32" else "FP64"


def _datatype(
    endpoint: Endpoint, name: str, array: NDArray[Any], scores: NDArray[Any], dtype: str | None
) -> str:
    """The tensor datatype an input is sent as: what the JSON form would mean, exactly."""
    if name == "target" and endpoint.model == "cross_entropy" and array.ndim != scores.ndim:
        if array.dtype.kind in "biu":
            return "INT64"  # class indices
        return "FP64"  # not integers: the service says why it cannot take them
    if name == "target" and array.dtype.kind == "b":
        return "BOOL"
    if name in endpoint.scores and endpoint.follows_dtype:
        return _float_datatype(dtype)
    if name == "target" and endpoint.follows_dtype:
        return _float_datatype(dtype)
    return "FP64"


def prepare(
    endpoint: Endpoint,
    arrays: Mapping[str, ArrayLike | None],
    options: Mapping[str, Any],
    outputs: Sequence[str] | None,
    transport: Transport,
) -> Prepared:
    """The request for ``endpoint`` with the given arrays and options (None values are left out, so
    the service's defaults apply), over the transport asked for ("auto": by size)."""
    given = {name: _array(name, value) for name, value in arrays.items() if value is not None}
    chosen = {name: value for name, value in options.items() if value is not None}
    dtype = chosen.get("dtype")
    result_dtype = np.dtype(np.float32 if dtype == "float32" and endpoint.follows_dtype else np.float64)
    arrays_out = tuple(outputs) if outputs is not None else endpoint.default_arrays
    names = tuple(dict.fromkeys(endpoint.scalars + arrays_out))
    v1_only = any(name in _V1_ONLY for name in (*arrays_out, *chosen))
    binary = _sends_binary(endpoint, transport, given.values(), v1_only)
    if not binary:
        body: dict[str, Any] = {name: _to_json(value) for name, value in given.items()}
        body.update(chosen)
        if outputs is not None and endpoint.has_outputs:
            body["outputs"] = list(outputs)
        text = json.dumps(body, allow_nan=False, separators=(",", ":")).encode()
        headers = {"content-type": "application/json"}
        return Prepared(endpoint, False, endpoint.path, headers, (text,), result_dtype, names)

    scores_name = next((name for name in endpoint.scores if name in given), None)
    scores = given[scores_name] if scores_name is not None else np.empty(0)
    inputs: list[dict[str, Any]] = []
    blobs: list[memoryview] = []
    for name in (*endpoint.scores, *endpoint.others):
        if name not in given:
            continue
        datatype = _datatype(endpoint, name, given[name], scores, dtype)
        wire = np.asarray(given[name], dtype=_DATATYPES[datatype], order="C")
        blob = wire.data.cast("B") if wire.size else memoryview(b"")
        inputs.append(
            {
                "name": name,
                "datatype": datatype,
                "shape": list(wire.shape),
                "parameters": {"binary_data_size": blob.nbytes},
            }
        )
        blobs.append(blob)
    header = {
        "inputs": inputs,
        "parameters": {**chosen, "binary_data_output": True},
        "outputs": [{"name": name} for name in names],
    }
    header_bytes = json.dumps(header, allow_nan=False, separators=(",", ":")).encode()
    headers = {
        "content-type": "application/octet-stream",
        HEADER_LENGTH: str(len(header_bytes)),
    }
    path = f"/v2/models/{endpoint.model}/infer"
    return Prepared(endpoint, True, path, headers, (header_bytes, *blobs), result_dtype, names)


def _sends_binary(
    endpoint: Endpoint, transport: Transport, given: Collection[NDArray[Any]], v1_only: bool
) -> bool:
    """Whether the request goes as binary tensors: "auto" by size (and NaN or Infinity, which JSON
    cannot carry), unless the endpoint or an output or option is JSON only. A transport that cannot
    carry the request raises ``XentError`` here, before anything is sent."""
    if transport == "binary" and not endpoint.binary:
        raise XentError(
            f"{endpoint.path} is served as JSON only (the service has no /v2 {endpoint.model} model): "
            "send with transport='json' or 'auto'"
        )
    if transport == "binary" and v1_only:
        raise XentError("the metrics and their options are /v1 outputs: send with transport='json' or 'auto'")
    finite = all(value.dtype.kind != "f" or bool(np.isfinite(value).all()) for value in given)
    can_be_binary = endpoint.binary and not v1_only
    if transport == "auto" and can_be_binary:
        return not finite or sum(value.size for value in given) > JSON_MAX_NUMBERS
    if transport == "binary":
        return True
    if not finite:
        if can_be_binary:
            hint = "send with transport='binary' to have the service name the position"
        elif not endpoint.binary:
            hint = f"{endpoint.path} is served as JSON only"
        else:
            hint = "the metrics and their options are /v1 outputs"
        raise XentError(f"NaN and Infinity cannot be written as JSON; {hint}")
    return False


def _to_json(array: NDArray[Any]) -> Any:
    if array.dtype.kind == "b":
        array = array.astype(np.int64)
    return array.tolist()


def decode(prepared: Prepared, response: httpx.Response) -> dict[str, Any]:
    """The answer as ``{output name: value}``: arrays as ``numpy.ndarray`` (floats of the requested
    dtype, ``count`` and ``predictions`` int64), reduced values as float or None, ``count`` as int.
    Outputs the service leaves out (``loss`` under reduction "none") are None. Where a target is
    ignored, ``target_probability`` is NaN (v1 writes null, v2 -1)."""
    fields: dict[str, Any] = dict.fromkeys(prepared.outputs)
    if prepared.binary:
        fields.update(_decode_binary(response))
    else:
        body = json.loads(response.content)
        for name in prepared.outputs:
            fields[name] = _from_json(name, body.get(name), prepared.result_dtype)
    if prepared.binary and fields.get("target_probability") is not None:
        probability = fields["target_probability"]
        fields["target_probability"] = np.where(probability == -1, np.nan, probability)
    return fields


#: Outputs and options of /v1 only (the metrics): a request with any goes as JSON.
_V1_ONLY: Final = frozenset(
    {"accuracy", "top_k_accuracy", "perplexity", "brier_score", "calibration", "top_k", "calibration_bins"}
    | {"threshold"}
)

_SCALARS: Final = frozenset(
    {"loss", "cross_entropy", "entropy", "kl_divergence", "accuracy", "top_k_accuracy", "perplexity"}
    | {"brier_score"}
)


def _from_json(name: str, value: Any, dtype: np.dtype[Any]) -> Any:
    if value is None:
        return None
    if name in _SCALARS and not isinstance(value, list):  # cross-entropy's `entropy` is per sample
        return float(dtype.type(value))  # a float32 result is written as the shortest float32 text
    if name == "count":
        return int(value)
    if name == "predictions":
        return np.asarray(value, dtype=np.int64)
    if name == "calibration":  # an object: the error and the reliability diagram's bins
        return {key: item if np.isscalar(item) or item is None else np.asarray(item, dtype=np.float64)
                for key, item in value.items()}  # fmt: skip
    return np.asarray(value, dtype=dtype)  # null (an ignored target) becomes NaN


def _decode_binary(response: httpx.Response) -> dict[str, Any]:
    content = response.content
    length_text = response.headers.get(HEADER_LENGTH)
    length = int(length_text) if length_text is not None else len(content)
    header = json.loads(content[:length])
    fields: dict[str, Any] = {}
    offset = length
    for output in header.get("outputs", ()):
        name, datatype, shape = output["name"], output["datatype"], tuple(output["shape"])
        dtype = _DATATYPES[datatype]
        size = (output.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            array = np.frombuffer(content, dtype=dtype, count=math.prod(shape), offset=offset)
            offset += int(size)
            value: NDArray[Any] = array.reshape(shape).astype(dtype.newbyteorder("="))
        else:
            value = np.asarray(output["data"], dtype=dtype).reshape(shape)
        if name in _SCALARS:
            fields[name] = float(value)
        elif name == "count":
            fields[name] = int(value)
        else:
            fields[name] = value
    return fields
