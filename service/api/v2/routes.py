"""The /v2 routes: Open Inference Protocol health, metadata and inference.

Inference is served by ``InferRoute``, the lean raw-body transport of ``service.api.routing`` (size
limit, framing checks, large bodies computed in a worker thread) with the protocol's own rules:

* a body without Content-Type (tritonclient sends none), ``application/octet-stream`` or JSON;
* every error is problem+json with the protocol's ``"error"`` member beside ``detail``, so that
  clients that read only ``error`` (tritonclient does) get the message. Statuses: 400 for anything
  wrong with the request, 404 for an unknown model, version or path, 405 for a wrong method, 408
  when no part of the body arrives for ``XENT_BODY_TIMEOUT`` seconds, 413 for a body over
  ``XENT_MAX_BODY_BYTES`` and 415 for a Content-Type or Content-Encoding it does not read. (Triton
  answers 400 for an unknown model; 404 is what the resource is, KServe's choice, and tritonclient
  treats both as errors.)
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import Any, Final

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

from service.api.errors import Problem, problem_from_invalid_input
from service.api.middleware import request_state
from service.api.routing import BYTES_PER_NUMBER, RawBodyRoute, Reply, TransportLimits
from service.api.v2.codec import (
    HEADER_LENGTH,
    NUMPY_DTYPES,
    DecodedRequest,
    decode_request,
    encode_response,
    header_length,
)
from service.api.v2.docs import (
    BINARY_BODY,
    ERRORS,
    INFER_DESCRIPTION,
    INFER_RESPONSES,
    ModelNameParameter,
    ModelVersionParameter,
    not_ready,
)
from service.api.v2.docs import infer as infer_signature
from service.api.v2.docs import infer_version as infer_version_signature
from service.api.v2.protocol import (
    InferenceResponse,
    MetadataTensor,
    ModelMetadata,
    ModelReady,
    ServerLive,
    ServerMetadata,
    ServerReady,
)
from service.api.v2.registry import MODELS, VERSIONS, ModelSpec, run
from service.core import InvalidInputError

__all__ = ["EXTENSIONS", "SERVER_NAME", "InferRoute", "v2_routes"]

logger = logging.getLogger("service.v2")

SERVER_NAME: Final = "xent-service"
#: Triton's names for the protocol extensions spoken here.
EXTENSIONS: Final = ("binary_tensor_data", "parameters")

OCTET_STREAM: Final = b"application/octet-stream"
_JSON: Final = b"application/json"
_TAG: Final = "inference"
#: Binary tensors read in place must start at a multiple of their item size in memory.
_WIDEST_ITEM: Final = max(dtype.itemsize for dtype in NUMPY_DTYPES.values())


def v2_problem(status: int, detail: str, *, headers: dict[str, str] | None = None) -> Problem:
    """A problem carrying the protocol's ``{"error": detail}`` member."""
    return Problem(status, detail, headers=headers, extensions={"error": detail})


def find_model(name: str, version: str | None = None) -> ModelSpec:
    """The model of that name (and version, when the path names one), or a 404 problem."""
    model = MODELS.get(name)
    if model is None:
        detail = f"unknown model '{name[:60]}'; the models are {', '.join(MODELS)}"
        raise v2_problem(404, detail)
    if version is not None and version not in VERSIONS:
        detail = f"model '{name}' has no version '{version[:20]}'; its versions are {', '.join(VERSIONS)}"
        raise v2_problem(404, detail)
    return model


def _check_named_model(request: DecodedRequest, model: ModelSpec, version: str | None) -> None:
    """A model named in the body (KServe's client names it) must be the one in the URL."""
    if request.model_name is not None and request.model_name != model.name:
        msg = f"the request names model '{request.model_name[:60]}' but was sent to model '{model.name}'"
        raise InvalidInputError.single(("model_name",), msg, "model_mismatch")
    named = request.model_version
    if named is None or (named == version if version is not None else named in VERSIONS):
        return
    if version is not None:
        msg = f"the request names version '{named[:20]}' but was sent to version '{version}'"
    else:
        versions = ", ".join(VERSIONS)
        msg = f"the request names version '{named[:20]}' of model '{model.name}', which has {versions}"
    raise InvalidInputError.single(("model_version",), msg, "model_mismatch")


class InferRoute(RawBodyRoute):
    """POST .../infer: body bytes -> ``decode_request`` -> the model -> ``encode_response`` bytes."""

    def accepts(self, media_type: bytes | None) -> bool:
        return media_type is None or media_type == OCTET_STREAM or super().accepts(media_type)

    def unsupported_media_type(self, media_type: bytes) -> Problem:
        shown = media_type.decode("latin-1")[:60]
        return Problem(
            415,
            f"Content-Type {shown} is not supported; send application/octet-stream, application/json "
            "or no Content-Type",
        )

    def reply_to_problem(self, problem: Problem) -> Reply:
        status = problem.status if problem.status in {404, 405, 408, 413, 415, 503} else 400
        return Reply.problem(
            Problem(
                status,
                problem.detail,
                errors=problem.errors,
                headers=problem.headers,
                extensions={**problem.extensions, "error": problem.detail},
            )
        )

    def padding(self, scope: Scope) -> int:
        """Bytes before the body in its buffer (whose start is aligned) that put the first binary
        tensor after the JSON header on a multiple of any item size, whatever the header's length
        (known before the body): it is read in place (``codec._from_blob``). A later tensor lies
        aligned when the blobs before it have lengths that are multiples of its item size (as
        logits before targets do); one that does not is copied."""
        try:
            length = header_length(scope["headers"])
        except InvalidInputError:
            return 0  # refused once the body is read
        return 0 if length is None else -length % _WIDEST_ITEM

    def cost(self, body: bytearray, scope: Scope) -> int:
        """As JSON's; binary tensors may hold a number in every 4 bytes (FP32, INT32; BOOL targets
        come with a 4-byte input or more), which is measured at most ``BYTES_PER_NUMBER`` each too."""
        json_cost = super().cost(body, scope)
        if any(name == HEADER_LENGTH for name, _ in scope["headers"]):
            return json_cost + BYTES_PER_NUMBER * (len(body) // 4)
        return json_cost

    def respond(self, body: bytearray, scope: Scope) -> Reply:
        path = scope.get("path_params", {})
        state = request_state(scope)
        try:
            model = find_model(path["model_name"], path.get("model_version"))
            # The body is given up to the tensors: the model may write its softmax over the logits.
            request = decode_request(body, header_length(scope["headers"]), self.limits.arrays, writable=True)
            _free(body)
            _check_named_model(request, model, path.get("model_version"))
            encoded = encode_response(
                model_name=model.name,
                model_version=VERSIONS[-1],
                request_id=request.id,
                outputs=run(model, request),
            )
        except InvalidInputError as error:
            problem = problem_from_invalid_input(error)
            state["problem_kinds"] = problem.kinds()
            return self.reply_to_problem(problem)
        except Problem as problem:
            state["problem_kinds"] = problem.kinds()
            return self.reply_to_problem(problem)
        except (ValueError, TypeError, OverflowError) as error:
            # A request odd in a way no check above foresaw: still the client's, so a 400 and not a
            # 500. The client is not shown Python's words; the log says what failed (one line: it is
            # a client's mistake, not the service's), so that the missing check can be added.
            logger.warning("unforeseen invalid /v2 request: %s: %.200s", type(error).__name__, error)
            state["problem_kinds"] = ["unforeseen"]
            return self.reply_to_problem(
                v2_problem(400, "the request could not be read: its tensors do not fit together")
            )
        if request.inputs:
            first = request.inputs[0].array
            state["workload"] = (first.shape[0] if first.ndim >= 2 else 1), int(first.size)
        headers: tuple[tuple[bytes, bytes], ...] = ()
        content_type = _JSON
        if encoded.header_length is not None:  # binary outputs follow the JSON header
            content_type, headers = OCTET_STREAM, ((HEADER_LENGTH, str(encoded.header_length).encode()),)
        return Reply(
            200, encoded.body, content_type, headers, chunks=encoded.chunks, chunks_length=encoded.length
        )


def _free(body: bytearray) -> None:
    """Free the body before computing when no tensor reads it in place: JSON tensors are NumPy
    copies, and so are binary ones that were misaligned (``codec._from_blob``). An array
    over the body's own bytes holds it (BufferError): then it stays, as it must."""
    with contextlib.suppress(BufferError):
        body.clear()


# --- health and metadata ----------------------------------------------------------------------


async def server_metadata(request: Request) -> ServerMetadata:
    """The server's name and version, and the protocol extensions it supports."""
    return ServerMetadata(name=SERVER_NAME, version=str(request.app.version), extensions=list(EXTENSIONS))


async def server_live() -> ServerLive:
    """The process answers."""
    return ServerLive(live=True)


def _draining(request: Request) -> bool:
    return bool(request.app.state.lifecycle.draining)


async def server_ready(request: Request, response: Response) -> ServerReady:
    """Ready for inference; 503 while the process drains on shutdown."""
    if _draining(request):
        response.status_code = 503
        return ServerReady(ready=False)
    return ServerReady(ready=True)


def _metadata(model: ModelSpec) -> ModelMetadata:
    return ModelMetadata(
        name=model.name,
        versions=list(VERSIONS),
        platform="numpy",
        inputs=[
            MetadataTensor(name=spec.name, datatype=spec.metadata_datatype, shape=list(spec.shape))
            for spec in model.inputs
        ],
        outputs=[
            MetadataTensor(name=spec.name, datatype=spec.metadata_datatype, shape=list(spec.shape))
            for spec in model.outputs
        ],
    )


async def model_metadata(model_name: ModelNameParameter) -> ModelMetadata:
    """A model's tensors: every input it accepts (of `logits`, `probabilities` and `log_probabilities`
    send one), every output it can give, their usual datatypes, and -1 for dimensions of any size."""
    return _metadata(find_model(model_name))


async def model_version_metadata(
    model_name: ModelNameParameter, model_version: ModelVersionParameter
) -> ModelMetadata:
    """As the model's metadata, for a version."""
    return _metadata(find_model(model_name, model_version))


async def model_ready(model_name: ModelNameParameter, request: Request, response: Response) -> ModelReady:
    """Whether the model accepts inference (the models are pure functions: whenever the server does)."""
    model = find_model(model_name)
    ready = not _draining(request)
    if not ready:
        response.status_code = 503
    return ModelReady(name=model.name, ready=ready)


async def model_version_ready(
    model_name: ModelNameParameter, model_version: ModelVersionParameter, request: Request, response: Response
) -> ModelReady:
    """As the model's readiness, for a version."""
    find_model(model_name, model_version)
    return await model_ready(model_name, request, response)


# --- everything else under /v2 ----------------------------------------------------------------

_ALL_METHODS: Final = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _fallback(routes: Sequence[BaseRoute]) -> Route:
    """Unknown paths and methods under /v2 get 404 / 405 with the protocol's ``error`` member too."""

    async def endpoint(request: Request) -> Response:
        scope = dict(request.scope)
        allowed = sorted(
            {
                method
                for route in routes
                if isinstance(route, APIRoute) and route.matches(scope)[0] == Match.PARTIAL
                for method in route.methods or ()
            }
        )
        if allowed:
            path = request.url.path[:100]
            detail = f"{request.method} is not allowed on {path}; allowed: {', '.join(allowed)}"
            return v2_problem(405, detail, headers={"Allow": ", ".join(allowed)}).to_response()
        return v2_problem(404, f"no such resource: {request.url.path[:100]}").to_response()

    return Route("/v2/{path:path}", endpoint, methods=_ALL_METHODS, include_in_schema=False)


def _get_responses(path: str, model: type[Any]) -> dict[int | str, dict[str, Any]]:
    """A GET's own answers beyond 200: 404 for an unknown model, 503 from a probe while draining."""
    return {
        **({404: ERRORS[404]} if "{model_name}" in path else {}),
        **(not_ready(model) if path.endswith("/ready") else {}),
    }


def v2_routes(limits: TransportLimits) -> list[BaseRoute]:
    """Every /v2 route, the catch-all last."""

    def get(path: str, endpoint: Any, model: type[Any], summary: str, operation_id: str) -> APIRoute:
        return APIRoute(
            path,
            endpoint,
            methods=["GET"],
            response_model=model,
            summary=summary,
            operation_id=operation_id,
            tags=[_TAG],
            responses=_get_responses(path, model),
        )

    def infer(path: str, endpoint: Any, operation_id: str) -> InferRoute:
        return InferRoute(
            path,
            endpoint,
            limits=limits,
            methods=["POST"],
            response_model=InferenceResponse,
            summary="Inference (JSON or binary tensors)",
            description=INFER_DESCRIPTION,
            operation_id=operation_id,
            tags=[_TAG],
            responses=INFER_RESPONSES,
            openapi_extra=BINARY_BODY,
        )

    routes: list[BaseRoute] = [
        get("/v2", server_metadata, ServerMetadata, "Server metadata", "v2_server_metadata"),
        get("/v2/health/live", server_live, ServerLive, "Server liveness", "v2_server_live"),
        get("/v2/health/ready", server_ready, ServerReady, "Server readiness", "v2_server_ready"),
        get("/v2/models/{model_name}", model_metadata, ModelMetadata, "Model metadata", "v2_model_metadata"),
        get(
            "/v2/models/{model_name}/versions/{model_version}",
            model_version_metadata,
            ModelMetadata,
            "Model version metadata",
            "v2_model_version_metadata",
        ),
        get("/v2/models/{model_name}/ready", model_ready, ModelReady, "Model readiness", "v2_model_ready"),
        get(
            "/v2/models/{model_name}/versions/{model_version}/ready",
            model_version_ready,
            ModelReady,
            "Model version readiness",
            "v2_model_version_ready",
        ),
        infer("/v2/models/{model_name}/infer", infer_signature, "v2_infer"),
        infer(
            "/v2/models/{model_name}/versions/{model_version}/infer",
            infer_version_signature,
            "v2_infer_version",
        ),
    ]
    routes.append(_fallback(list(routes)))
    return routes
