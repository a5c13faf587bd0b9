"""A minimal BentoML service serving ``compute.cross_entropy`` with /v1's JSON (logits, target).

Served by ``bentoml serve bentoml_service:CrossEntropy`` in its own virtual environment (``python -m
bench.peers`` runs it from this folder), one worker, access log off.
"""

from __future__ import annotations

from typing import Any

import bentoml
import numpy as np
from compute import cross_entropy


@bentoml.service(workers=1, logging={"access": {"enabled": False}})
class CrossEntropy:
    @bentoml.api(route="/v1/cross-entropy")
    def cross_entropy(self, logits: list[list[float]], target: list[int]) -> dict[str, Any]:
        loss, losses, softmax = cross_entropy(np.asarray(logits), np.asarray(target))
        return {"loss": loss, "losses": losses.tolist(), "softmax": softmax.tolist()}
