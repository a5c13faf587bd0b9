"""POST /v1/softmax: bytes -> ``SoftmaxRequest`` -> core -> JSON."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body

from service.api.examples import SOFTMAX_EXAMPLES
from service.api.schemas import SoftmaxRequest
from service.core import tempered_softmax

__all__ = ["DESCRIPTION", "softmax_endpoint"]

DESCRIPTION = """\
`softmax(logits / T)` and `log_softmax(logits / T)` along `dim`, as `torch.softmax` /
`torch.log_softmax`:
`softmax(x)_i = exp(x_i - m) / sum_j exp(x_j - m)` with `m = max_j x_j`, so no exponent is positive
and nothing overflows; `log_softmax(x)_i = (x_i - m) - log(sum_j exp(x_j - m))`.

`dim` defaults to 1 for input with two or more dimensions and to 0 otherwise; negative values count
from the end. A temperature below 1 sharpens the distribution towards the one-hot of the argmax; above
1 flattens it towards uniform.
"""


def softmax_endpoint(
    body: Annotated[SoftmaxRequest, Body(openapi_examples=SOFTMAX_EXAMPLES)],
) -> dict[str, Any]:
    probabilities, log_probabilities = tempered_softmax(
        body.logits, temperature=body.temperature, dim=body.dim, dtype=body.dtype
    )
    return {"softmax": probabilities, "log_softmax": log_probabilities}
