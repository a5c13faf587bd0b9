"""Every route of the service, one module per family of endpoints."""

from __future__ import annotations

from fastapi.routing import APIRoute

from service.api.openapi import PROBLEM_RESPONSES
from service.api.routes.cross_entropy import DESCRIPTION as CROSS_ENTROPY_DESCRIPTION
from service.api.routes.cross_entropy import cross_entropy_endpoint
from service.api.routing import LeanJSONRoute, TransportLimits
from service.api.schemas import CrossEntropyResponse, ProblemDetail

__all__ = ["v1_routes"]


def _responses() -> dict[int | str, dict[str, object]]:
    return {status: {**response, "model": ProblemDetail} for status, response in PROBLEM_RESPONSES.items()}


def v1_routes(limits: TransportLimits) -> list[APIRoute]:
    """The /v1 loss endpoints."""
    return [
        LeanJSONRoute(
            "/v1/cross-entropy",
            cross_entropy_endpoint,
            limits=limits,
            methods=["POST"],
            response_model=CrossEntropyResponse,
            response_model_exclude_unset=True,
            summary="Multi-class cross-entropy (nn.CrossEntropyLoss / nn.NLLLoss)",
            description=CROSS_ENTROPY_DESCRIPTION,
            operation_id="cross_entropy",
            tags=["losses"],
            responses=_responses(),
        ),
    ]
