"""The four models served over v2, each the same core function as its /v1 endpoint.

A model is described by its inputs (named after the v1 request fields, with the datatypes each
accepts), its parameters (the v1 options, strictly typed), and its outputs (named after the v1
response fields). ``run`` (``binding.py``) binds a decoded request to a model, checks every name,
datatype and parameter type at once, calls the core, and returns the outputs to send.

Rules that v1 expresses with JSON types and v2 with datatypes:

* Numbers: every numeric input accepts FP32, FP64, INT32 and INT64; BOOL only where a 0/1 value
  makes sense (the binary cross-entropy ``target``).
* ``cross_entropy``'s ``target``: INT32/INT64 are class indices (the input's shape without the
  class dimension), FP32/FP64 class probabilities (the input's shape).
* Precision: ``dtype`` defaults to the input's datatype, ``"float32"`` for FP32 and ``"float64"``
  otherwise (v1's default is always float64: JSON has no float32); float outputs come back in that
  precision (FP32 or FP64), ``count`` and ``predictions`` as INT64.
* Scalars (``loss``, ``count``, the reduced divergences, the losses of one unbatched sample) are
  tensors of shape ``[]``.
* What v1 writes as null is absent in v2: ``loss`` for reduction ``"none"`` and where PyTorch gives
  NaN; the reduced divergences for ``"none"``. ``target_probability`` is -1 at ignored targets (v1:
  null), a value no probability takes, so that no NaN is ever sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, cast

import numpy as np
from numpy.typing import NDArray

from service.api.v2.binding import (
    NUMBERS,
    Call,
    InputSpec,
    ModelSpec,
    OutputSpec,
    ParameterSpec,
    Results,
    run,
)
from service.api.v2.codec import Tensor
from service.core import (
    DEFAULT_BINARY_OUTPUTS,
    DEFAULT_EPSILON,
    DEFAULT_OUTPUTS,
    Base,
    BinaryInputKind,
    BinaryOutput,
    CrossEntropyOutput,
    InputKind,
    InvalidInputError,
    Reduction,
    binary_cross_entropy,
    cross_entropy,
    divergence,
    tempered_softmax,
)
from service.core.vocabulary import BINARY_OUTPUTS, CROSS_ENTROPY_OUTPUTS, OutputInfo

__all__ = [
    "MODELS",
    "VERSIONS",
    "Call",
    "InputSpec",
    "ModelSpec",
    "OutputSpec",
    "ParameterSpec",
    "Results",
    "run",
]

#: Every model has one version; requests may name it (``/versions/1/``) or not.
VERSIONS: Final = ("1",)


def _scalar(value: np.generic | None) -> NDArray[Any] | None:
    return None if value is None else np.asarray(value)


def _count(value: int) -> NDArray[np.int64]:
    return np.asarray(value, dtype=np.int64)


def _scalars(call: Call, loss: np.generic | None, count: int) -> Results:
    """A loss's ``loss`` and ``count``, each made a tensor only when it was asked for (``run`` sends
    only the outputs asked for)."""
    results: Results = {}
    if "loss" in call.outputs:
        results["loss"] = _scalar(loss)
    if "count" in call.outputs:
        results["count"] = _count(count)
    return results


# --- cross_entropy ----------------------------------------------------------------------------

_CE_SCORES: Final = ("logits", "probabilities", "log_probabilities")
_CE_ARRAYS: Final = cast(tuple[CrossEntropyOutput, ...], tuple(CROSS_ENTROPY_OUTPUTS))


def _cross_entropy(call: Call) -> Results:
    kind = call.one_of(_CE_SCORES)
    scores, target = call.inputs[kind], call.inputs["target"]
    _check_target_kind(kind, scores.array, target)
    target_array = target.array.astype(np.int64) if target.datatype == "INT32" else target.array
    result = cross_entropy(
        scores.array,
        target_array,
        input_kind=cast(InputKind, kind),
        weight=call.array("weight"),
        ignore_index=call.integer("ignore_index"),
        reduction=cast(Reduction, call.text("reduction", "mean")),
        label_smoothing=call.number("label_smoothing", 0.0),
        epsilon=call.number("epsilon", DEFAULT_EPSILON),
        dtype=call.dtype(scores),
        outputs=(arrays := [name for name in _CE_ARRAYS if name in call.outputs]),
        sample_weight=call.array("sample_weight"),
        overwrite_scores=True,  # a request's inputs are its own: copies, or views of the body it gave up
    )
    results = _scalars(call, result.loss, result.count)
    results.update((name, getattr(result, name)) for name in arrays)
    target_probability = result.target_probability
    if target_probability is not None:
        ignored = np.isnan(target_probability)
        results["target_probability"] = np.where(
            ignored, target_probability.dtype.type(-1), target_probability
        )
    if result.predictions is not None:
        results["predictions"] = result.predictions.astype(np.int64)
    return results


def _check_target_kind(kind: str, scores: NDArray[Any], target: Tensor) -> None:
    """The datatype says what the target is; its shape must say the same (the core decides by shape)."""
    indices = target.datatype in {"INT32", "INT64"}
    if scores.ndim == 0 or indices != (target.array.ndim == scores.ndim):
        return  # as it should be, or a shape the core explains it does not take
    index_shape = list(scores.shape[:1] + scores.shape[2:]) if scores.ndim > 1 else []
    if indices:
        msg = (
            f"target of datatype {target.datatype} holds class indices, which have the shape of {kind} "
            f"without its class dimension, {index_shape}; send class probabilities (shape "
            f"{list(scores.shape)}) as FP32 or FP64"
        )
    else:
        msg = (
            f"target of datatype {target.datatype} holds class probabilities, which have the shape of "
            f"{kind}, {list(scores.shape)}; send class indices (shape {index_shape}) as INT64 or INT32"
        )
    raise InvalidInputError.single(("target",), msg, "target_kind")


# --- binary_cross_entropy ---------------------------------------------------------------------

_BCE_SCORES: Final = ("logits", "probabilities")
_BCE_ARRAYS: Final = cast(tuple[BinaryOutput, ...], tuple(BINARY_OUTPUTS))


def _binary_cross_entropy(call: Call) -> Results:
    kind = call.one_of(_BCE_SCORES)
    scores = call.inputs[kind]
    result = binary_cross_entropy(
        scores.array,
        call.inputs["target"].array,
        input_kind=cast(BinaryInputKind, kind),
        weight=call.array("weight"),
        pos_weight=call.array("pos_weight"),
        reduction=cast(Reduction, call.text("reduction", "mean")),
        label_smoothing=call.number("label_smoothing", 0.0),
        epsilon=call.number("epsilon", DEFAULT_EPSILON),
        dtype=call.dtype(scores),
        outputs=(arrays := [name for name in _BCE_ARRAYS if name in call.outputs]),
        sample_weight=call.array("sample_weight"),
    )
    results = _scalars(call, result.loss, result.count)
    results.update((name, getattr(result, name)) for name in arrays)
    return results


# --- softmax ----------------------------------------------------------------------------------


def _softmax(call: Call) -> Results:
    logits = call.inputs["logits"]
    probabilities, log_probabilities = tempered_softmax(
        logits.array,
        temperature=call.number("temperature", 1.0),
        dim=call.integer("dim"),
        dtype=call.dtype(logits),
    )
    return {"softmax": probabilities, "log_softmax": log_probabilities}


# --- divergence -------------------------------------------------------------------------------


def _divergence(call: Call) -> Results:
    result = divergence(
        call.inputs["p"].array,
        call.inputs["q"].array,
        base=cast(Base, call.text("base", "e")),
        reduction=cast(Reduction, call.text("reduction", "mean")),
        epsilon=call.number("epsilon", DEFAULT_EPSILON),
    )
    return {
        "cross_entropy": _scalar(result.cross_entropy),
        "entropy": _scalar(result.entropy),
        "kl_divergence": _scalar(result.kl_divergence),
        "cross_entropies": result.cross_entropies,
        "entropies": result.entropies,
        "kl_divergences": result.kl_divergences,
    }


# --- the registry -----------------------------------------------------------------------------

_MATRIX: Final = (-1, -1)
_VECTOR: Final = (-1,)
_SCALAR: Final[tuple[int, ...]] = ()

_REDUCTION = ParameterSpec("reduction", "string")
_LABEL_SMOOTHING = ParameterSpec("label_smoothing", "number")
_EPSILON = ParameterSpec("epsilon", "number")
_DTYPE = ParameterSpec("dtype", "string")
_LOSS_OUTPUTS: Final = (OutputSpec("loss", "FP32", _SCALAR), OutputSpec("count", "INT64", _SCALAR))


def _output_specs(outputs: Mapping[str, OutputInfo]) -> tuple[OutputSpec, ...]:
    """A loss's array outputs as the core names them (float outputs follow the compute precision)."""
    return tuple(
        OutputSpec(name, "INT64" if info.integer else "FP32", _VECTOR if info.shape == "batch" else _MATRIX)
        for name, info in outputs.items()
    )


MODELS: Final[dict[str, ModelSpec]] = {
    "cross_entropy": ModelSpec(
        name="cross_entropy",
        inputs=(
            *(InputSpec(name, NUMBERS, "FP32", _MATRIX) for name in _CE_SCORES),
            InputSpec("target", NUMBERS, "INT64", _VECTOR),
            InputSpec("weight", NUMBERS, "FP32", _VECTOR),
            InputSpec("sample_weight", NUMBERS, "FP32", _VECTOR),
        ),
        choices=(_CE_SCORES, ("target",)),
        aliases=(("labels", "target"),),
        parameters=(
            ParameterSpec("ignore_index", "integer"),
            _REDUCTION,
            _LABEL_SMOOTHING,
            _EPSILON,
            _DTYPE,
        ),
        outputs=(
            *_LOSS_OUTPUTS,
            *_output_specs(CROSS_ENTROPY_OUTPUTS),
        ),
        default_outputs=("loss", "count", *DEFAULT_OUTPUTS),
        compute=_cross_entropy,
    ),
    "binary_cross_entropy": ModelSpec(
        name="binary_cross_entropy",
        inputs=(
            *(InputSpec(name, NUMBERS, "FP32", _MATRIX) for name in _BCE_SCORES),
            InputSpec("target", (*NUMBERS, "BOOL"), "FP32", _MATRIX),
            InputSpec("weight", NUMBERS, "FP32", _VECTOR),
            InputSpec("pos_weight", NUMBERS, "FP32", _VECTOR),
            InputSpec("sample_weight", NUMBERS, "FP32", _VECTOR),
        ),
        choices=(_BCE_SCORES, ("target",)),
        aliases=(("labels", "target"),),
        parameters=(_REDUCTION, _LABEL_SMOOTHING, _EPSILON, _DTYPE),
        outputs=(
            *_LOSS_OUTPUTS,
            *_output_specs(BINARY_OUTPUTS),
        ),
        default_outputs=("loss", "count", *DEFAULT_BINARY_OUTPUTS),
        compute=_binary_cross_entropy,
    ),
    "softmax": ModelSpec(
        name="softmax",
        inputs=(InputSpec("logits", NUMBERS, "FP32", _MATRIX),),
        choices=(("logits",),),
        parameters=(ParameterSpec("temperature", "number"), ParameterSpec("dim", "integer"), _DTYPE),
        outputs=(OutputSpec("softmax", "FP32", _MATRIX), OutputSpec("log_softmax", "FP32", _MATRIX)),
        default_outputs=("softmax", "log_softmax"),
        compute=_softmax,
    ),
    "divergence": ModelSpec(
        name="divergence",
        inputs=(InputSpec("p", NUMBERS, "FP64", _MATRIX), InputSpec("q", NUMBERS, "FP64", _MATRIX)),
        choices=(("p",), ("q",)),
        parameters=(ParameterSpec("base", "string"), _REDUCTION, _EPSILON),
        outputs=(
            OutputSpec("cross_entropy", "FP64", _SCALAR),
            OutputSpec("entropy", "FP64", _SCALAR),
            OutputSpec("kl_divergence", "FP64", _SCALAR),
            OutputSpec("cross_entropies", "FP64", _VECTOR),
            OutputSpec("entropies", "FP64", _VECTOR),
            OutputSpec("kl_divergences", "FP64", _VECTOR),
        ),
        default_outputs=(
            "cross_entropy",
            "entropy",
            "kl_divergence",
            "cross_entropies",
            "entropies",
            "kl_divergences",
        ),
        compute=_divergence,
    ),
}
