"""POST /v1/divergence: bytes -> ``DivergenceRequest`` -> core -> JSON."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body

from service.api.examples import DIVERGENCE_EXAMPLES
from service.api.payloads import response_body
from service.api.schemas import DivergenceRequest
from service.core import divergence

__all__ = ["DESCRIPTION", "divergence_endpoint"]

DESCRIPTION = """\
Cross-entropy as the difference between two distributions, the article's first part: `p` the true
distribution, `q` the predicted one, per distribution (the last dimension) and reduced.

**Cross-entropy** `H(p, q) = -Σ p log q`: the average cost of encoding events from p with a code made
for q. **Entropy** `H(p) = -Σ p log p`: the least possible cost, with a code made for p itself.
**KL divergence** `KL(p ‖ q) = Σ p (log p - log q) ≥ 0`: the excess; so `H(p, q) = H(p) + KL(p ‖ q)`.

In nats (`base` "e"), bits ("2") or base 10. `0 · log 0 = 0`; q is clipped to `[epsilon, 1]`. The
article's example, one-hot truth at class 4 against the network's prediction, gives H = 2.4361 nats.
"""


def divergence_endpoint(
    body: Annotated[DivergenceRequest, Body(openapi_examples=DIVERGENCE_EXAMPLES)],
) -> dict[str, Any]:
    result = divergence(body.p, body.q, base=body.base, reduction=body.reduction, epsilon=body.epsilon)
    names = ("cross_entropy", "entropy", "kl_divergence", "cross_entropies", "entropies", "kl_divergences")
    return response_body(result, names)
