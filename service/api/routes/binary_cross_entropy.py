"""POST /v1/binary-cross-entropy: bytes -> ``BinaryCrossEntropyRequest`` -> core -> JSON."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body

from service.api.examples import BINARY_CROSS_ENTROPY_EXAMPLES
from service.api.payloads import response_body
from service.api.schemas import BinaryCrossEntropyRequest
from service.core import BinaryInputKind, binary_cross_entropy
from service.core.vocabulary import BINARY_METRICS

__all__ = ["DESCRIPTION", "binary_cross_entropy_endpoint"]

DESCRIPTION = """\
Binary (and multi-label) cross-entropy with sigmoid, exactly as
`torch.nn.functional.binary_cross_entropy_with_logits` (`nn.BCEWithLogitsLoss`) and, for probabilities,
`nn.BCELoss`.

For logits `x`, targets `y` in [0, 1], weight `w` (broadcast to the input) and positive weight `pw`
(broadcast along the last dimension):
`l = w * ((1 - y) * x + (1 + (pw - 1) * y) * softplus(-x))`, computed without overflow
(`softplus(-x) = log1p(exp(-|x|)) + max(-x, 0)`), so logits of ±1e300 are exact.
For probabilities `p`, clipped to `[epsilon, 1 - epsilon]`: `l = -w * (y log p + (1 - y) log(1 - p))`.
Label smoothing (Keras): `y' = y (1 - s) + 0.5 s`. `mean` averages over every element.

`sample_weight` (one per sample, the input's first dimension) applies to each of the sample's labels:
`sum` is `sum_n v_n sum_j l_nj`, `mean` divides it by the total weight of all elements (scikit-learn's
convention). `outputs` may also name the metrics `accuracy` (at `threshold`, torchmetrics'
`BinaryAccuracy`) and `brier_score` (scikit-learn's `brier_score_loss`), weighted the same way.
"""


def binary_cross_entropy_endpoint(
    body: Annotated[BinaryCrossEntropyRequest, Body(openapi_examples=BINARY_CROSS_ENTROPY_EXAMPLES)],
) -> dict[str, Any]:
    input_kind: BinaryInputKind = body.input_kind()  # type: ignore[assignment]
    result = binary_cross_entropy(
        getattr(body, input_kind),
        body.target,
        input_kind=input_kind,
        weight=body.weight,
        pos_weight=body.pos_weight,
        reduction=body.reduction,
        label_smoothing=body.label_smoothing,
        epsilon=body.epsilon,
        dtype=body.dtype,
        outputs=body.outputs,
        sample_weight=body.sample_weight,
        threshold=body.threshold,
    )
    return response_body(result, ("loss", "count"), body.outputs, nullable=BINARY_METRICS)
