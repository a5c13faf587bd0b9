"""The request fields and response parts of sample weights and the metrics, shared by /v1/cross-entropy
and /v1/binary-cross-entropy (``service.api.schemas``); what each metric holds is in
``service.core.vocabulary``. As there, bounds are checked by the core and only stated here."""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

from service.core.vocabulary import (
    CROSS_ENTROPY_METRICS,
    DEFAULT_CALIBRATION_BINS,
    DEFAULT_THRESHOLD,
    DEFAULT_TOP_K,
    MAX_CALIBRATION_BINS,
)

__all__ = [
    "BINARY_SAMPLE_WEIGHT",
    "SAMPLE_WEIGHT",
    "CalibrationResult",
    "calibration_bins_field",
    "calibration_result_field",
    "threshold_field",
    "top_k_field",
]

SAMPLE_WEIGHT: Final = (
    "One non-negative weight v_i per sample (per element for K-dimensional input; one number for "
    "unbatched input): the input's shape "
    "without the class dimension. The loss is sum_i v_i l_i ('sum') and, for 'mean', that divided by "
    "sum_i v_i w[t_i] over non-ignored targets (class weights w, ones when absent; sum_i v_i for soft "
    "targets): scikit-learn's convention, where sample and class weights multiply, not Keras's "
    "divide-by-N. `losses` are not multiplied by it; `grad` is that of the weighted loss; the metrics "
    "are weighted by it (class weights are not)."
)
BINARY_SAMPLE_WEIGHT: Final = (
    "One non-negative weight v_n per sample, shape (N) (the input's first dimension; a scalar for a "
    "scalar input), applied to each of the sample's labels: 'sum' is sum v_n l_nj and 'mean' divides it "
    "by the total weight of all elements, L * sum_n v_n (scikit-learn's convention; `weight` multiplies "
    "the losses as PyTorch's and stays out of the denominator). `losses` are not multiplied by it; `grad` "
    "is that of the weighted loss; the metrics are weighted by it."
)


def top_k_field() -> Any:
    return Field(
        default=DEFAULT_TOP_K,
        json_schema_extra={"minimum": 1},
        description="k of `top_k_accuracy` (k >= C counts every sample).",
    )


def calibration_bins_field() -> Any:
    return Field(
        default=DEFAULT_CALIBRATION_BINS,
        json_schema_extra={"minimum": 1, "maximum": MAX_CALIBRATION_BINS},
        description="B, the equal-width bins of `calibration` (torchmetrics' n_bins, default 15).",
    )


def threshold_field() -> Any:
    return Field(
        default=DEFAULT_THRESHOLD,
        json_schema_extra={"minimum": 0, "maximum": 1},
        description="`accuracy` predicts 1 where the probability is above it (torchmetrics' BinaryAccuracy).",
    )


class CalibrationResult(BaseModel):
    """Expected calibration error and the reliability diagram: ``bins + 1`` entries per list."""

    model_config = ConfigDict(extra="forbid")

    ece: float | None = Field(description="sum_b |correct_weight_b - confidence_sum_b| / sum_b weight_b.")
    bins: int = Field(description="B: edges k/B, k = 0..B; the last entry holds confidences of exactly 1.")
    edges: list[float] = Field(description="The B + 1 bin edges k/B.")
    count: list[int] = Field(description="Samples per bin.")
    weight: list[float] = Field(description="Their total sample weight.")
    confidence_sum: list[float] = Field(description="sum of weight * top-1 confidence.")
    correct_weight: list[float] = Field(description="sum of weight over correct top-1 predictions.")
    confidence: list[float | None] = Field(description="Mean confidence (null for an empty bin).")
    accuracy: list[float | None] = Field(description="Accuracy (null for an empty bin).")


def calibration_result_field() -> Any:
    return Field(default=None, description=CROSS_ENTROPY_METRICS["calibration"])
