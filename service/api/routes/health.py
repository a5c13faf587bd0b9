"""Liveness and readiness probes: cheap, no dependencies."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel

from service.api.errors import Problem

__all__ = ["Health", "router"]

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: Literal["ok", "ready"]


@router.get(
    "/health/live",
    summary="Liveness: the process is up",
    operation_id="health_live",
    response_model=Health,
)
async def live() -> Health:
    return Health(status="ok")


@router.get(
    "/health/ready",
    summary="Readiness: the process accepts work (503 while it drains on shutdown)",
    operation_id="health_ready",
    response_model=Health,
    responses={503: {"description": "Draining: finishing requests in flight before exiting."}},
)
async def ready(request: Request) -> Health:
    if request.app.state.lifecycle.draining:
        # Like every error of the service, a problem+json (as OpenAPI documents it).
        raise Problem(503, "draining: the service is finishing the requests in flight before it exits")
    return Health(status="ready")
