"""Does the installed orjson write NumPy arrays without overrunning its buffer? Run it in a subprocess.

orjson 3.12.0 and 3.13.0 (with NumPy 2.4) corrupt the heap when ``OPT_SERIALIZE_NUMPY`` writes a
float64 array of 24-character numbers and the output passes about 8 KiB: the service process died with
SIGABRT on a valid 8 KB request. Heap corruption shows only later, at a free, and only sometimes; run
under ``PYTHONMALLOC=debug``, CPython pads every block it hands out with guard bytes and aborts the
process at the first overrun it finds, so one ``dumps`` is enough to tell.

The probe writes, the way the service does (arrays inside a dict, with ``OPT_SERIALIZE_NUMPY``):
- numbers of every printed length from 1 to 25 characters that the dtype can produce (int64 for the
  shortest, float32 and float64, positive and negative, small and large exponents);
- arrays whose output sits just below, at and just above each power of two from 4 KiB to 1 MiB;
- flat (one row) and nested (rows of 10 and of 330 numbers) arrays;
and checks that each output parses back to the array's values. It prints one line per problem and a
summary, and exits 1 on a wrong output; an overrun kills it with SIGABRT (exit -6) before that. A
float64 prints in at most 24 characters (sign, 17 digits, point, ``e-``, 3 digits), a float32 in 15,
an int64 in 20: the lengths a dtype cannot print are listed, not tried.

    PYTHONMALLOC=debug python tests/orjson_probe.py
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator

import numpy as np
import orjson

LENGTHS = range(1, 26)
POWERS = [2**k for k in range(12, 21)]
ROW_LENGTHS = (None, 10, 330)  # None: one flat row
DTYPES = ("int64", "float32", "float64")


def _printed(value: np.generic) -> bytes:
    return orjson.dumps(np.array([value]), option=orjson.OPT_SERIALIZE_NUMPY)[1:-1]


def _candidates(dtype: str) -> Iterator[np.generic]:
    """Values of the dtype, in many printed shapes: sign, digit count, exponent."""
    if dtype == "int64":
        for digits, sign in itertools.product(range(1, 20), (1, -1)):
            yield np.int64(sign * int("1234567890123456789"[:digits]))
        yield np.int64(np.iinfo(np.int64).min)
        return
    kind = np.float32 if dtype == "float32" else np.float64
    mantissas = ["1", "12", "123", "1234", "12345", "1.2345678", "1.23456789012", "1.2345678901234"]
    mantissas += ["1.234567890123456", "1.2345678901234567", "9.999999999999999"]
    exponents = [0, 1, 5, 15, 16, 17, 22, 38, 99, 100, 300, 307]
    for mantissa, exponent, minus, flip in itertools.product(mantissas, exponents, ("", "-"), (1, -1)):
        with np.errstate(over="ignore", under="ignore"):
            value = kind(f"{minus}{mantissa}e{flip * exponent}")
        if np.isfinite(value) and value != 0:
            yield value
    yield kind(0.0)
    yield kind(np.finfo(kind).smallest_subnormal)
    yield kind(-np.finfo(kind).smallest_subnormal)


def values_by_length(dtype: str) -> dict[int, np.generic]:
    """One value of the dtype for each printed length in LENGTHS that the dtype can print."""
    found: dict[int, np.generic] = {}
    for value in _candidates(dtype):
        found.setdefault(len(_printed(value)), value)
    return {length: found[length] for length in LENGTHS if length in found}


def _arrays(value: np.generic, printed_length: int) -> Iterator[np.ndarray]:
    for power, row_length in itertools.product(POWERS, ROW_LENGTHS):
        count = power // (printed_length + 1)
        for total in (count - 1, count, count + 1):
            if row_length is None:
                yield np.full(total, value)
            else:
                rows = max(1, total // row_length)
                yield np.full((rows, row_length), value)


def _round_trip_ok(array: np.ndarray, output: bytes) -> bool:
    parsed = np.asarray(orjson.loads(output)["a"], dtype=array.dtype)
    return parsed.shape == array.shape and bool(np.array_equal(parsed, array))


def main() -> int:
    problems = 0
    cases = 0
    for dtype in DTYPES:
        lengths = values_by_length(dtype)
        for printed_length, value in lengths.items():
            # Said before the writes, so that an abort names the numbers it died on.
            print(
                f"{dtype}, {printed_length} characters: {_printed(value).decode()}",
                file=sys.stderr,
                flush=True,
            )
            for array in _arrays(value, printed_length):
                output = orjson.dumps({"a": array}, option=orjson.OPT_SERIALIZE_NUMPY)
                cases += 1
                if not _round_trip_ok(array, output):
                    problems += 1
                    print(f"wrong output: {dtype} {array.shape} of {_printed(value).decode()}")
        missing = sorted(set(LENGTHS) - set(lengths))
        print(f"{dtype}: printed lengths {min(lengths)}-{max(lengths)}, none of {missing}")
    print(f"orjson {orjson.__version__}, numpy {np.__version__}: {cases} arrays, {problems} wrong")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
