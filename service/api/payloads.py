"""Response bodies straight from the core's results: NumPy values in, orjson writes them out."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any, Final

import numpy as np
import orjson

__all__ = [
    "CHUNK_NUMBERS",
    "FIRST_UNSAFE_ORJSON",
    "STREAM_MIN_NUMBERS",
    "check_serialiser",
    "json_body",
    "json_chunks",
    "numbers_in",
    "response_body",
]

#: orjson 3.12.0 and 3.13.0 write past their buffer when they serialise NumPy float64 arrays of long
#: numbers (-1.2345678901234567e300, ...) beyond about 8 KiB: the heap is corrupted and the process dies
#: with SIGABRT on a valid request. pyproject.toml keeps orjson below this version; ``check_serialiser``
#: refuses to build the app with anything else (a ``pip install --no-deps`` could bring one in).
#: tests/orjson_probe.py is the check to run before raising it.
FIRST_UNSAFE_ORJSON: Final = (3, 12)

_DUMP_OPTIONS: Final = orjson.OPT_SERIALIZE_NUMPY
#: Answers holding more numbers than this are written a piece at a time as they are sent
#: (``json_chunks``): about 20 MB of JSON.
STREAM_MIN_NUMBERS: Final = 1 << 20
#: Numbers per piece of a streamed answer: about 5 MB of JSON.
CHUNK_NUMBERS: Final = 1 << 18


def check_serialiser(version: str = orjson.__version__) -> None:
    """Raise ``RuntimeError`` unless ``version`` of orjson is below ``FIRST_UNSAFE_ORJSON``."""
    # The leading numbers only: a pre-release such as "4.0b1" is 4.0.
    major_minor = tuple(int(re.sub(r"\D.*", "", part) or 0) for part in version.split(".")[:2])
    if major_minor >= FIRST_UNSAFE_ORJSON:
        first = ".".join(map(str, FIRST_UNSAFE_ORJSON))
        raise RuntimeError(
            f"orjson {version} is installed, but orjson {first} and later corrupt the heap when they "
            f"write NumPy arrays (the process dies on valid requests): install orjson<{first}, "
            "as pyproject.toml says"
        )


def _plain(value: Any) -> Any:
    # orjson writes NumPy arrays and scalars, but not 0-d arrays: those become scalars.
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value[()]
    return value


def response_body(
    result: object, always: Iterable[str], requested: Iterable[str] = (), nullable: Iterable[str] = ()
) -> dict[str, Any]:
    """``{name: getattr(result, name)}`` for every ``always`` field and each ``requested`` one that
    was computed, or that is ``nullable`` (a metric whose mean is undefined: sent as null). NaN (an
    ignored target's probability) becomes null when orjson writes it."""
    body = {name: _plain(getattr(result, name)) for name in always}
    sent_null = frozenset(nullable)
    for name in requested:
        value = getattr(result, name)
        if value is not None or name in sent_null:
            body[name] = _plain(value)
    return body


def numbers_in(body: dict[str, Any]) -> int:
    """How many numbers the arrays of a response body hold."""
    return sum(value.size for value in body.values() if isinstance(value, np.ndarray))


def json_body(value: Any, numbers: int) -> tuple[bytes, Iterator[bytes] | None]:
    """``value`` as JSON holding ``numbers`` numbers in its arrays: its bytes whole, or, above
    ``STREAM_MIN_NUMBERS``, empty bytes and the pieces to send one at a time (``json_chunks``)."""
    if numbers > STREAM_MIN_NUMBERS:
        return b"", json_chunks(value)
    return orjson.dumps(value, option=_DUMP_OPTIONS), None


def json_chunks(value: Any, chunk_numbers: int = CHUNK_NUMBERS) -> Iterator[bytes]:
    """The bytes of ``orjson.dumps(value, option=OPT_SERIALIZE_NUMPY)``, in pieces.

    Dicts and lists are walked; an array of more than ``chunk_numbers`` numbers is written a block of
    rows (along its first axis) at a time, so that a large answer never exists as one string: the
    process holds the result arrays and one piece, where ``orjson.dumps`` would hold the arrays and
    the whole text, three times the request's size when softmax, log-softmax and gradient are all
    asked for. Small pieces (brackets, keys, scalars) are gathered up to ``_GATHER_BYTES``.
    """
    gathered = bytearray()
    for piece in _pieces(value, chunk_numbers):
        if len(piece) >= _GATHER_BYTES:
            if gathered:
                yield bytes(gathered)
                gathered.clear()
            yield piece
        else:
            gathered += piece
            if len(gathered) >= _GATHER_BYTES:
                yield bytes(gathered)
                gathered.clear()
    if gathered:
        yield bytes(gathered)


#: Pieces smaller than this are sent together.
_GATHER_BYTES: Final = 64 * 1024


def _pieces(value: Any, chunk_numbers: int) -> Iterator[bytes]:
    if isinstance(value, dict):
        yield b"{"
        for index, (name, item) in enumerate(value.items()):
            yield (b"," if index else b"") + orjson.dumps(name) + b":"
            yield from _pieces(item, chunk_numbers)
        yield b"}"
    elif isinstance(value, list | tuple):
        yield b"["
        for index, item in enumerate(value):
            if index:
                yield b","
            yield from _pieces(item, chunk_numbers)
        yield b"]"
    elif isinstance(value, np.ndarray) and value.ndim >= 1 and value.size > chunk_numbers:
        yield from _array_chunks(value, chunk_numbers)
    else:
        yield orjson.dumps(value, option=_DUMP_OPTIONS)


def _array_chunks(array: np.ndarray[Any, Any], chunk_numbers: int) -> Iterator[bytes]:
    rows = array.shape[0]
    if array.ndim > 1 and array.size // rows > chunk_numbers:
        # Rows too large for one piece (a few very wide rows): each is cut in turn.
        yield b"["
        for index in range(rows):
            if index:
                yield b","
            yield from _array_chunks(array[index], chunk_numbers)
        yield b"]"
        return
    step = max(1, chunk_numbers // (array.size // rows))
    for start in range(0, rows, step):
        block = np.ascontiguousarray(array[start : start + step])
        text = orjson.dumps(block, option=_DUMP_OPTIONS)  # "[row, row, ...]"
        yield (b"[" if start == 0 else b",") + text[1:-1]
    yield b"]"
