"""The Open Inference Protocol (KServe v2) REST messages as pydantic models: the contract in OpenAPI.

The protocol (kserve/open-inference-protocol, ``inference_rest.md``) is spoken by Triton, KServe and
Seldon MLServer, so their clients (``tritonclient``, KServe's ``InferenceRESTClient``) call this
service unchanged. An inference request names its model in the URL and carries tensors::

    {"id": "42",                                            # optional, echoed in the response
     "parameters": {"reduction": "sum"},                    # the model's options
     "inputs": [{"name": "logits", "datatype": "FP32", "shape": [2, 3],
                 "data": [-1, 0.5, 2, -1, 0.5, 3]},         # row-major, flat or nested
                {"name": "target", "datatype": "INT64", "shape": [2],
                 "parameters": {"binary_data_size": 16}}],  # or raw bytes after the JSON
     "outputs": [{"name": "loss"}, {"name": "softmax", "parameters": {"binary_data": true}}]}

Request models validate the structure strictly (``true`` is not a dimension, unknown members are
refused); tensor ``data`` is taken as parsed and converted to NumPy by ``service.api.v2.codec``, which
also checks datatypes, shapes and sizes and names the input in every message. Response models
document what the handlers send; the handlers write the bytes themselves.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    WithJsonSchema,
)
from typing_extensions import TypeAliasType

from service.api.arrays import MAX_DIMS_DEFAULT, nested_array_schema
from service.api.schemas import RequestModel

__all__ = [
    "DATATYPES",
    "Datatype",
    "InferenceError",
    "InferenceRequest",
    "InferenceResponse",
    "MetadataTensor",
    "ModelMetadata",
    "ModelReady",
    "ParameterValue",
    "Parameters",
    "RequestInput",
    "RequestOutput",
    "ResponseOutput",
    "ServerLive",
    "ServerMetadata",
    "ServerReady",
]

#: The tensor datatypes this service reads and writes (the protocol has more: UINT*, FP16, BYTES...).
Datatype = Literal["BOOL", "INT32", "INT64", "FP32", "FP64"]
DATATYPES: Final[tuple[str, ...]] = get_args(Datatype)

#: A parameter value: the protocol allows a boolean, a number or a string, nothing nested.
#: Integers that fit 64 bits and finite floats: anything larger could not become a number of the core's.
ParameterValue = (
    StrictBool
    | Annotated[StrictInt, Field(ge=-(2**63), lt=2**63)]
    | Annotated[StrictFloat, Field(allow_inf_nan=False)]
    | StrictStr
)
#: The most parameters one object may have, and the most dimensions a tensor's shape may list.
MAX_PARAMETERS: Final = 32
MAX_SHAPE_DIMS: Final = 32
Parameters = Annotated[dict[str, ParameterValue], Field(max_length=MAX_PARAMETERS)]
#: The most input or output tensors one request may name (no model has more than 8).
MAX_TENSORS: Final = 16

#: Documentation type for tensor contents: numbers or booleans, flat or nested, row-major.
#: (Nested arrays of a bounded depth, which client generators can type; see ``nested_array_schema``.)
TensorData = TypeAliasType(
    "TensorData",
    Annotated[
        list[Any],
        WithJsonSchema(
            {
                **nested_array_schema({"type": ["number", "boolean"]}, depth=MAX_DIMS_DEFAULT),
                "description": "Numbers or booleans as a flat array, or nested as the shape (row-major).",
            }
        ),
    ],
)

_STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


def _as_parsed(value: Any) -> Any:
    # Tensor data is converted (and checked) by the codec in one vectorised pass; validating every
    # element here would cost a Python call per number.
    return value


class RequestInput(RequestModel):
    """One input tensor: its contents in ``data``, or ``binary_data_size`` bytes after the JSON."""

    model_config = _STRICT

    name: str = Field(description="The input's name, e.g. `logits` or `target` (see the model's metadata).")
    shape: list[Annotated[StrictInt, Field(ge=0, lt=2**63)]] = Field(
        max_length=MAX_SHAPE_DIMS,
        description="Dimensions, each >= 0; `[]` is a scalar.",
        examples=[[2, 3]],
    )
    datatype: str = Field(
        description="Element type: FP32, FP64, INT32, INT64 or BOOL.",
        json_schema_extra={"enum": list(DATATYPES)},
    )
    parameters: Parameters | None = Field(
        default=None,
        description=(
            "`binary_data_size`: the tensor is sent as that many raw little-endian row-major bytes after "
            "the JSON header (Triton's binary tensor data extension) instead of in `data`."
        ),
    )
    data: Annotated[Any, PlainValidator(_as_parsed, json_schema_input_type=float | bool | TensorData)] = (
        Field(
            default=None,
            description="The elements in row-major order, flat or nested as the shape.",
            examples=[[-1, 0.5, 2, -1, 0.5, 3]],
        )
    )


class RequestOutput(RequestModel):
    """An output the client wants back, and how."""

    model_config = _STRICT

    name: str = Field(description="The output's name, e.g. `loss` or `softmax`.")
    parameters: Parameters | None = Field(
        default=None,
        description="`binary_data`: true to receive the tensor as raw bytes after the JSON header.",
    )


class InferenceRequest(RequestModel):
    """An inference request (the JSON header, or the whole body when no tensor is binary)."""

    model_config = _STRICT

    id: str | None = Field(default=None, description="Echoed in the response.")
    model_name: str | None = Field(
        default=None,
        description="Optional (KServe's client sends it); when given it must be the model in the URL.",
    )
    model_version: str | None = Field(
        default=None, description="Optional; when given it must be a version of the model."
    )
    parameters: Parameters | None = Field(
        default=None,
        description=(
            "The model's options (`reduction`, `ignore_index`, `label_smoothing`, `dtype`, ...; see the "
            "model's description), and `binary_data_output`: true for every output as binary data."
        ),
    )
    # Bounds far above what any model takes, so that a body of a thousand tensors is refused at once.
    inputs: list[RequestInput] = Field(
        max_length=MAX_TENSORS, description="The input tensors, each name at most once."
    )
    outputs: list[RequestOutput] | None = Field(
        default=None,
        max_length=MAX_TENSORS,
        description="The outputs to return, in this order; absent: the model's default outputs.",
    )


class ResponseOutput(BaseModel):
    """One output tensor: its contents in ``data``, or ``binary_data_size`` bytes after the JSON."""

    name: str
    shape: list[int] = Field(description="Dimensions; `[]` for a scalar such as `loss`.")
    datatype: Datatype
    parameters: Parameters | None = Field(
        default=None, description="`binary_data_size` when the tensor follows the JSON header as raw bytes."
    )
    data: list[float] | None = Field(default=None, description="The elements, flat, row-major.")


class InferenceResponse(BaseModel):
    """The outputs asked for (or the model's defaults); an output that is undefined is absent."""

    model_name: str
    model_version: str
    id: str | None = Field(default=None, description="The request's `id`, when it had one.")
    outputs: list[ResponseOutput]


class InferenceError(BaseModel):
    """The protocol's error object; this service sends it inside RFC 9457 problem details."""

    error: str


class ServerMetadata(BaseModel):
    """What the server is and which protocol extensions it supports."""

    name: str
    version: str
    extensions: list[str]


class MetadataTensor(BaseModel):
    """An input or output of a model: ``-1`` marks a dimension of any size."""

    name: str
    datatype: Datatype
    shape: list[int]


class ModelMetadata(BaseModel):
    """A model's name, versions and tensors."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]


class ServerLive(BaseModel):
    live: bool


class ServerReady(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool
