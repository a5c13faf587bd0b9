"""Tensors to response bytes, as ``codec`` reads requests: outputs asked for as binary are written with
their buffer after the JSON header, whose length goes in the response's
``Inference-Header-Content-Length``; the others are flat lists in the header."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Final, NamedTuple

import numpy as np
import orjson
from numpy.typing import NDArray

from service.api.payloads import json_body

__all__ = [
    "BLOB_PIECE_BYTES",
    "NUMPY_DTYPES",
    "STREAM_MIN_BLOB_BYTES",
    "EncodedResponse",
    "OutputTensor",
    "datatype_of",
    "encode_response",
]

#: Each datatype's NumPy dtype, byte order explicit: the extension's blobs are little-endian.
NUMPY_DTYPES: Final[dict[str, np.dtype[Any]]] = {
    "BOOL": np.dtype("?"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}

#: Binary outputs of more bytes than this are sent as they are, a piece at a time, not joined first.
STREAM_MIN_BLOB_BYTES: Final = 8 << 20
#: Bytes per piece of a streamed binary output: each is copied once to be sent, and two may be held at
#: once (one in the connection's buffer, the next being made); 8 MiB pieces held 15 MB more at the
#: peak than 1 MiB ones, at no round-trip time measurable beside the noise (``bench/memory.py``,
#: ``bench/v2_roundtrip.py``).
BLOB_PIECE_BYTES: Final = 1 << 20


class OutputTensor(NamedTuple):
    """An output to send: ``binary`` puts its bytes after the JSON header instead of in ``data``."""

    name: str
    array: NDArray[Any]
    binary: bool


class EncodedResponse(NamedTuple):
    """The response body; ``header_length`` is set (for the header of that name) when blobs follow.

    A large body comes as ``chunks`` instead (``body`` is then empty), made one at a time as they are
    sent, with its total ``length`` when known beforehand (binary outputs).
    """

    body: bytes
    header_length: int | None
    chunks: Iterator[bytes] | None = None
    length: int | None = None


_DATATYPE_OF: Final[dict[str, str]] = {dtype.str: name for name, dtype in NUMPY_DTYPES.items()}


def datatype_of(array: NDArray[Any]) -> str:
    """The protocol datatype of an array whose dtype is one of ``NUMPY_DTYPES`` (``KeyError`` else)."""
    return _DATATYPE_OF[array.dtype.str]


def encode_response(
    *,
    model_name: str,
    model_version: str,
    request_id: str | None,
    outputs: Sequence[OutputTensor],
) -> EncodedResponse:
    """The response body: the JSON header, then the binary outputs' bytes in the order listed.

    JSON outputs are flat lists (row-major) of the array's own dtype (orjson writes float32 with the
    shortest representation that reads back to the same float32). Output arrays must be finite: the
    core guarantees it, and JSON could not carry anything else.
    """
    entries: list[dict[str, Any]] = []
    blobs: list[memoryview] = []
    numbers = 0  # in the JSON outputs
    for output in outputs:
        # Not np.ascontiguousarray: it turns a 0-d array (a scalar of shape []) into shape [1].
        array = output.array if output.array.flags.c_contiguous else output.array.copy(order="C")
        entry: dict[str, Any] = {
            "name": output.name,
            "datatype": datatype_of(array),
            "shape": list(array.shape),
        }
        flat = array.reshape(-1)
        if output.binary:
            little = flat.astype(flat.dtype.newbyteorder("<"), copy=False)
            blobs.append(little.data)
            entry["parameters"] = {"binary_data_size": little.nbytes}
        else:
            entry["data"] = flat
            numbers += flat.size
        entries.append(entry)
    document: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if request_id is not None:
        document["id"] = request_id
    document["outputs"] = entries
    if not blobs:
        body, chunks = json_body(document, numbers)
        return EncodedResponse(body, None, chunks=chunks)
    header = orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)
    blob_bytes = sum(blob.nbytes for blob in blobs)
    if blob_bytes > STREAM_MIN_BLOB_BYTES:
        # Joining would copy every output once more: send the header, then each blob's bytes.
        return EncodedResponse(
            b"", len(header), chunks=_blob_pieces(header, blobs), length=len(header) + blob_bytes
        )
    return EncodedResponse(b"".join([header, *blobs]), len(header))


def _blob_pieces(header: bytes, blobs: Sequence[memoryview]) -> Iterator[bytes]:
    yield header
    for blob in blobs:
        raw = blob.cast("B")
        for start in range(0, raw.nbytes, BLOB_PIECE_BYTES):
            yield bytes(raw[start : start + BLOB_PIECE_BYTES])
