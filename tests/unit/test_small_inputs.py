"""The small-input path (plain Python floats) gives what the general NumPy path gives.

In float64 both paths agree to rounding. In float32 the small path computes in double and rounds each
result once, so it is the closer of the two to the exact value: they agree within the tolerance of the
golden cases for float32 (rtol 1e-5, atol 1e-6).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import service.core.multiclass as multiclass
import service.core.small as module
from service.core import (
    ComputeDtype,
    CrossEntropyOutput,
    CrossEntropyResult,
    InvalidInputError,
    cross_entropy,
)
from service.core.vocabulary import CROSS_ENTROPY_OUTPUTS

#: Every output the core knows: a new one is compared between the two paths without editing this file.
EVERY: list[CrossEntropyOutput] = list(CROSS_ENTROPY_OUTPUTS)  # type: ignore[arg-type]


def _general(*args: Any, **kwargs: Any) -> CrossEntropyResult:
    original = module.SMALL_INPUT_LIMIT
    module.SMALL_INPUT_LIMIT = 0  # type: ignore[misc]
    try:
        return cross_entropy(*args, **kwargs)
    finally:
        module.SMALL_INPUT_LIMIT = original  # type: ignore[misc]


#: (rtol, atol) by dtype.
TOLERANCES = {"float64": (1e-12, 1e-15), "float32": (1e-5, 1e-6)}


@st.composite
def small_problems(draw: st.DrawFn) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], dict[str, Any]]:
    unbatched = draw(st.booleans())
    classes = draw(st.integers(1, 8))
    shape = (classes,) if unbatched else (draw(st.integers(1, 8)), classes)
    dtype = draw(st.sampled_from(["float64", "float32"]))
    # float32 also meets logits that overflow it (refused) or its spread check (the general path's).
    huge = st.floats(-1e300, 1e300) if dtype == "float64" else st.floats(-4e38, 4e38) | st.floats(-1e38, 1e38)
    x = draw(hnp.arrays(np.float64, shape, elements=huge | st.floats(-30, 30)))
    ignore = draw(st.sampled_from([-100, 0, 2]))
    target_values = st.integers(0, classes - 1) | st.just(ignore)
    target = draw(hnp.arrays(np.int64, shape[:-1], elements=target_values))
    options: dict[str, Any] = {
        "reduction": draw(st.sampled_from(["mean", "sum", "none"])),
        "label_smoothing": draw(st.sampled_from([0.0, 0.1, 1.0])),
        "outputs": EVERY,
        "dtype": dtype,
    }
    if ignore != -100:
        options["ignore_index"] = ignore
    if draw(st.booleans()):
        # Subnormal and tiny negative weights too (float32 rounds -1e-50 to -0.0).
        weights = st.floats(0, 5) | st.floats(0, 1e-38) | st.floats(-1e-40, -1e-60)
        options["weight"] = draw(hnp.arrays(np.float64, (classes,), elements=weights))
    return x, target, options


@settings(max_examples=400)
@given(small_problems())
def test_small_path_equals_general_path(
    problem: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], dict[str, Any]],
) -> None:
    x, target, options = problem
    refused: InvalidInputError | None = None
    try:
        want = _general(x, target, **options)
    except InvalidInputError as error:
        refused = error
    if refused is not None:
        with pytest.raises(InvalidInputError) as caught:
            cross_entropy(x, target, **options)
        assert caught.value.issues == refused.issues
        return
    got = cross_entropy(x, target, **options)
    rtol, atol = TOLERANCES[options["dtype"]]
    assert got.count == want.count
    if want.loss is None:
        assert got.loss is None
    else:
        assert got.loss is not None
        assert type(got.loss) is type(want.loss)
        # A loss near 0 is log(1 + tiny) in both paths: they agree to rounding, about 1e-16 absolute.
        np.testing.assert_allclose(got.loss, want.loss, rtol=rtol, atol=atol)
    for name in EVERY:
        value, expected = getattr(got, name), getattr(want, name)
        assert value.shape == expected.shape, name
        assert value.dtype == expected.dtype, name
        np.testing.assert_allclose(value, expected, rtol=rtol, atol=atol, err_msg=name)


def test_the_seed_takes_the_small_path(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    original = module.small_logits

    def counting(*args: Any) -> CrossEntropyResult | None:
        result = original(*args)
        calls.append(result is not None)
        return result

    monkeypatch.setattr(module, "small_logits", counting)
    result = cross_entropy(np.array([[-1, 0.5, 2], [-1, 0.5, 3]], dtype=np.float64), np.array([1, 2]))
    assert calls == [True]
    assert result.loss is not None and round(float(result.loss), 4) == 0.9185


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_seed_takes_the_small_path_in_either_dtype(
    monkeypatch: pytest.MonkeyPatch, dtype: ComputeDtype
) -> None:
    # The general path would fail at its first step.
    monkeypatch.setattr(multiclass, "prepare_class_scores", None)
    result = cross_entropy(
        np.array([[-1, 0.5, 2], [-1, 0.5, 3]]),
        np.array([1, 2]),
        dtype=dtype,
        outputs=EVERY,
    )
    assert result.loss is not None and result.loss.dtype == np.dtype(dtype)
    assert round(float(result.loss), 4) == 0.9185
    assert result.softmax is not None and result.softmax.dtype == np.dtype(dtype)


def test_a_subnormal_float32_weight_gets_float32_arithmetic() -> None:
    weight = np.array([1.4e-45, 1.4e-45])  # the smallest float32 subnormal
    x, target = np.array([0.0, 0.0]), np.array(0)
    small = cross_entropy(x, target, weight=weight, dtype="float32")
    general = _general(x, target, weight=weight, dtype="float32")
    # The weighted mean is the loss itself, log 2, but float32's w * log 2 rounds to w: 1, in either
    # path, whatever the input's size (PyTorch's float32 arithmetic gives the same).
    assert small.loss == general.loss == 1.0


def test_a_tiny_negative_weight_is_refused_in_float32_too() -> None:
    weight = np.array([1.0, -1e-50, 1.0])
    x, target = np.array([[-1, 0.5, 2], [-1, 0.5, 3]]), np.array([1, 2])
    with pytest.raises(InvalidInputError) as small:
        cross_entropy(x, target, weight=weight, dtype="float32")
    with pytest.raises(InvalidInputError) as general:
        _general(x, target, weight=weight, dtype="float32")
    assert small.value.issues == general.value.issues
