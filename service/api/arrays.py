"""From parsed JSON to NumPy arrays, once per array, with the checks only the JSON form can fail.

The happy path is one ``np.array`` call on the nested lists the JSON parser produced, plus O(1) work:
types are checked from the dtype NumPy infers, limits from the lengths along the first element.
Only when something is wrong does a Python walk of the lists find the exact position to report, so
a well-formed 4-million-element batch never pays for per-element Python checks.

Two things the dtype cannot show are handled explicitly: a JSON ``true`` next to numbers becomes 1
(NumPy promotes bools), and a number written as a string (``"2"``) must be refused, not parsed. The
caller passes ``may_contain_bool`` (whether the raw body has a ``true``/``false`` token at all, a
C-speed byte search) so that the walk for booleans runs only when one could be there.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import AliasChoices, BaseModel, PlainValidator, ValidationInfo, WithJsonSchema
from pydantic_core import PydanticCustomError
from typing_extensions import TypeAliasType

from service.core import format_loc

__all__ = [
    "ArrayLimits",
    "FloatOrTensor",
    "FloatTensor",
    "IndexTensor",
    "NullableNumberTensor",
    "NumberTensor",
    "TargetTensor",
    "decode_context",
    "json_to_array",
    "nested_array_schema",
    "tensor_fields",
]

#: The most dimensions an array may have by default (``ArrayLimits.max_dims``, ``XENT_MAX_DIMS``).
MAX_DIMS_DEFAULT: Final = 8


def nested_array_schema(leaf: dict[str, Any], depth: int = MAX_DIMS_DEFAULT) -> dict[str, Any]:
    """JSON Schema of nested arrays of ``leaf`` with 1 to ``depth`` levels, every level non-empty.

    Spelled out level by level rather than recursively: client generators (openapi-python-client,
    openapi-typescript) cannot type a schema that refers to itself, and the service refuses more
    than ``max_dims`` dimensions anyway."""
    levels: list[dict[str, Any]] = []
    items = leaf
    for _ in range(depth):
        items = {"type": "array", "items": items, "minItems": 1}
        levels.append(items)
    return {"anyOf": levels}


def _documented(leaf: dict[str, Any], what: str) -> WithJsonSchema:
    schema = nested_array_schema(leaf)
    return WithJsonSchema(
        {**schema, "description": f"{what} as nested arrays, row-major (1 to 8 dimensions)."}
    )


#: Documentation types: what the JSON looks like (one named schema each, the same for requests and
#: responses). Validation is done by ``json_to_array``. Arrays are never empty.
NumberTensor = TypeAliasType("NumberTensor", Annotated[list[Any], _documented({"type": "number"}, "Numbers")])
IndexTensor = TypeAliasType("IndexTensor", Annotated[list[Any], _documented({"type": "integer"}, "Integers")])
NullableNumberTensor = TypeAliasType(
    "NullableNumberTensor",
    Annotated[list[Any], _documented({"type": ["number", "null"]}, "Numbers or nulls")],
)

NumberKind = Literal["float", "number"]

_EXCERPT = 40


@dataclass(frozen=True, slots=True)
class ArrayLimits:
    """Bounds on any one array of a request."""

    max_elements: int = 16 * 1024 * 1024
    max_dims: int = MAX_DIMS_DEFAULT


class ArrayError(ValueError):
    """An array that cannot be converted: where (``path`` inside the field) and why."""

    def __init__(self, path: tuple[int, ...], msg: str, kind: str) -> None:
        super().__init__(msg)
        self.path = path
        self.msg = msg
        self.kind = kind


def decode_context(body: bytes | bytearray, limits: ArrayLimits) -> dict[str, Any]:
    """The validation context for ``Model.model_validate_json(body, context=...)``."""
    return {"limits": limits, "may_contain_bool": b"true" in body or b"false" in body}


def _excerpt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        text = repr(value)
    elif isinstance(value, float) and not math.isfinite(value):
        text = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    elif isinstance(value, dict):
        text = "an object"
    else:
        text = repr(value)
    return text if len(text) <= _EXCERPT else text[: _EXCERPT - 3] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _leaves(value: Any, path: tuple[int, ...] = ()) -> Iterator[tuple[tuple[int, ...], Any]]:
    """Every non-list value with its index path, in document order (no recursion limit issues).

    Lazy at every level: a search that stops at the first leaf costs O(depth), not O(size), so that
    refusing ``[{}, {}, ...]`` costs no more than reading it."""
    if not isinstance(value, list):
        yield path, value
        return
    stack: list[tuple[tuple[int, ...], Iterator[tuple[int, Any]]]] = [(path, enumerate(value))]
    while stack:
        where, items = stack[-1]
        for i, child in items:
            if isinstance(child, list):
                stack.append(((*where, i), enumerate(child)))
                break
            yield (*where, i), child
        else:
            stack.pop()


def _first_leaf(value: Any, predicate: Callable[[Any], bool]) -> tuple[tuple[int, ...], Any] | None:
    for where, item in _leaves(value):
        if predicate(item):
            return where, item
    return None


def _shape_along_first(value: Any) -> list[int]:
    """Lengths along the first element at each depth: the shape, if the array is rectangular."""
    dims: list[int] = []
    while isinstance(value, list):
        dims.append(len(value))
        if not value:
            break
        value = value[0]
    return dims


def _ragged(field: str, value: Any) -> ArrayError | None:
    """The first place where the nested lists stop being rectangular, level by level."""
    level: list[tuple[tuple[int, ...], Any]] = [((), value)]
    while level:
        reference_path, reference = level[0]
        reference_is_list = isinstance(reference, list)
        for where, item in level:
            if isinstance(item, list) != reference_is_list:
                found = "an array" if isinstance(item, list) else _excerpt(item)
                expected = "an array" if reference_is_list else "a number"
                msg = (
                    f"{format_loc((field, *where))} is {found} where {expected} is expected "
                    f"(as at {format_loc((field, *reference_path))}): arrays must be rectangular"
                )
                return ArrayError(where, msg, "ragged")
            if reference_is_list and len(item) != len(reference):
                msg = (
                    f"{format_loc((field, *where))} has {len(item)} elements but "
                    f"{format_loc((field, *reference_path))} has {len(reference)}: "
                    "arrays must be rectangular"
                )
                return ArrayError(where, msg, "ragged")
        if not reference_is_list:
            return None
        level = [((*where, i), child) for where, item in level for i, child in enumerate(item)]
    return None


def _not_a_number(field: str, where: tuple[int, ...], item: Any) -> ArrayError:
    loc = format_loc((field, *where))
    if item is None:
        return ArrayError(where, f"{loc} is null, not a number", "type")
    if isinstance(item, str):
        problem = "is a string; numbers are written without quotes"
    elif isinstance(item, bool):
        problem = "is a boolean, not a number"
    else:
        problem = "is not a number"
    return ArrayError(where, f"{loc} = {_excerpt(item)} {problem}", "type")


def json_to_array(
    value: Any,
    field: str,
    *,
    numbers: NumberKind = "float",
    limits: ArrayLimits = ArrayLimits(),
    may_contain_bool: bool = True,
) -> NDArray[Any]:
    """Convert a JSON value (nested lists of numbers, or one number) to an ndarray.

    ``numbers="float"`` gives float64; ``numbers="number"`` keeps int64 when every element is a JSON
    integer (class indices) and gives float64 otherwise. Non-finite values are converted as they are
    (the core reports them with their positions); anything that is not a rectangular array of numbers
    raises ``ArrayError`` naming the first offending position.
    """
    if isinstance(value, np.ndarray):
        return _checked_array(value, field, numbers, limits)
    if not isinstance(value, list):
        if _is_number(value):
            return _finish(np.array(value), numbers)
        raise _not_a_number(field, (), value)

    dims = _shape_along_first(value)
    if len(dims) > limits.max_dims:
        msg = f"{field} has {len(dims)} dimensions; at most {limits.max_dims} are accepted"
        raise ArrayError((), msg, "too_many_dims")
    if math.prod(dims) > limits.max_elements:
        msg = (
            f"{field} has {math.prod(dims)} elements; at most {limits.max_elements} are accepted "
            "per array (XENT_MAX_ELEMENTS)"
        )
        raise ArrayError((), msg, "too_many_elements")

    try:
        array = np.array(value)
    except (ValueError, TypeError, OverflowError):
        error = _ragged(field, value)
        if error is not None:
            raise error from None
        found = _first_leaf(value, lambda item: not _is_number(item))
        if found is not None:
            raise _not_a_number(field, *found) from None
        raise ArrayError((), f"{field} is not an array of numbers", "type") from None

    if array.ndim > limits.max_dims or array.size > limits.max_elements:
        # np.array can see deeper than the first element when every element is a list.
        error = _ragged(field, value)
        raise error or ArrayError((), f"{field} exceeds the array limits", "too_many_elements")

    if array.dtype.kind not in "iuf" or (may_contain_bool and _has_bool(value)):
        found = _first_leaf(value, lambda item: not _is_number(item))
        if found is not None:
            raise _not_a_number(field, *found)
        # Only numbers, but NumPy kept Python objects: integers beyond 64 bits.
        return _finish(_convert_big_integers(value, field, numbers), numbers)
    if numbers == "number" and _may_hide_big_integers(value, array):
        return _finish(_convert_big_integers(value, field, numbers), numbers)
    return _finish(array, numbers)


def _may_hide_big_integers(value: Any, array: NDArray[Any]) -> bool:
    """Whether NumPy's array of JSON numbers may hold an integer of 2**63 or more: it chose uint64,
    or it made floats of integers that int64 and uint64 could not hold together."""
    return array.dtype.kind == "u" or (array.dtype.kind == "f" and _holds_big_integer(value, array))


def _checked_array(array: NDArray[Any], field: str, numbers: NumberKind, limits: ArrayLimits) -> NDArray[Any]:
    """An array decoded already (``service.api.bulk_json``): only the limits are left to check."""
    if array.ndim > limits.max_dims:
        msg = f"{field} has {array.ndim} dimensions; at most {limits.max_dims} are accepted"
        raise ArrayError((), msg, "too_many_dims")
    if array.size > limits.max_elements:
        msg = (
            f"{field} has {array.size} elements; at most {limits.max_elements} are accepted "
            "per array (XENT_MAX_ELEMENTS)"
        )
        raise ArrayError((), msg, "too_many_elements")
    return _finish(array, numbers)


def _holds_big_integer(value: Any, array: NDArray[Any]) -> bool:
    """Whether a float array read from JSON holds an integer of 2**63 or more (rare: checked only
    when some value is that large)."""
    if not array.size or not np.any(np.abs(array) >= 2.0**63):
        return False
    return (
        _first_leaf(
            value,
            lambda item: (
                isinstance(item, int) and not isinstance(item, bool) and not -(2**63) <= item < 2**63
            ),
        )
        is not None
    )


def _has_bool(value: Any) -> bool:
    return _first_leaf(value, lambda item: isinstance(item, bool)) is not None


def _convert_big_integers(value: Any, field: str, numbers: NumberKind) -> NDArray[Any]:
    def beyond(bound: int) -> Callable[[Any], bool]:
        return lambda item: isinstance(item, int) and not -bound <= item < bound

    if numbers == "number":
        found = _first_leaf(value, beyond(2**63))
        if found is not None:
            where, item = found
            loc = format_loc((field, *where))
            msg = f"{loc} = {_excerpt(item)} is outside the 64-bit integer range"
            raise ArrayError(where, msg, "out_of_range")
    try:
        return np.array(value, dtype=np.float64)
    except OverflowError:
        found = _first_leaf(value, beyond(2**1024))
        where, item = found if found is not None else ((), None)
        msg = f"{format_loc((field, *where))} = {_excerpt(item)} is not a finite number"
        raise ArrayError(where, msg, "not_finite") from None


def _finish(array: NDArray[Any], numbers: NumberKind) -> NDArray[Any]:
    if numbers == "float" or array.dtype.kind == "f":
        return array.astype(np.float64, copy=False)
    return array.astype(np.int64, copy=False)


_TENSOR_VALIDATORS: set[Callable[..., Any]] = set()


def _validator(numbers: NumberKind) -> Callable[[Any, ValidationInfo], NDArray[Any]]:
    def validate(value: Any, info: ValidationInfo) -> NDArray[Any]:
        context = info.context or {}
        field = info.field_name or "value"
        try:
            return json_to_array(
                value,
                field,
                numbers=numbers,
                limits=context.get("limits", ArrayLimits()),
                may_contain_bool=context.get("may_contain_bool", True),
            )
        except ArrayError as error:
            raise PydanticCustomError(
                error.kind, "{detail}", {"detail": error.msg, "path": list(error.path)}
            ) from None

    _TENSOR_VALIDATORS.add(validate)
    return validate


#: A float array of any shape, given as nested JSON arrays of numbers.
FloatTensor = Annotated[
    NDArray[np.float64],
    PlainValidator(_validator("float"), json_schema_input_type=NumberTensor),
]

#: Binary cross-entropy takes input of any shape, a single number (0-d) included.
FloatOrTensor = Annotated[
    NDArray[np.float64],
    PlainValidator(_validator("float"), json_schema_input_type=float | NumberTensor),
]

#: Class indices (JSON integers, or one integer for unbatched input) or class probabilities.
TargetTensor = Annotated[
    NDArray[Any],
    PlainValidator(_validator("number"), json_schema_input_type=int | IndexTensor | NumberTensor),
]


def _is_tensor(annotation: Any) -> bool:
    metadata = getattr(annotation, "__metadata__", ())
    if any(isinstance(item, PlainValidator) and item.func in _TENSOR_VALIDATORS for item in metadata):
        return True
    return any(_is_tensor(argument) for argument in typing.get_args(annotation))


def tensor_fields(model: type[BaseModel]) -> frozenset[str]:
    """The JSON keys (names and aliases) of ``model``'s array fields."""
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        in_metadata = any(
            isinstance(item, PlainValidator) and item.func in _TENSOR_VALIDATORS for item in field.metadata
        )
        if in_metadata or _is_tensor(field.annotation):
            keys.add(name)
            alias = field.validation_alias
            if isinstance(alias, AliasChoices):
                keys.update(choice for choice in alias.choices if isinstance(choice, str))
            elif isinstance(alias, str):
                keys.add(alias)
    return frozenset(keys)
