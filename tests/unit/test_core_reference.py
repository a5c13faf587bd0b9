"""The core against every /v1/cross-entropy reference case computed by PyTorch."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from service.core import CrossEntropyResult, InputKind, cross_entropy
from tests.reference import Case, assert_matches, cases_for

CASES = cases_for("/v1/cross-entropy")


def _core_response(case: Case) -> dict[str, Any]:
    request = dict(case["request"])
    kind: InputKind = next(k for k in ("logits", "probabilities", "log_probabilities") if k in request)
    target = request.pop("target") if "target" in request else request.pop("labels")
    options = {
        k: request[k]
        for k in ("ignore_index", "reduction", "label_smoothing", "epsilon", "dtype", "outputs")
        if k in request
    }
    weight = np.array(request["weight"], dtype=np.float64) if "weight" in request else None
    result = cross_entropy(
        np.array(request[kind], dtype=np.float64),
        np.array(target),
        input_kind=kind,
        weight=weight,
        **options,
    )
    return _as_json(result)


def _as_json(result: CrossEntropyResult) -> dict[str, Any]:
    out: dict[str, Any] = {
        "loss": None if result.loss is None else float(result.loss),
        "count": result.count,
    }
    for name in ("losses", "softmax", "log_softmax", "grad", "predictions", "target_probability"):
        value = getattr(result, name)
        if value is not None:
            listed = value.astype(object)
            if value.dtype.kind == "f":
                listed[np.isnan(value)] = None  # JSON null, as the service writes NaN
            out[name] = listed.tolist()
    return out


def test_reference_cases_cover_the_endpoint() -> None:
    sources = {case["source"] for case in CASES}
    assert sources == {"golden_cases.json", "extra_cases.json"}
    assert sum(case["source"] == "golden_cases.json" for case in CASES) == 43


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_core_matches_pytorch(case: Case) -> None:
    assert_matches(case, _core_response(case))


FLOAT32_CASES = [case for case in CASES if case["request"].get("dtype") == "float32"]


@pytest.mark.parametrize("case", FLOAT32_CASES, ids=[case["name"] for case in FLOAT32_CASES])
def test_float32_cases_compute_in_float32(case: Case) -> None:
    request = case["request"]
    kind: InputKind = next(k for k in ("logits", "probabilities", "log_probabilities") if k in request)
    result = cross_entropy(
        np.array(request[kind]),
        np.array(request["target"]),
        input_kind=kind,
        reduction=request.get("reduction", "mean"),
        dtype="float32",
        outputs=["losses", "grad"],
    )
    assert result.losses is not None and result.losses.dtype == np.float32
    assert result.grad is not None and result.grad.dtype == np.float32
