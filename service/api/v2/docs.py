"""How the /v2 operations are documented in OpenAPI: path parameters, the inference operation's
description, example, error responses and binary body (``routes`` serves them)."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import Body, Header, Path

from service.api.schemas import ProblemDetail
from service.api.v2.protocol import InferenceRequest, InferenceResponse
from service.api.v2.registry import MODELS, VERSIONS

__all__ = [
    "BINARY_BODY",
    "ERRORS",
    "INFER_DESCRIPTION",
    "OTHER_ERRORS",
    "ModelName",
    "ModelVersion",
    "infer",
    "infer_version",
]

ModelName = Annotated[
    str, Path(description="The model.", json_schema_extra={"enum": list(MODELS)}, examples=["cross_entropy"])
]
ModelVersion = Annotated[
    str, Path(description="The model's version.", json_schema_extra={"enum": list(VERSIONS)})
]

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

# Declaring "4XX" also keeps FastAPI from documenting a 422, which /v2 never sends.
OTHER_ERRORS: Final = {
    "description": "Any other client error (405 for a wrong method), also with `error`.",
    "model": ProblemDetail,
}
ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    400: {"description": "Anything wrong with the request; `error` says what.", "model": ProblemDetail},
    404: {"description": "No such model or version.", "model": ProblemDetail},
    408: {
        "description": "No part of the body arrived for XENT_BODY_TIMEOUT seconds.",
        "model": ProblemDetail,
    },
    413: {"description": "The body is larger than XENT_MAX_BODY_BYTES.", "model": ProblemDetail},
    415: {
        "description": "A Content-Type the protocol does not use, or a compressed body (Content-Encoding).",
        "model": ProblemDetail,
    },
    "4XX": OTHER_ERRORS,
}


def infer(
    model_name: ModelName,
    request: Annotated[
        InferenceRequest,
        Body(openapi_examples={"seed": {"summary": "The article's 3-class example", "value": SEED_REQUEST}}),
    ],
    inference_header_content_length: Annotated[
        int | None,
        Header(
            alias="Inference-Header-Content-Length",
            description="Length of the JSON header when binary tensors follow it.",
        ),
    ] = None,
) -> InferenceResponse:
    """The operation's signature, from which OpenAPI documents it; ``InferRoute.respond`` serves it."""
    raise NotImplementedError("InferRoute serves the request body itself")


def infer_version(
    model_name: ModelName,
    model_version: ModelVersion,
    request: Annotated[InferenceRequest, Body()],
    inference_header_content_length: Annotated[
        int | None, Header(alias="Inference-Header-Content-Length")
    ] = None,
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
