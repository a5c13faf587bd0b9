"""Response bodies straight from the core's results: NumPy values in, orjson writes them out."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Final

import numpy as np
import orjson

__all__ = ["CHUNK_NUMBERS", "STREAM_MIN_NUMBERS", "json_chunks", "numbers_in", "response_body"]

_DUMP_OPTIONS: Final = orjson.OPT_SERIALIZE_NUMPY
#: Answers holding more numbers than this are written a piece at a time as they are sent
#: (``json_chunks``): about 20 MB of JSON.
STREAM_MIN_NUMBERS: Final = 1 << 20
#: Numbers per piece of a streamed answer: about 5 MB of JSON.
CHUNK_NUMBERS: Final = 1 << 18


def _plain(value: Any) -> Any:
    # orjson writes NumPy arrays and scalars, but not 0-d arrays: those become scalars.
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value[()]
    return value


def response_body(result: object, always: Iterable[str], requested: Iterable[str] = ()) -> dict[str, Any]:
    """``{name: getattr(result, name)}`` for every ``always`` field and each ``requested`` one that
    was computed. NaN (an ignored target's probability) becomes null when orjson writes it."""
    body = {name: _plain(getattr(result, name)) for name in always}
    for name in requested:
        value = getattr(result, name)
        if value is not None:
            body[name] = _plain(value)
    return body


def numbers_in(body: dict[str, Any]) -> int:
    """How many numbers the arrays of a response body hold."""
    return sum(value.size for value in body.values() if isinstance(value, np.ndarray))


def json_chunks(body: dict[str, Any], chunk_numbers: int = CHUNK_NUMBERS) -> Iterator[bytes]:
    """The bytes of ``orjson.dumps(body, option=OPT_SERIALIZE_NUMPY)``, in pieces.

    An array of more than ``chunk_numbers`` numbers is written a block of rows (along its first
    axis) at a time, so that a large answer never exists as one string: the process holds the result
    arrays and one piece, where ``orjson.dumps`` would hold the arrays and the whole text, three
    times the request's size when softmax, log-softmax and gradient are all asked for.
    """
    yield b"{"
    for index, (name, value) in enumerate(body.items()):
        key = orjson.dumps(name) + b":"
        if isinstance(value, np.ndarray) and value.ndim >= 1 and value.size > chunk_numbers:
            yield (b"," + key) if index else key
            yield from _array_chunks(value, chunk_numbers)
        else:
            yield (b"," if index else b"") + key + orjson.dumps(value, option=_DUMP_OPTIONS)
    yield b"}"


def _array_chunks(array: np.ndarray[Any, Any], chunk_numbers: int) -> Iterator[bytes]:
    rows = array.shape[0]
    step = max(1, chunk_numbers // (array.size // rows))
    for start in range(0, rows, step):
        block = np.ascontiguousarray(array[start : start + step])
        text = orjson.dumps(block, option=_DUMP_OPTIONS)  # "[row, row, ...]"
        yield (b"[" if start == 0 else b",") + text[1:-1]
    yield b"]"
