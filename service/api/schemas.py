"""The contract: pydantic models of every request and response body, with the seed's examples.

Request models validate strictly (``true`` is not 1, ``"2"`` is not a number, unknown fields are
refused) and hold NumPy arrays once validated (see ``service.api.arrays``). Response models document
what the handlers send; the handlers serialise straight from NumPy with orjson, and the API tests
check every response against these models.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from service.api.arrays import (
    FloatTensor,
    IndexTensor,
    NullableNumberTensor,
    NumberTensor,
    TargetTensor,
)
from service.core import DEFAULT_EPSILON, DEFAULT_IGNORE_INDEX, DEFAULT_OUTPUTS

__all__ = [
    "CROSS_ENTROPY_EXAMPLES",
    "CrossEntropyRequest",
    "CrossEntropyResponse",
    "ProblemDetail",
    "ProblemItem",
]

Reduction = Literal["mean", "sum", "none"]
Dtype = Literal["float64", "float32"]
CrossEntropyOutputName = Literal[
    "losses", "softmax", "log_softmax", "grad", "predictions", "target_probability"
]

_STRICT = ConfigDict(
    strict=True,
    extra="forbid",
    arbitrary_types_allowed=True,
    allow_inf_nan=False,
    populate_by_name=False,
)


class CrossEntropyRequest(BaseModel):
    """Multi-class cross-entropy (``nn.CrossEntropyLoss`` / ``nn.NLLLoss``): exactly one of ``logits``,
    ``probabilities`` or ``log_probabilities``, and ``target``."""

    model_config = _STRICT

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
        default=0.0, ge=0.0, le=1.0, description="Label smoothing s in [0, 1], as PyTorch."
    )
    epsilon: float = Field(
        default=DEFAULT_EPSILON,
        gt=0.0,
        lt=0.5,
        description="Clip for probability inputs (scikit-learn's default: float64 epsilon).",
    )
    dtype: Dtype = Field(default="float64", description="Precision of the computation.")
    outputs: list[CrossEntropyOutputName] = Field(
        default_factory=lambda: list(DEFAULT_OUTPUTS),
        max_length=6,
        description="Which arrays to return besides `loss` and `count`.",
    )

    @model_validator(mode="before")
    @classmethod
    def _one_target_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and "target" in data and "labels" in data:
            raise PydanticCustomError(
                "alias_conflict",
                "send the target as either `target` or its alias `labels`, not both",
            )
        return data

    @model_validator(mode="after")
    def _exactly_one_input(self) -> Self:
        given = [name for name in self.input_names() if getattr(self, name) is not None]
        if len(given) != 1:
            found = ", ".join(given) if given else "none"
            raise PydanticCustomError(
                "input_choice",
                "exactly one of logits, probabilities, log_probabilities is required (found: {found})",
                {"found": found},
            )
        return self

    @staticmethod
    def input_names() -> tuple[Literal["logits", "probabilities", "log_probabilities"], ...]:
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
    losses: float | NumberTensor | None = Field(
        default=None,
        description="Unreduced losses, shape of the input without the class dimension; 0 where ignored.",
    )
    softmax: NumberTensor | None = Field(
        default=None,
        description=(
            "The class distribution the loss used: softmax(logits), the given probabilities, or "
            "exp(log_probabilities)."
        ),
    )
    log_softmax: NumberTensor | None = Field(
        default=None, description="Its log (of the clipped probabilities for probability input)."
    )
    grad: NumberTensor | None = Field(
        default=None,
        description="d loss / d input under the requested reduction ('none': of the sum).",
    )
    predictions: int | IndexTensor | None = Field(
        default=None, description="Argmax class (first on ties), shape of the input without C."
    )
    target_probability: float | NullableNumberTensor | None = Field(
        default=None,
        description="Probability given to the target class; null where ignored (index targets).",
    )


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


SEED_LOGITS: dict[str, Any] = {
    "logits": [[-1, 0.5, 2], [-1, 0.5, 3]],
    "target": [1, 2],
}
SEED_PROBABILITIES: dict[str, Any] = {
    "probabilities": [[0.1058, 0.1043, 0.0988, 0.1066, 0.0875, 0.0881, 0.1027, 0.1046, 0.1057, 0.0958]],
    "target": [4],
    "outputs": ["losses", "predictions", "target_probability"],
}

CROSS_ENTROPY_EXAMPLES: dict[str, dict[str, Any]] = {
    "seed_logits": {
        "summary": "The article's 3-class example (cat, dog, horse)",
        "description": (
            "Logits [[-1, 0.5, 2], [-1, 0.5, 3]] with targets [1, 2] give loss 0.9185, per-sample "
            "losses 1.7413 and 0.0957, softmax rows [0.0391, 0.1753, 0.7856] and "
            "[0.0166, 0.0746, 0.9088], the same as nn.CrossEntropyLoss."
        ),
        "value": SEED_LOGITS,
    },
    "seed_fashion_mnist": {
        "summary": "The article's Fashion-MNIST prediction (probabilities)",
        "description": (
            "A half-trained network's probabilities for an image of class 4 (Coat): "
            "loss -log(0.0875) = 2.4361. The printed probabilities sum to 0.9999 and are accepted "
            "as they are, without renormalisation."
        ),
        "value": SEED_PROBABILITIES,
    },
    "soft_targets_smoothing": {
        "summary": "Soft targets with label smoothing, every output",
        "value": {
            "logits": [[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]],
            "target": [[0.9, 0.1, 0.0], [0.0, 0.2, 0.8]],
            "label_smoothing": 0.1,
            "outputs": ["losses", "softmax", "log_softmax", "grad", "predictions"],
        },
    },
    "weights_and_ignore_index": {
        "summary": "Class weights, an ignored target, summed",
        "value": {
            "logits": [[1.0, 2.0, 0.5], [0.3, 0.1, 2.2], [1.5, -0.5, 0.0]],
            "target": [1, -100, 0],
            "weight": [1.0, 2.0, 0.5],
            "reduction": "sum",
            "outputs": ["losses", "grad", "target_probability"],
        },
    },
}
