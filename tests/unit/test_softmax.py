"""Softmax, log-softmax and log-sum-exp against high-precision references (mpmath)."""

from __future__ import annotations

from typing import Any

import mpmath
import numpy as np
import pytest

from service.core import log_softmax, logsumexp, softmax, softmax_and_log_softmax

mpmath.mp.dps = 50


def _reference_logsumexp(row: np.ndarray[Any, Any]) -> float:
    return float(mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(float(v))) for v in row)))


ROWS = [
    np.array([-1.0, 0.5, 2.0]),
    np.array([-1.0, 0.5, 3.0]),
    np.array([1000.0, 999.0, -1000.0]),
    np.array([-745.0, -746.0, -800.0]),
    np.array([1e-300, -1e-300, 0.0]),
    np.array([0.0] * 10),
    np.linspace(-30, 30, 17),
]


@pytest.mark.parametrize("row", ROWS, ids=[f"row{i}" for i in range(len(ROWS))])
def test_logsumexp_matches_mpmath(row: np.ndarray[Any, Any]) -> None:
    got = logsumexp(row[None, :], axis=1)[0, 0]
    np.testing.assert_allclose(got, _reference_logsumexp(row), rtol=1e-14)


@pytest.mark.parametrize("row", ROWS, ids=[f"row{i}" for i in range(len(ROWS))])
def test_log_softmax_matches_mpmath(row: np.ndarray[Any, Any]) -> None:
    reference = np.array([float(v) - _reference_logsumexp(row) for v in row])
    np.testing.assert_allclose(log_softmax(row), reference, rtol=1e-13, atol=1e-13)


def test_seed_softmax_rows() -> None:
    p = softmax(np.array([[-1, 0.5, 2], [-1, 0.5, 3]], dtype=np.float64), axis=1)
    np.testing.assert_allclose(
        np.round(p, 4), [[0.0391, 0.1753, 0.7856], [0.0166, 0.0746, 0.9088]], rtol=0, atol=0
    )


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_axis_is_respected(axis: int) -> None:
    x = np.random.default_rng(0).normal(size=(2, 3, 4))
    p, lp = softmax_and_log_softmax(x, axis=axis)
    np.testing.assert_allclose(p.sum(axis=axis), 1.0, atol=1e-15)
    np.testing.assert_allclose(p, softmax(x, axis=axis), rtol=1e-15)
    np.testing.assert_allclose(lp, log_softmax(x, axis=axis), rtol=1e-15)


def test_no_overflow_for_extreme_logits() -> None:
    x = np.array([[1e308, -1e307, 0.0]])
    p, lp = softmax_and_log_softmax(x, axis=1)
    assert p.tolist() == [[1.0, 0.0, 0.0]]
    assert lp.tolist() == [[0.0, -1.1e308, -1e308]]


@pytest.mark.parametrize("shape", [(20, 7), (300, 3), (4, 6, 3)])
def test_every_endpoint_shares_one_softmax_kernel(shape: tuple[int, ...]) -> None:
    """/v1/softmax, cross-entropy and the focal loss give bit-identical softmax: one kernel, and the
    plain functions above stay its oracle. (Cross-entropy of 64 numbers or fewer takes the small path,
    in Python floats, equal to rounding: tests/unit/test_small_inputs.py.)"""
    from service.core import cross_entropy, tempered_softmax
    from service.core.focal import focal_loss

    x = np.random.default_rng(sum(shape)).normal(size=shape) * 5
    target = np.zeros(shape[:1] + shape[2:], dtype=np.int64)
    probabilities, log_probabilities = tempered_softmax(x)
    general = cross_entropy(x, target, outputs=["softmax", "log_softmax"])
    focal = focal_loss(x, target, outputs=["probabilities"])
    np.testing.assert_array_equal(probabilities, general.softmax)
    np.testing.assert_array_equal(log_probabilities, general.log_softmax)
    np.testing.assert_array_equal(probabilities, focal.probabilities)
    want, want_log = softmax_and_log_softmax(x, axis=1)
    np.testing.assert_allclose(probabilities, want, rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(log_probabilities, want_log, rtol=1e-13)
