"""Every route of the service, one module per family of endpoints."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from service.api.openapi import PROBLEM_RESPONSES
from service.api.routes import binary_cross_entropy, cross_entropy, divergence, focal_loss, softmax
from service.api.routing import LeanJSONRoute, TransportLimits
from service.api.schemas import (
    BinaryCrossEntropyResponse,
    CrossEntropyResponse,
    DivergenceResponse,
    ProblemDetail,
    SoftmaxResponse,
)

__all__ = ["V1_OPERATIONS", "v1_routes"]

# (path, endpoint, response model, operation id, summary, description)
V1_OPERATIONS: tuple[tuple[str, Callable[..., dict[str, Any]], type[BaseModel], str, str, str], ...] = (
    (
        "/v1/cross-entropy",
        cross_entropy.cross_entropy_endpoint,
        CrossEntropyResponse,
        "cross_entropy",
        "Multi-class cross-entropy (nn.CrossEntropyLoss / nn.NLLLoss)",
        cross_entropy.DESCRIPTION,
    ),
    (
        "/v1/binary-cross-entropy",
        binary_cross_entropy.binary_cross_entropy_endpoint,
        BinaryCrossEntropyResponse,
        "binary_cross_entropy",
        "Binary and multi-label cross-entropy (nn.BCEWithLogitsLoss / nn.BCELoss)",
        binary_cross_entropy.DESCRIPTION,
    ),
    (
        "/v1/focal-loss",
        focal_loss.focal_loss_endpoint,
        focal_loss.FocalLossResponse,
        "focal_loss",
        "Focal loss, sigmoid (torchvision's sigmoid_focal_loss) or softmax",
        focal_loss.DESCRIPTION,
    ),
    (
        "/v1/softmax",
        softmax.softmax_endpoint,
        SoftmaxResponse,
        "softmax",
        "Softmax and log-softmax with temperature",
        softmax.DESCRIPTION,
    ),
    (
        "/v1/divergence",
        divergence.divergence_endpoint,
        DivergenceResponse,
        "divergence",
        "Cross-entropy, entropy and KL divergence of two distributions",
        divergence.DESCRIPTION,
    ),
)


def _responses() -> dict[int | str, dict[str, Any]]:
    return {status: {**response, "model": ProblemDetail} for status, response in PROBLEM_RESPONSES.items()}


def v1_routes(limits: TransportLimits) -> list[LeanJSONRoute]:
    """The /v1 endpoints, each a lean JSON route documented by its models."""
    return [
        LeanJSONRoute(
            path,
            endpoint,
            limits=limits,
            methods=["POST"],
            response_model=response_model,
            response_model_exclude_unset=True,
            summary=summary,
            description=description,
            operation_id=operation_id,
            tags=["losses"],
            responses=_responses(),
        )
        for path, endpoint, response_model, operation_id, summary, description in V1_OPERATIONS
    ]
