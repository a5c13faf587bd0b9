"""The application factory. Importing this module reads no environment and starts nothing."""

from __future__ import annotations

from fastapi import FastAPI

from service.api.arrays import ArrayLimits
from service.api.errors import install_error_handlers
from service.api.openapi import build_openapi
from service.api.routes import health, v1_routes
from service.api.routing import TransportLimits
from service.api.v2 import v2_routes
from service.settings import Settings

__all__ = ["VERSION", "app_from_environment", "create_app"]

VERSION = "0.1.0"

DESCRIPTION = """\
The reference cross-entropy service: classification losses computed exactly as PyTorch does, over
HTTP. POST batched logits (or probabilities) and labels; get the loss, the per-sample losses and the
softmax, plus the gradient, predictions and more on request.

Errors are RFC 9457 `application/problem+json`, naming the field, the position and the problem.
"""


def create_app(settings: Settings) -> FastAPI:
    """Build the service from explicit settings (tests pass their own; nothing is read here)."""
    app = FastAPI(
        title="Cross-entropy service",
        version=VERSION,
        summary="Classification losses exactly as PyTorch computes them.",
        description=DESCRIPTION,
        license_info={"name": "MIT", "identifier": "MIT"},
        openapi_tags=[{"name": "losses", "description": "Loss functions and their gradients."}],
        separate_input_output_schemas=False,
    )
    app.state.settings = settings
    install_error_handlers(app)

    limits = TransportLimits(
        max_body_bytes=settings.max_body_bytes,
        arrays=ArrayLimits(max_elements=settings.max_elements, max_dims=settings.max_dims),
        offload_bytes=settings.offload_bytes,
        compute_concurrency=settings.compute_concurrency,
    )
    app.router.routes.extend(v1_routes(limits))
    app.router.routes.extend(v2_routes(limits))
    app.include_router(health.router)

    def openapi() -> dict[str, object]:
        return build_openapi(app)

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def app_from_environment() -> FastAPI:
    """Factory for ``uvicorn --factory`` and worker processes: settings from ``XENT_*`` now."""
    return create_app(Settings())
