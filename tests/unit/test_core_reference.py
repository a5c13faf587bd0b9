"""The core against every reference case computed by PyTorch (golden and extra), for all endpoints."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from service.core import (
    BinaryCrossEntropyResult,
    BinaryInputKind,
    CrossEntropyResult,
    InputKind,
    binary_cross_entropy,
    cross_entropy,
    divergence,
    tempered_softmax,
)
from tests.reference import Case, assert_matches, load_cases

CASES = load_cases()


def _array(value: Any) -> np.ndarray[Any, Any]:
    return np.array(value, dtype=np.float64)


def _as_json(value: Any) -> Any:
    """What the service would write: lists, with null for NaN."""
    if value is None:
        return None
    array = np.asarray(value)
    if array.dtype.kind == "f":
        listed = array.astype(object)
        listed[np.isnan(array)] = None
        return listed.tolist()
    return array.tolist()


def _cross_entropy(request: dict[str, Any]) -> dict[str, Any]:
    kind: InputKind = next(k for k in ("logits", "probabilities", "log_probabilities") if k in request)
    target = request["target"] if "target" in request else request["labels"]
    options = {
        k: request[k]
        for k in ("ignore_index", "reduction", "label_smoothing", "epsilon", "dtype", "outputs")
        if k in request
    }
    weight = _array(request["weight"]) if "weight" in request else None
    result = cross_entropy(_array(request[kind]), np.array(target), input_kind=kind, weight=weight, **options)
    names = ("loss", "count", "losses", "softmax", "log_softmax", "grad", "predictions", "target_probability")
    return {name: _as_json(getattr(result, name)) for name in names}


def _binary(request: dict[str, Any]) -> dict[str, Any]:
    kind: BinaryInputKind = "logits" if "logits" in request else "probabilities"
    target = request["target"] if "target" in request else request["labels"]
    options = {
        k: request[k] for k in ("reduction", "label_smoothing", "epsilon", "dtype", "outputs") if k in request
    }
    weight = _array(request["weight"]) if "weight" in request else None
    pos_weight = _array(request["pos_weight"]) if "pos_weight" in request else None
    result = binary_cross_entropy(
        _array(request[kind]),
        _array(target),
        input_kind=kind,
        weight=weight,
        pos_weight=pos_weight,
        **options,
    )
    names = ("loss", "count", "losses", "sigmoid", "grad", "predictions")
    return {name: _as_json(getattr(result, name)) for name in names}


def _softmax(request: dict[str, Any]) -> dict[str, Any]:
    options = {k: request[k] for k in ("temperature", "dim", "dtype") if k in request}
    probabilities, log_probabilities = tempered_softmax(_array(request["logits"]), **options)
    return {"softmax": _as_json(probabilities), "log_softmax": _as_json(log_probabilities)}


def _divergence(request: dict[str, Any]) -> dict[str, Any]:
    options = {k: request[k] for k in ("base", "reduction", "epsilon") if k in request}
    result = divergence(_array(request["p"]), _array(request["q"]), **options)
    names = ("cross_entropy", "entropy", "kl_divergence", "cross_entropies", "entropies", "kl_divergences")
    return {name: _as_json(getattr(result, name)) for name in names}


CORE = {
    "/v1/cross-entropy": _cross_entropy,
    "/v1/binary-cross-entropy": _binary,
    "/v1/softmax": _softmax,
    "/v1/divergence": _divergence,
}


def test_every_golden_case_is_here() -> None:
    golden = [case for case in CASES if case["source"] == "golden_cases.json"]
    assert len(golden) == 65
    assert {case["endpoint"] for case in golden} == set(CORE)


@pytest.mark.parametrize("case", CASES, ids=[f"{case['endpoint']}:{case['name']}" for case in CASES])
def test_core_matches_pytorch(case: Case) -> None:
    assert_matches(case, CORE[case["endpoint"]](dict(case["request"])))


FLOAT32_CASES = [case for case in CASES if case["request"].get("dtype") == "float32"]


@pytest.mark.parametrize("case", FLOAT32_CASES, ids=[case["name"] for case in FLOAT32_CASES])
def test_float32_cases_compute_in_float32(case: Case) -> None:
    request = case["request"]
    if case["endpoint"] == "/v1/softmax":
        probabilities, _ = tempered_softmax(_array(request["logits"]), dtype="float32")
        assert probabilities.dtype == np.float32
        return
    target = np.array(request["target"])
    reduction = request.get("reduction", "mean")
    result: CrossEntropyResult | BinaryCrossEntropyResult
    if case["endpoint"] == "/v1/cross-entropy":
        kind: InputKind = next(k for k in ("logits", "probabilities", "log_probabilities") if k in request)
        result = cross_entropy(
            _array(request[kind]),
            target,
            input_kind=kind,
            reduction=reduction,
            dtype="float32",
            outputs=["losses", "grad"],
        )
    else:
        binary_kind: BinaryInputKind = "logits" if "logits" in request else "probabilities"
        result = binary_cross_entropy(
            _array(request[binary_kind]),
            target,
            input_kind=binary_kind,
            reduction=reduction,
            dtype="float32",
            outputs=["losses", "grad"],
        )
    assert result.losses is not None and result.losses.dtype == np.float32
    assert result.grad is not None and result.grad.dtype == np.float32
