"""POST /v1/focal-loss: its request and response models, and bytes -> ``FocalLossRequest`` -> core -> JSON."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body
from pydantic import BaseModel, ConfigDict, Field

from service.api.arrays import FloatOrTensor, NumberTensor, TargetTensor
from service.api.payloads import response_body
from service.api.schemas import STRICT
from service.core import DEFAULT_IGNORE_INDEX, ComputeDtype, Reduction
from service.core.focal import DEFAULT_FOCAL_OUTPUTS, DEFAULT_GAMMA, focal_loss
from service.core.vocabulary import FOCAL_OUTPUTS, FocalOutput

__all__ = ["DESCRIPTION", "EXAMPLES", "FocalLossRequest", "FocalLossResponse", "focal_loss_endpoint"]

DESCRIPTION = """\
Focal loss (Lin et al., 2017): `l = -alpha_t * (1 - p_t)^gamma * log(p_t)`, cross-entropy scaled down
where the model already gives the true class a high probability `p_t`; `gamma = 0` is cross-entropy.

* A `target` of the logits' own shape (values in [0, 1]) takes the sigmoid form, exactly as
  `torchvision.ops.sigmoid_focal_loss`: `p = sigmoid(x)`, `p_t = p y + (1 - p)(1 - y)`,
  `l = alpha_t (1 - p_t)^gamma bce(x, y)`, with `alpha_t = alpha y + (1 - alpha)(1 - y)` for one number
  `alpha` in [0, 1] (torchvision's default is 0.25; null: no weighting, torchvision's -1).
* A `target` of class indices (the logits' shape without the class dimension, as /v1/cross-entropy)
  takes the softmax form: `p_t = softmax(x)[t]`, `alpha_t = alpha[t]` for C class weights `alpha`;
  targets equal to `ignore_index` count 0.

`mean` averages over the elements (the non-ignored targets); `grad` is d loss / d logits.
"""

EXAMPLES: dict[str, dict[str, Any]] = {
    "sigmoid": {
        "summary": "Multi-label logits, torchvision's alpha and gamma",
        "value": {
            "logits": [[1.2, -0.8, 0.3], [-1.5, 2.0, 0.0]],
            "target": [[1, 0, 1], [0, 1, 0]],
            "alpha": 0.25,
            "outputs": ["losses", "probabilities"],
        },
    },
    "softmax": {
        "summary": "The article's 3-class logits, with class weights",
        "value": {
            "logits": [[-1, 0.5, 2], [-1, 0.5, 3]],
            "target": [1, 2],
            "alpha": [1.0, 2.0, 0.5],
            "outputs": ["losses", "grad"],
        },
    },
}


class FocalLossRequest(BaseModel):
    """Focal loss of ``logits`` against ``target``, sigmoid or softmax according to the target's shape."""

    model_config = STRICT

    logits: FloatOrTensor = Field(
        description="Raw scores: any shape (sigmoid), or (C), (N, C), (N, C, d1, ..., dk) (softmax)."
    )
    target: TargetTensor = Field(
        description=(
            "Values in [0, 1] of the logits' shape (sigmoid), or integer class indices of the logits' "
            "shape without the class dimension (softmax)."
        )
    )
    # gamma's bound is the core's to check (one check, one message for every caller); the schema says it.
    gamma: float = Field(
        default=DEFAULT_GAMMA,
        description="The focusing exponent, >= 0; 0 gives cross-entropy.",
        json_schema_extra={"minimum": 0},
    )
    alpha: FloatOrTensor | None = Field(
        default=None,
        description="Sigmoid: the positives' weight, one number in [0, 1]; softmax: C class weights >= 0.",
    )
    ignore_index: int | None = Field(
        default=None,
        description=f"Softmax: class-index targets equal to it are ignored (default {DEFAULT_IGNORE_INDEX}).",
        json_schema_extra={"default": DEFAULT_IGNORE_INDEX},
    )
    reduction: Reduction = Field(default="mean", description="How `loss` is reduced.")
    dtype: ComputeDtype = Field(default="float64", description="Precision of the computation.")
    outputs: list[FocalOutput] = Field(
        default_factory=lambda: list(DEFAULT_FOCAL_OUTPUTS),
        max_length=len(FOCAL_OUTPUTS),
        description="Which arrays to return besides `loss` and `count`.",
    )


class FocalLossResponse(BaseModel):
    """The loss and the arrays asked for in `outputs` (absent when not asked for)."""

    model_config = ConfigDict(extra="forbid")

    loss: float | None = Field(description="The reduced loss; null for reduction 'none' or nothing counted.")
    count: int = Field(description="Elements counted: every element (sigmoid), the non-ignored targets.")
    losses: float | NumberTensor | None = Field(default=None, description=FOCAL_OUTPUTS["losses"].description)
    probabilities: float | NumberTensor | None = Field(
        default=None, description=FOCAL_OUTPUTS["probabilities"].description
    )
    grad: float | NumberTensor | None = Field(default=None, description=FOCAL_OUTPUTS["grad"].description)


def focal_loss_endpoint(body: Annotated[FocalLossRequest, Body(openapi_examples=EXAMPLES)]) -> dict[str, Any]:
    result = focal_loss(
        body.logits,
        body.target,
        gamma=body.gamma,
        alpha=body.alpha,
        ignore_index=body.ignore_index,
        reduction=body.reduction,
        dtype=body.dtype,
        outputs=body.outputs,
    )
    return response_body(result, ("loss", "count"), body.outputs)
