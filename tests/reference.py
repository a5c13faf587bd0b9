"""Reference cases computed by PyTorch, and how to compare the service's answers with them.

``tests/data/golden_cases.json`` is the project's golden file (PyTorch 2.13, copied verbatim from the
specification); ``tests/data/extra_cases.json`` holds further cases made by
``scripts/make_reference_cases.py`` with the same PyTorch. Both have the same format: a request, the
expected response fields, and the tolerances to compare them with. ``tests/data/metric_cases.json``
(the same format, by the same script) holds the sample weights' and the metrics' cases, computed by
scikit-learn, torchmetrics and PyTorch (``load_metric_cases``); they are /v1 only.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DATA", "Case", "assert_matches", "cases_for", "load_cases", "load_metric_cases", "request_of"]

DATA = Path(__file__).parent / "data"
CASE_FILES = ("golden_cases.json", "extra_cases.json")

Case = dict[str, Any]


@cache
def load_cases() -> tuple[Case, ...]:
    cases: list[Case] = []
    for name in CASE_FILES:
        document = json.loads((DATA / name).read_text())
        for case in document["cases"]:
            cases.append({**case, "source": name})
    return tuple(cases)


@cache
def load_metric_cases() -> tuple[Case, ...]:
    document = json.loads((DATA / "metric_cases.json").read_text())
    return tuple({**case, "source": "metric_cases.json"} for case in document["cases"])


def cases_for(endpoint: str) -> list[Case]:
    return [case for case in load_cases() if case["endpoint"] == endpoint]


def request_of(case: Case) -> dict[str, Any]:
    return dict(case["request"])


def _as_float_array(value: Any) -> np.ndarray[Any, np.dtype[np.float64]]:
    """JSON value -> float array, null -> NaN (so that null positions can be compared)."""
    if isinstance(value, list):
        return np.array([_as_float_array(item) for item in value], dtype=np.float64).reshape(
            np.shape(value) if value else (0,)
        )
    return np.array(np.nan if value is None else value, dtype=np.float64)


def assert_matches(case: Case, response: dict[str, Any]) -> None:
    """Every expected field present and within the case's tolerance; shapes equal; nulls where null.

    A case whose PyTorch result was NaN records it under ``torch_nonfinite``; the contract turns that
    into null, which is asserted here.
    """
    expected: dict[str, Any] = case["expected"]
    rtol, atol = case["rtol"], case["atol"]
    for name in case.get("torch_nonfinite", {}):
        assert response.get(name, "absent") is None, f"{case['name']}: {name} should be null"
    for name, want in expected.items():
        assert name in response, f"{case['name']}: response lacks {name}"
        got = response[name]
        if want is None:
            assert got is None, f"{case['name']}: {name} should be null, got {got!r}"
            continue
        assert got is not None, f"{case['name']}: {name} is null, expected {want!r}"
        if isinstance(want, dict):  # an object (calibration): each expected member
            assert isinstance(got, dict), f"{case['name']}: {name} is not an object"
            assert_matches({**case, "expected": want, "torch_nonfinite": {}}, got)
            continue
        if name in {"predictions", "count"}:
            assert got == want, f"{case['name']}: {name} = {got!r}, expected {want!r}"
            continue
        got_array, want_array = _as_float_array(got), _as_float_array(want)
        assert got_array.shape == want_array.shape, (
            f"{case['name']}: {name} has shape {got_array.shape}, expected {want_array.shape}"
        )
        np.testing.assert_allclose(
            got_array,
            want_array,
            rtol=rtol,
            atol=atol,
            equal_nan=True,
            err_msg=f"{case['name']}: {name}",
        )
