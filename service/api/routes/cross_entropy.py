"""POST /v1/cross-entropy: bytes -> ``CrossEntropyRequest`` -> core -> JSON."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body

from service.api.examples import CROSS_ENTROPY_EXAMPLES
from service.api.payloads import response_body
from service.api.schemas import CrossEntropyRequest
from service.core import InputKind, cross_entropy
from service.core.vocabulary import CROSS_ENTROPY_METRICS

__all__ = ["DESCRIPTION", "cross_entropy_endpoint"]

DESCRIPTION = """\
Multi-class cross-entropy with softmax, exactly as `torch.nn.functional.cross_entropy`
(`nn.CrossEntropyLoss`) and, for log-probabilities, `nn.NLLLoss`.

With `lp = log_softmax(logits)` along the class dimension (1, or 0 for unbatched input), class weights
`w`, label smoothing `s` and `C` classes, each element's loss is

* index targets: `l_i = (1 - s) * w[t_i] * -lp[i, t_i] + s/C * sum_c w_c * -lp[i, c]`, and 0 where
  `t_i == ignore_index`; `mean` divides the sum by `sum_i w[t_i]` over non-ignored targets;
* soft targets `y`: `l_i = -sum_c w_c * ((1 - s) * y[i, c] + s/C) * lp[i, c]`; `mean` divides by the
  number of elements.

`probabilities` use `lp = log(clip(p, epsilon, 1))` without renormalising. `loss` is null where PyTorch
gives NaN (every target ignored, or the targets' weights summing to 0, under `mean`), and `grad` is then
zeros.

`sample_weight` (one weight `v_i` per element) multiplies each loss in the reduction: `sum` is
`sum_i v_i l_i`, `mean` divides it by `sum_i v_i w[t_i]` over non-ignored targets (`sum_i v_i` for soft
targets): scikit-learn's convention, sample and class weights multiply (Keras divides by N instead).

`outputs` may also name metrics, computed from the same distribution and weighted by `sample_weight`
(class weights do not enter them): `accuracy`, `top_k_accuracy` (`top_k`; equal probabilities ranked
as scikit-learn's `top_k_accuracy_score`: the higher class index first), `perplexity` (exp of the
weighted mean loss), `entropy` (per sample, nats), `brier_score` (scikit-learn's multi-class), and
`calibration` (expected calibration error with `calibration_bins` bins, binned as torchmetrics'
`MulticlassCalibrationError`, with the per-bin sums and means of a reliability diagram). A metric whose
weights sum to 0 is null.

The article's examples: logits `[[-1, 0.5, 2], [-1, 0.5, 3]]` with targets `[1, 2]` give loss 0.9185,
losses 1.7413 and 0.0957; the Fashion-MNIST probabilities with target 4 give 2.4361.
"""


def cross_entropy_endpoint(
    body: Annotated[CrossEntropyRequest, Body(openapi_examples=CROSS_ENTROPY_EXAMPLES)],
) -> dict[str, Any]:
    input_kind: InputKind = body.input_kind()  # type: ignore[assignment]
    result = cross_entropy(
        getattr(body, input_kind),
        body.target,
        input_kind=input_kind,
        weight=body.weight,
        ignore_index=body.ignore_index,
        reduction=body.reduction,
        label_smoothing=body.label_smoothing,
        epsilon=body.epsilon,
        dtype=body.dtype,
        outputs=body.outputs,
        sample_weight=body.sample_weight,
        top_k=body.top_k,
        calibration_bins=body.calibration_bins,
    )
    return response_body(result, ("loss", "count"), body.outputs, nullable=CROSS_ENTROPY_METRICS)
