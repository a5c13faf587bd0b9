"""Response bodies straight from the core's results: NumPy values in, orjson writes them out."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["response_body"]


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
