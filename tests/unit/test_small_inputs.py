"""The small-input path (plain Python floats) gives what the general NumPy path gives."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import service.core.multiclass as module
from service.core import CrossEntropyOutput, CrossEntropyResult, InvalidInputError, cross_entropy

EVERY: list[CrossEntropyOutput] = [
    "losses",
    "softmax",
    "log_softmax",
    "grad",
    "predictions",
    "target_probability",
]


def _general(*args: Any, **kwargs: Any) -> CrossEntropyResult:
    original = module.SMALL_INPUT_LIMIT
    module.SMALL_INPUT_LIMIT = 0  # type: ignore[misc]
    try:
        return cross_entropy(*args, **kwargs)
    finally:
        module.SMALL_INPUT_LIMIT = original  # type: ignore[misc]


@st.composite
def small_problems(draw: st.DrawFn) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], dict[str, Any]]:
    unbatched = draw(st.booleans())
    classes = draw(st.integers(1, 8))
    shape = (classes,) if unbatched else (draw(st.integers(1, 8)), classes)
    x = draw(hnp.arrays(np.float64, shape, elements=st.floats(-1e300, 1e300) | st.floats(-30, 30)))
    ignore = draw(st.sampled_from([-100, 0, 2]))
    target_values = st.integers(0, classes - 1) | st.just(ignore)
    target = draw(hnp.arrays(np.int64, shape[:-1], elements=target_values))
    options: dict[str, Any] = {
        "reduction": draw(st.sampled_from(["mean", "sum", "none"])),
        "label_smoothing": draw(st.sampled_from([0.0, 0.1, 1.0])),
        "outputs": EVERY,
    }
    if ignore != -100:
        options["ignore_index"] = ignore
    if draw(st.booleans()):
        options["weight"] = draw(hnp.arrays(np.float64, (classes,), elements=st.floats(0, 5)))
    return x, target, options


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
    assert got.count == want.count
    if want.loss is None:
        assert got.loss is None
    else:
        assert got.loss is not None
        # A loss near 0 is log(1 + tiny) in both paths: they agree to rounding, about 1e-16 absolute.
        np.testing.assert_allclose(got.loss, want.loss, rtol=1e-12, atol=1e-15)
    for name in EVERY:
        value, expected = getattr(got, name), getattr(want, name)
        assert value.shape == expected.shape, name
        assert value.dtype == expected.dtype, name
        np.testing.assert_allclose(value, expected, rtol=1e-12, atol=1e-15, err_msg=name)


def test_the_seed_takes_the_small_path(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    original = module._small_logits

    def counting(*args: Any) -> CrossEntropyResult | None:
        result = original(*args)
        calls.append(result is not None)
        return result

    monkeypatch.setattr(module, "_small_logits", counting)
    result = cross_entropy(np.array([[-1, 0.5, 2], [-1, 0.5, 3]], dtype=np.float64), np.array([1, 2]))
    assert calls == [True]
    assert result.loss is not None and round(float(result.loss), 4) == 0.9185
