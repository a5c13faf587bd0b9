"""The application factory. Importing this module reads no environment and starts nothing."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from service import __version__
from service.api.arrays import ArrayLimits
from service.api.docs import install_docs
from service.api.errors import install_error_handlers
from service.api.metrics import ServiceMetrics
from service.api.middleware import BearerAuth, HeadAsGet, RequestObserver
from service.api.openapi import TAGS, build_openapi
from service.api.pages import PUBLIC_PAGE_PATHS, PUBLIC_PAGE_PREFIXES, install_pages
from service.api.payloads import check_serialiser
from service.api.routes import health, operations, v1_routes
from service.api.routing import BodyDeadlines, ComputeGate, RawBodyRoute, TransportLimits
from service.api.v2 import v2_routes
from service.budget import MemoryBudget, default_memory_budget
from service.core import set_threads
from service.lifecycle import PROCESS_LIFECYCLE, Lifecycle
from service.memory import release_free_memory, tune_allocator
from service.observability import access_sample_rate
from service.settings import Settings

__all__ = ["VERSION", "ServiceApp", "app_from_environment", "create_app"]

VERSION = __version__

logger = logging.getLogger("service")

DESCRIPTION = """\
The reference cross-entropy service: classification losses computed exactly as PyTorch does, over
HTTP. POST batched logits (or probabilities) and labels; get the loss, the per-sample losses and the
softmax, plus the gradient, predictions and more on request.

Errors are RFC 9457 `application/problem+json`, naming the field, the position and the problem.

Before a request reaches any operation, the server itself may answer it, also with problem+json but
without the headers the operations send: 431 for a request head over `XENT_MAX_HEADER_BYTES`, 408 for
one not in within `XENT_HEADER_TIMEOUT`, and 503 (`Retry-After: 1`) past `XENT_MAX_CONNECTIONS` open
connections; it closes the connection after each.
"""

HEALTH_PATHS = ("/health/", "/v2/health/")
METRICS_PATHS = ("/metrics",)
DOCS_PATHS = ("/docs", "/openapi.json", "/redoc", *PUBLIC_PAGE_PREFIXES)


def _public_prefixes(settings: Settings) -> tuple[str, ...]:
    prefixes: tuple[str, ...] = ()
    if settings.public_health:
        prefixes += HEALTH_PATHS
    if settings.public_metrics:
        prefixes += METRICS_PATHS
    if settings.public_docs:
        prefixes += DOCS_PATHS
    return prefixes


def _public_paths(settings: Settings) -> tuple[str, ...]:
    """Paths public as they are (not as prefixes): the front page, with the documentation."""
    return PUBLIC_PAGE_PATHS if settings.public_docs else ()


class ServiceApp(FastAPI):
    """FastAPI, with a short front door for the lean routes' POSTs.

    FastAPI's own layers (its telemetry, body-limit and error middleware, the router's scan of every
    route's pattern) cost as much as the whole computation of a small request, and the lean routes use
    none of them: they enforce their own body limit and never raise. So a POST to one of their fixed
    paths goes through the service's middleware, built a second time around the route alone, and
    every other request through the usual stack. The routes stay in ``app.router``: OpenAPI documents
    them like any other.
    """

    lean_routes: dict[str, RawBodyRoute]
    #: Lean routes with path parameters (/v2's infer), matched by their pattern after the fixed paths.
    lean_templates: tuple[RawBodyRoute, ...] = ()
    front_door: ASGIApp | None = None

    def add_middleware(self, middleware_class: Any, *args: Any, **kwargs: Any) -> None:
        """Add a middleware around the app's stack and around the front door alike: one list of
        middleware for both paths, whoever adds one and whenever (before the app starts)."""
        super().add_middleware(middleware_class, *args, **kwargs)
        if self.front_door is not None:
            self.front_door = middleware_class(self.front_door, *args, **kwargs)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.front_door is not None and scope["type"] == "http" and scope["method"] == "POST":
            found = self._lean_route(scope["path"][len(scope.get("root_path", "")) :])
            if found is not None:
                scope["app"] = self
                scope["route"], parameters = found
                scope.setdefault("path_params", {}).update(parameters)
                await self.front_door(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    def _lean_route(self, path: str) -> tuple[RawBodyRoute, dict[str, str]] | None:
        """The lean route for a POST to ``path`` and its path parameters, as the router would find
        them (the routes' patterns are Starlette's own; their parameters are plain strings)."""
        route = self.lean_routes.get(path)
        if route is not None:
            return route, {}
        for template in self.lean_templates:
            match = template.path_regex.match(path)
            if match is not None:
                return template, match.groupdict()
        return None


async def call_lean_route(scope: Scope, receive: Receive, send: Send) -> None:
    """The innermost app of the front door: the lean route ``ServiceApp`` found."""
    route: RawBodyRoute = scope["route"]
    await route.app(scope, receive, send)


def create_app(
    settings: Settings,
    *,
    lifecycle: Lifecycle | None = None,
    release_memory: Callable[[], object] | None = None,
) -> ServiceApp:
    """Build the service from explicit settings (tests pass their own; nothing is read here).

    ``lifecycle``: the process's draining state (default: a fresh one). ``release_memory``: called
    when large requests have stopped for a moment (see ``ComputeGate``); the serving process passes
    ``service.memory.release_free_memory``.
    """
    check_serialiser()

    app = ServiceApp(
        title="Cross-entropy service",
        version=VERSION,
        summary="Classification losses exactly as PyTorch computes them.",
        description=DESCRIPTION,
        license_info={"name": "MIT", "identifier": "MIT"},
        openapi_tags=TAGS,
        separate_input_output_schemas=False,
        lifespan=_lifespan(settings),
        docs_url=None,  # served offline by install_docs
        redoc_url=None,
    )
    app.state.settings = settings
    set_threads(settings.compute_threads)  # a process-wide resource, as torch.set_num_threads
    app.state.lifecycle = lifecycle or Lifecycle()
    app.state.metrics = metrics = ServiceMetrics()
    install_error_handlers(app)

    limits = _transport_limits(settings, release_memory)
    app.state.memory_budget = limits.budget
    lean = v1_routes(limits)
    app.router.routes.extend(lean)
    v2 = v2_routes(limits)
    app.router.routes.extend(v2)
    app.include_router(health.router)
    app.include_router(operations.router)
    install_docs(app, title=app.title)
    install_pages(app)

    app.lean_routes = {route.path: route for route in lean}
    app.lean_templates = tuple(route for route in v2 if isinstance(route, RawBodyRoute))
    app.front_door = call_lean_route
    _install_middleware(app, settings, metrics)

    def openapi() -> dict[str, object]:
        return build_openapi(app)

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _transport_limits(settings: Settings, release_memory: Callable[[], object] | None) -> TransportLimits:
    """What one request may cost, and the process-wide gate and memory budget large ones share."""
    gate = ComputeGate(settings.compute_concurrency, release_memory=release_memory)
    budget_bytes = settings.memory_budget or default_memory_budget(settings.workers)
    return TransportLimits(
        max_body_bytes=settings.max_body_bytes,
        arrays=ArrayLimits(max_elements=settings.max_elements, max_dims=settings.max_dims),
        offload_bytes=settings.offload_bytes,
        deadlines=BodyDeadlines(settings.body_timeout, settings.min_receive_rate),
        gate=gate,
        # Once the last large answer has left, memory can be given back (see ComputeGate).
        budget=MemoryBudget(budget_bytes, wait=settings.memory_wait, on_empty=gate.schedule_release),
    )


def _lifespan(settings: Settings) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """What the app does when it starts: say whether access control is on."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.api_keys:
            logger.info("access control on: %d API key(s) configured", len(settings.api_keys))
        else:
            logger.warning(
                "access control off: XENT_API_KEYS is empty, anyone who can reach the service may use it"
            )
        yield

    return lifespan


def _install_middleware(app: ServiceApp, settings: Settings, metrics: ServiceMetrics) -> None:
    """The service's middleware, innermost first (each reaches the front door too, see
    ``ServiceApp.add_middleware``): HeadAsGet, BearerAuth (when keys are set), CORS (outside it, so
    that preflights need no key), the observer."""
    app.add_middleware(HeadAsGet)
    keys = [key.get_secret_value() for key in settings.api_keys]
    if keys:
        public = {"public_prefixes": _public_prefixes(settings), "public_paths": _public_paths(settings)}
        app.add_middleware(BearerAuth, keys=keys, **public)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type", "x-request-id"],
            expose_headers=["x-request-id"],
        )
    app.add_middleware(RequestObserver, metrics=metrics, access_rate=access_sample_rate(settings.access_log))


def app_from_environment() -> ServiceApp:
    """Factory for ``uvicorn --factory`` and worker processes: settings from ``XENT_*`` now.

    This is the serving process, so it also tunes the process-wide allocator and gives memory back
    when idle (``service.memory``).
    """
    tuned = tune_allocator()
    release = release_free_memory if tuned else None
    return create_app(Settings(), lifecycle=PROCESS_LIFECYCLE, release_memory=release)
