"""Liveness and readiness probes: cheap, no body, no dependencies."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

__all__ = ["Health", "router"]

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: Literal["ok", "ready", "draining"]


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
async def ready(request: Request, response: Response) -> Health:
    if request.app.state.lifecycle.draining:
        response.status_code = 503
        return Health(status="draining")
    return Health(status="ready")
