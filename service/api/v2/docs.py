"""How the /v2 operations are documented in OpenAPI: path parameters, the inference operation's
description, example, error responses and binary body (``routes`` serves them)."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import Body, Header, Path
from pydantic import BaseModel, Field, WithJsonSchema
from typing_extensions import TypeAliasType

from service.api.schemas import ProblemDetail
from service.api.v2.protocol import InferenceRequest, InferenceResponse
from service.api.v2.registry import MODELS, VERSIONS

__all__ = [
    "BINARY_BODY",
    "ERRORS",
    "INFER_DESCRIPTION",
    "INFER_RESPONSES",
    "InferenceProblem",
    "ModelName",
    "ModelNameParameter",
    "ModelVersion",
    "ModelVersionParameter",
    "infer",
    "infer_version",
    "not_ready",
]

#: The model and version path parameters: named enums (one schema each, whatever the operation).
ModelName = TypeAliasType(
    "ModelName",
    Annotated[
        str, WithJsonSchema({"type": "string", "enum": list(MODELS), "description": "A model's name."})
    ],
)
ModelVersion = TypeAliasType(
    "ModelVersion",
    Annotated[
        str,
        WithJsonSchema(
            {
                "type": "string",
                "enum": list(VERSIONS),
                "x-enum-varnames": [f"V{version}" for version in VERSIONS],
                "description": "A model's version.",
            }
        ),
    ],
)
ModelNameParameter = Annotated[ModelName, Path(description="The model.", examples=["cross_entropy"])]
ModelVersionParameter = Annotated[ModelVersion, Path(description="The model's version.")]


class InferenceProblem(ProblemDetail):
    """Problem details with the Open Inference Protocol's ``error`` member (what tritonclient reads)."""

    error: str = Field(description="The same message as `detail`.")


INFER_DESCRIPTION = """\
Open Inference Protocol (KServe v2) inference, with Triton's binary tensor data extension: the same
computation as the model's /v1 endpoint, from the same core.

The body is an `InferenceRequest` in JSON, or that JSON header followed by raw tensors: each input
with `parameters.binary_data_size` has exactly `prod(shape) * itemsize` little-endian row-major bytes
after the header, in the order of `inputs`, and the `Inference-Header-Content-Length` header gives
the JSON header's length. Outputs asked for with `binary_data: true` (or all, with the request
parameter `binary_data_output: true`) come back the same way (`application/octet-stream`, with
`Inference-Header-Content-Length`).

Models: `cross_entropy` (inputs `logits` | `probabilities` | `log_probabilities`, `target`,
`weight`, `sample_weight`; parameters `reduction`, `ignore_index`, `label_smoothing`, `epsilon`,
`dtype`; outputs `loss`, `count`, `losses`, `softmax`, `log_softmax`, `grad`, `predictions`,
`target_probability`), `binary_cross_entropy` (`logits` | `probabilities`, `target`, `weight`,
`pos_weight`, `sample_weight`; outputs `loss`, `count`, `losses`, `sigmoid`, `grad`, `predictions`),
`softmax` (`logits`; `temperature`, `dim`,
`dtype`; `softmax`, `log_softmax`) and `divergence` (`p`, `q`; `base`, `reduction`, `epsilon`;
`cross_entropy`, `entropy`, `kl_divergence`, `cross_entropies`, `entropies`, `kl_divergences`).

Datatypes FP32, FP64, INT32, INT64 (BOOL for the binary target). A `cross_entropy` target of an INT
datatype holds class indices, of an FP datatype class probabilities. `dtype` defaults to the input's
precision (FP32: float32, else float64). Scalars have shape `[]`; outputs that are null in v1 (`loss`
for reduction `none`, or where PyTorch gives NaN) are absent; `target_probability` is -1 where the
target is ignored. `sample_weight` weighs each sample's loss in the reduction as in /v1 (the metrics
are /v1 outputs only). Errors are problem+json with an `error` member (what tritonclient reads).
"""

SEED_REQUEST: Final[dict[str, Any]] = {
    "inputs": [
        {"name": "logits", "datatype": "FP64", "shape": [2, 3], "data": [-1, 0.5, 2, -1, 0.5, 3]},
        {"name": "target", "datatype": "INT64", "shape": [2], "data": [1, 2]},
    ],
    "outputs": [{"name": "loss"}, {"name": "losses"}, {"name": "softmax"}],
}

ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    400: {"description": "Anything wrong with the request; `error` says what.", "model": InferenceProblem},
    404: {"description": "No such model or version.", "model": InferenceProblem},
    408: {
        "description": "No part of the body arrived for XENT_BODY_TIMEOUT seconds.",
        "model": InferenceProblem,
    },
    413: {"description": "The body is larger than XENT_MAX_BODY_BYTES.", "model": InferenceProblem},
    415: {
        "description": "A Content-Type the protocol does not use, or a compressed body (Content-Encoding).",
        "model": InferenceProblem,
    },
}

#: Inference answers JSON, or (binary outputs asked for) the JSON header followed by raw tensors.
INFER_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    200: {
        "description": "The outputs: JSON, or with binary outputs the JSON header (its length in "
        "`Inference-Header-Content-Length`) followed by the tensors' raw bytes.",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        "headers": {
            "Inference-Header-Content-Length": {
                "$ref": "#/components/headers/Inference-Header-Content-Length"
            }
        },
    },
    **ERRORS,
}


def not_ready(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """The 503 of a /v2 readiness route while the process drains, with its ``ready: false`` body."""
    return {503: {"description": "Draining: finishing requests in flight before exiting.", "model": model}}


#: The optional request header of both inference operations.
InferenceHeaderLength = Annotated[
    int | None,
    Header(
        alias="Inference-Header-Content-Length",
        description="Length of the JSON header when binary tensors follow it.",
        ge=0,
    ),
]


def infer(
    model_name: ModelNameParameter,
    request: Annotated[
        InferenceRequest,
        Body(openapi_examples={"seed": {"summary": "The article's 3-class example", "value": SEED_REQUEST}}),
    ],
    inference_header_content_length: InferenceHeaderLength = None,
) -> InferenceResponse:
    """The operation's signature, from which OpenAPI documents it; ``InferRoute.respond`` serves it."""
    raise NotImplementedError("InferRoute serves the request body itself")


def infer_version(
    model_name: ModelNameParameter,
    model_version: ModelVersionParameter,
    request: Annotated[InferenceRequest, Body()],
    inference_header_content_length: InferenceHeaderLength = None,
) -> InferenceResponse:
    """As ``infer``, with the version in the path."""
    raise NotImplementedError("InferRoute serves the request body itself")


BINARY_BODY: Final[dict[str, Any]] = {
    "requestBody": {
        "description": (
            "An `InferenceRequest` in JSON, or (`application/octet-stream` or no Content-Type) that JSON "
            "followed by the binary tensors, its length in `Inference-Header-Content-Length`."
        ),
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}
