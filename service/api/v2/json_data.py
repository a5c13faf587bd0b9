"""The tensor data of a /v2 request written as JSON: large ``data`` arrays read as /v1's large arrays
are (``service.api.bulk_json``), without a Python object per number, and whether any ``data`` may
hold a boolean that NumPy would silently turn into a number."""

from __future__ import annotations

import math
from typing import Any

from numpy.typing import NDArray
from pydantic import ValidationError

from service.api.arrays import ArrayLimits
from service.api.bulk_json import decode_bulk_values
from service.api.json_keys import check_keys
from service.api.schemas import known_keys
from service.api.v2.plain import Header
from service.api.v2.protocol import InferenceRequest, ParameterValue
from service.core import InvalidInputError

__all__ = ["data_may_hold_booleans", "parse_bulk"]


def parse_bulk(
    body: bytes | bytearray, limits: ArrayLimits
) -> tuple[InferenceRequest, dict[int, NDArray[Any]], bytes] | None:
    """A large all-JSON body as /v1's are read (``decode_bulk_values``): each large ``data`` array
    parsed a megabyte at a time, the rest validated as the request model. Returns the request, the
    arrays by input index and the envelope (the body without them); None when the body is not as
    expected, and then the ordinary path parses it and says what is wrong, and where."""
    values = decode_bulk_values(body, "data", max_dims=limits.max_dims)
    if values is None:
        return None
    try:
        check_keys(values.envelope, known_keys(InferenceRequest), max_depth=3)
        request = InferenceRequest.model_validate_json(values.envelope)
    except (ValidationError, InvalidInputError):
        return None
    waiting = dict(zip(values.placeholders, values.arrays, strict=True))
    data: dict[int, NDArray[Any]] = {}
    for index, item in enumerate(request.inputs):
        if type(item.data) is int and item.data in waiting:
            data[index] = waiting.pop(item.data)
    if waiting:
        return None  # a placeholder somewhere else than an input's data
    return request, data, values.envelope


def data_may_hold_booleans(header: bytes | bytearray, request: Header) -> bool:
    """Whether any tensor ``data`` may contain a JSON ``true``/``false``.

    NumPy silently turns ``[true, 1.5]`` into ``[1.0, 1.5]``, so booleans must be looked for, but a
    Python walk costs about a microsecond per element. Every boolean token puts ``true`` or ``false``
    in the bytes; if the header holds no more of them than the boolean parameter values it has
    (``binary_data``, ``binary_data_output``...), none of them is in the data. Strings that contain
    the words only make this answer "maybe", which is safe.
    """
    occurrences = header.count(b"true") + header.count(b"false")
    if occurrences == 0:
        return False
    known = _count_bools(request.parameters)
    for item in request.inputs:
        known += _count_bools(item.parameters)
        if item.datatype == "BOOL" and item.data is not None and all(d >= 0 for d in item.shape):
            # As many tokens as its shape has elements; if not, that input is refused anyway.
            known += math.prod(item.shape)
    for output in request.outputs or ():
        known += _count_bools(output.parameters)
    return occurrences > known


def _count_bools(parameters: dict[str, ParameterValue] | None) -> int:
    return sum(isinstance(value, bool) for value in (parameters or {}).values())
