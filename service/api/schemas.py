"""The contract: pydantic models of every request and response body (their examples: ``examples.py``).

Request models validate strictly (``true`` is not 1, ``"2"`` is not a number, unknown fields are
refused) and hold NumPy arrays once validated (see ``service.api.arrays``). Response models document
what the handlers send; the handlers serialise straight from NumPy with orjson, and the API tests
check every response against these models.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal, Self

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import WithJsonSchema
from pydantic_core import PydanticCustomError
from typing_extensions import TypeAliasType

from service.api import metric_fields as mf
from service.api.arrays import (
    FloatOrTensor,
    FloatTensor,
    IndexTensor,
    NullableNumberTensor,
    NumberTensor,
    TargetTensor,
)
from service.api.request_model import RequestModel, known_keys
from service.core import (
    DEFAULT_BINARY_OUTPUTS,
    DEFAULT_EPSILON,
    DEFAULT_IGNORE_INDEX,
    DEFAULT_OUTPUTS,
    ComputeDtype,
    Reduction,
)
from service.core.vocabulary import (
    BINARY_METRICS,
    BINARY_OUTPUTS,
    CROSS_ENTROPY_METRICS,
    CROSS_ENTROPY_OUTPUTS,
    EPSILON_BOUNDS,
    EPSILON_SMALLEST,
    LABEL_SMOOTHING_BOUNDS,
    BinaryRequestOutput,
    CrossEntropyRequestOutput,
)

__all__ = [
    "STRICT",
    "BinaryCrossEntropyRequest",
    "BinaryCrossEntropyResponse",
    "CrossEntropyRequest",
    "CrossEntropyResponse",
    "DivergenceRequest",
    "DivergenceResponse",
    "ProblemDetail",
    "ProblemItem",
    "RequestModel",
    "SoftmaxRequest",
    "SoftmaxResponse",
    "known_keys",
]

Dtype = ComputeDtype
#: Named in the document, with member names generators use (not `VALUE_1` for "2").
LogarithmBase = TypeAliasType(
    "LogarithmBase",
    Annotated[
        Literal["e", "2", "10"],
        WithJsonSchema({"type": "string", "enum": ["e", "2", "10"], "x-enum-varnames": ["E", "TWO", "TEN"]}),
    ],
)
_CE = CROSS_ENTROPY_OUTPUTS
_BCE = BINARY_OUTPUTS

# The options' bounds are checked once, by the core (one message and error type for /v1, /v2 and
# direct callers); the schema only states them.
_SMOOTHING_SCHEMA: Final[dict[str, Any]] = {"minimum": LABEL_SMOOTHING_BOUNDS[0]}
_SMOOTHING_SCHEMA["maximum"] = LABEL_SMOOTHING_BOUNDS[1]
# epsilon's lower bound is the smallest normal number of the dtype: float64's here, the loosest
# (float32's is 1.1754943508222875e-38, as the description says).
_EPSILON_SCHEMA: Final[dict[str, Any]] = {"minimum": EPSILON_SMALLEST["float64"]}
_EPSILON_SCHEMA["exclusiveMaximum"] = EPSILON_BOUNDS[1]

#: Every request model's configuration: strict types, no unknown fields, no NaN or Infinity.
STRICT = ConfigDict(
    strict=True,
    extra="forbid",
    arbitrary_types_allowed=True,
    allow_inf_nan=False,
    populate_by_name=False,
)


def _one_input_schema(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """Say in JSON Schema what the validators enforce: exactly one input array, and the target under
    exactly one of its two names."""
    inputs = model.input_names()  # type: ignore[attr-defined]
    properties = schema["properties"]
    properties["labels"] = {**properties["target"], "description": "Alias of `target`."}
    schema["required"] = [name for name in schema.get("required", []) if name != "target"]
    schema["allOf"] = [
        {"oneOf": [{"required": [name], "properties": {name: {"not": {"type": "null"}}}} for name in inputs]},
        {"oneOf": [{"required": ["target"]}, {"required": ["labels"]}]},
    ]


class _OneInputRequest(RequestModel):
    """A loss request: exactly one of the fields ``input_names()`` names, and a ``target`` that may
    also be sent as ``labels`` (sending both leaves ``labels`` an unknown field, which
    ``service.api.errors`` words as the conflict it is)."""

    model_config = ConfigDict(**STRICT, json_schema_extra=_one_input_schema)

    @staticmethod
    def input_names() -> tuple[str, ...]:
        raise NotImplementedError

    @model_validator(mode="after")
    def _exactly_one_input(self) -> Self:
        given = [name for name in self.input_names() if getattr(self, name) is not None]
        if len(given) != 1:
            raise PydanticCustomError(
                "input_choice",
                "exactly one of {names} is required (found: {found})",
                {"names": ", ".join(self.input_names()), "found": ", ".join(given) or "none"},
            )
        return self

    def input_kind(self) -> str:
        """The one input field that was sent."""
        return next(name for name in self.input_names() if getattr(self, name) is not None)


class CrossEntropyRequest(_OneInputRequest):
    """Multi-class cross-entropy (``nn.CrossEntropyLoss`` / ``nn.NLLLoss``): exactly one of ``logits``,
    ``probabilities`` or ``log_probabilities``, and ``target``."""

    logits: FloatTensor | None = Field(
        default=None,
        description="Raw scores, any real values: shape (C), (N, C) or (N, C, d1, ..., dk).",
    )
    probabilities: FloatTensor | None = Field(
        default=None,
        description=(
            "Predicted class probabilities in [0, 1], same shapes as logits; each distribution sums "
            "to 1 within 1e-3 (no renormalisation). The loss uses log(clip(p, epsilon, 1))."
        ),
    )
    log_probabilities: FloatTensor | None = Field(
        default=None,
        description="Log-probabilities (<= 0, exp sums to 1 within 1e-3), as nn.NLLLoss takes.",
    )
    target: TargetTensor = Field(
        validation_alias=AliasChoices("target", "labels"),
        description=(
            "True classes (alias: labels). Either integer class indices of the input's shape without "
            "the class dimension (one integer for unbatched input), or class probabilities of the "
            "input's own shape (soft targets, each distribution summing to 1 within 1e-3)."
        ),
    )
    weight: FloatTensor | None = Field(
        default=None,
        description=(
            "C non-negative class weights. The weighted mean divides by the sum of the targets' "
            "weights, as PyTorch."
        ),
    )
    ignore_index: int | None = Field(
        default=None,
        description=(
            f"Index targets equal to it are ignored (default {DEFAULT_IGNORE_INDEX}); "
            "not allowed with soft targets."
        ),
        json_schema_extra={"default": DEFAULT_IGNORE_INDEX},
    )
    reduction: Reduction = Field(default="mean", description="How `loss` is reduced.")
    label_smoothing: float = Field(
        default=0.0,
        json_schema_extra=_SMOOTHING_SCHEMA,
        description="Label smoothing s in [0, 1], as PyTorch.",
    )
    epsilon: float = Field(
        default=DEFAULT_EPSILON,
        json_schema_extra=_EPSILON_SCHEMA,
        description="Clip for probability inputs (scikit-learn's default: float64 epsilon).",
    )
    dtype: Dtype = Field(default="float64", description="Precision of the computation.")
    outputs: list[CrossEntropyRequestOutput] = Field(
        default_factory=lambda: list[CrossEntropyRequestOutput](DEFAULT_OUTPUTS),
        max_length=len(CROSS_ENTROPY_OUTPUTS) + len(CROSS_ENTROPY_METRICS),
        description="Which arrays and metrics to return besides `loss` and `count`.",
    )
    sample_weight: FloatOrTensor | None = Field(default=None, description=mf.SAMPLE_WEIGHT)
    top_k: int = mf.top_k_field()
    calibration_bins: int = mf.calibration_bins_field()

    @staticmethod
    def input_names() -> tuple[str, ...]:
        return ("logits", "probabilities", "log_probabilities")


class CrossEntropyResponse(BaseModel):
    """The loss and the arrays asked for in `outputs` (absent when not asked for)."""

    model_config = ConfigDict(extra="forbid")

    loss: float | None = Field(
        description=(
            "The reduced loss; null for reduction 'none', and where PyTorch gives NaN (every target "
            "ignored, or the targets' weights summing to 0, under 'mean')."
        )
    )
    count: int = Field(
        description="Non-ignored targets (elements for K-dimensional input; all elements for soft)."
    )
    losses: float | NumberTensor | None = Field(default=None, description=_CE["losses"].description)
    softmax: NumberTensor | None = Field(default=None, description=_CE["softmax"].description)
    log_softmax: NumberTensor | None = Field(default=None, description=_CE["log_softmax"].description)
    grad: NumberTensor | None = Field(default=None, description=_CE["grad"].description)
    predictions: int | IndexTensor | None = Field(default=None, description=_CE["predictions"].description)
    target_probability: float | NullableNumberTensor | None = Field(
        default=None, description=_CE["target_probability"].description
    )
    accuracy: float | None = Field(default=None, description=CROSS_ENTROPY_METRICS["accuracy"])
    top_k_accuracy: float | None = Field(default=None, description=CROSS_ENTROPY_METRICS["top_k_accuracy"])
    perplexity: float | None = Field(default=None, description=CROSS_ENTROPY_METRICS["perplexity"])
    entropy: float | NumberTensor | None = Field(default=None, description=CROSS_ENTROPY_METRICS["entropy"])
    brier_score: float | None = Field(default=None, description=CROSS_ENTROPY_METRICS["brier_score"])
    calibration: mf.CalibrationResult | None = mf.calibration_result_field()


class BinaryCrossEntropyRequest(_OneInputRequest):
    """Binary cross-entropy (``nn.BCEWithLogitsLoss`` / ``nn.BCELoss``): exactly one of ``logits`` or
    ``probabilities``, and ``target`` of the same shape."""

    logits: FloatOrTensor | None = Field(
        default=None, description="Raw scores of any shape: (N) binary, (N, L) multi-label, ..."
    )
    probabilities: FloatOrTensor | None = Field(
        default=None,
        description="Probabilities in [0, 1] of any shape; clipped to [epsilon, 1 - epsilon].",
    )
    target: FloatOrTensor = Field(
        validation_alias=AliasChoices("target", "labels"),
        description="Targets in [0, 1] (alias: labels), the input's shape; soft labels allowed.",
    )
    weight: FloatOrTensor | None = Field(
        default=None,
        description=(
            "Non-negative weights broadcastable to the input, e.g. (N, 1) per sample or (L) per label."
        ),
    )
    pos_weight: FloatOrTensor | None = Field(
        default=None,
        description=(
            "Non-negative weight of positive examples, broadcast along the last dimension; logits only."
        ),
    )
    reduction: Reduction = Field(default="mean", description="'mean' averages over every element.")
    label_smoothing: float = Field(
        default=0.0,
        json_schema_extra=_SMOOTHING_SCHEMA,
        description="Keras's smoothing: y * (1 - s) + 0.5 * s.",
    )
    epsilon: float = Field(
        default=DEFAULT_EPSILON,
        json_schema_extra=_EPSILON_SCHEMA,
        description="Clip for probabilities: [epsilon, 1 - epsilon].",
    )
    dtype: Dtype = Field(default="float64", description="Precision of the computation.")
    outputs: list[BinaryRequestOutput] = Field(
        default_factory=lambda: list[BinaryRequestOutput](DEFAULT_BINARY_OUTPUTS),
        max_length=len(BINARY_OUTPUTS) + len(BINARY_METRICS),
        description="Which arrays and metrics to return besides `loss` and `count`.",
    )
    sample_weight: FloatOrTensor | None = Field(default=None, description=mf.BINARY_SAMPLE_WEIGHT)
    threshold: float = mf.threshold_field()

    @staticmethod
    def input_names() -> tuple[str, ...]:
        return ("logits", "probabilities")


class BinaryCrossEntropyResponse(BaseModel):
    """The loss and the arrays asked for in `outputs`, each of the input's shape."""

    model_config = ConfigDict(extra="forbid")

    loss: float | None = Field(description="The reduced loss; null for reduction 'none'.")
    count: int = Field(description="Number of elements.")
    losses: float | NumberTensor | None = Field(default=None, description=_BCE["losses"].description)
    sigmoid: float | NumberTensor | None = Field(default=None, description=_BCE["sigmoid"].description)
    grad: float | NumberTensor | None = Field(default=None, description=_BCE["grad"].description)
    predictions: int | IndexTensor | None = Field(default=None, description=_BCE["predictions"].description)
    accuracy: float | None = Field(default=None, description=BINARY_METRICS["accuracy"])
    brier_score: float | None = Field(default=None, description=BINARY_METRICS["brier_score"])


class SoftmaxRequest(RequestModel):
    """Softmax and log-softmax of ``logits / temperature`` along ``dim``."""

    model_config = STRICT

    logits: FloatTensor = Field(description="Raw scores, any shape with at least one dimension.")
    temperature: float = Field(
        default=1.0,
        json_schema_extra={"exclusiveMinimum": 0.0},
        description="T > 0: below 1 sharpens towards the one-hot argmax, above 1 flattens towards uniform.",
    )
    dim: int | None = Field(
        default=None,
        description=(
            "The dimension that sums to 1; negative counts from the end. Default: 1 if ndim >= 2, else 0."
        ),
    )
    dtype: Dtype = Field(default="float64", description="Precision of the computation.")


class SoftmaxResponse(BaseModel):
    """Both arrays have the input's shape."""

    model_config = ConfigDict(extra="forbid")

    softmax: NumberTensor
    log_softmax: NumberTensor


class DivergenceRequest(RequestModel):
    """Two distributions over the same classes: ``p`` the truth, ``q`` the prediction."""

    model_config = STRICT

    p: FloatTensor = Field(
        description="True distribution(s), (C) or (N, C): values in [0, 1], each summing to 1 within 1e-3."
    )
    q: FloatTensor = Field(description="Predicted distribution(s), the same shape and constraints.")
    base: LogarithmBase = Field(default="e", description="Logarithm base: 'e' (nats), '2' (bits) or '10'.")
    reduction: Reduction = Field(default="mean", description="Over the N distributions.")
    epsilon: float = Field(
        default=DEFAULT_EPSILON,
        json_schema_extra=_EPSILON_SCHEMA,
        description="q is clipped to [epsilon, 1].",
    )


class DivergenceResponse(BaseModel):
    """Reduced values (null for reduction 'none') and one value per distribution."""

    model_config = ConfigDict(extra="forbid")

    cross_entropy: float | None = Field(description="H(p, q) = -sum p log q.")
    entropy: float | None = Field(description="H(p) = -sum p log p.")
    kl_divergence: float | None = Field(description="KL(p || q) = H(p, q) - H(p) >= 0.")
    cross_entropies: float | NumberTensor
    entropies: float | NumberTensor
    kl_divergences: float | NumberTensor


class ProblemItem(BaseModel):
    """One field-level problem: where (path of field names and indices), what, and its kind."""

    loc: list[str | int]
    msg: str
    type: str


class ProblemDetail(BaseModel):
    """RFC 9457 problem details (``application/problem+json``)."""

    type: str = Field(description="A URI reference naming the kind of problem.")
    title: str = Field(description="The HTTP status phrase.")
    status: int
    detail: str = Field(description="What went wrong, naming the field and the position.")
    errors: list[ProblemItem] | None = Field(
        default=None, description="Every problem found in the request content (422 only)."
    )
    request_id: str = Field(description="The request's id, as in the X-Request-ID response header.")
