"""The core against the metrics' reference cases (scikit-learn 1.9, torchmetrics 1.9, PyTorch 2.13;
``tests/data/metric_cases.json``, made by ``scripts/make_reference_cases.py``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from service.core import binary_cross_entropy, cross_entropy
from tests.reference import Case, assert_matches, load_metric_cases

CASES = load_metric_cases()
_ARRAYS = ("weight", "sample_weight")


def _plain(value: Any) -> Any:
    """What the service would write: lists, numbers, null for NaN; objects member by member."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if value is None:
        return None
    array = np.asarray(value)
    if array.dtype.kind == "f":
        listed = array.astype(object)
        listed[np.isnan(array)] = None
        return listed.tolist()
    return array.tolist()


def _answer(case: Case) -> dict[str, Any]:
    request = dict(case["request"])
    kind = next(k for k in ("logits", "probabilities", "log_probabilities") if k in request)
    scores, target = np.array(request.pop(kind), dtype=float), np.array(request.pop("target"))
    for name in _ARRAYS:
        if name in request:
            request[name] = np.array(request[name], dtype=float)
    if case["endpoint"] == "/v1/cross-entropy":
        result: Any = cross_entropy(scores, target, input_kind=kind, **request)  # type: ignore[arg-type]
    else:
        result = binary_cross_entropy(scores, target.astype(float), input_kind=kind, **request)  # type: ignore[arg-type]
    return {name: _plain(getattr(result, name)) for name in case["expected"]}


def test_the_cases_cover_both_endpoints_and_every_library() -> None:
    assert {case["endpoint"] for case in CASES} == {"/v1/cross-entropy", "/v1/binary-cross-entropy"}
    names = " ".join(case["name"] for case in CASES)
    assert "sklearn" in names and "torchmetrics" in names and "torch_" in names


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_core_matches_the_libraries(case: Case) -> None:
    assert_matches(case, _answer(case))
