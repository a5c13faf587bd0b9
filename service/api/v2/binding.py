"""A /v2 model's description (its inputs, parameters and outputs) and the binding of a decoded request to
it: every name, datatype and parameter type checked at once, then the model's computation called.
The models themselves are in ``registry``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, NamedTuple, cast

import orjson
from numpy.typing import NDArray

from service.api.v2.codec import DecodedRequest, OutputTensor, Tensor
from service.api.v2.protocol import Datatype, ParameterValue
from service.core import ComputeDtype, InvalidInputError, Issue

__all__ = [
    "NUMBERS",
    "Call",
    "InputSpec",
    "ModelSpec",
    "OutputSpec",
    "ParameterSpec",
    "Results",
    "run",
]

NUMBERS: Final[tuple[Datatype, ...]] = ("FP32", "FP64", "INT32", "INT64")
ParameterKind = Literal["integer", "number", "string"]

#: Output values by name; None is an undefined value (null in v1), which is not sent.
Results = dict[str, NDArray[Any] | None]


@dataclass(frozen=True, slots=True)
class InputSpec:
    """An input: the datatypes it accepts, and how model metadata shows it (-1: any size)."""

    name: str
    datatypes: tuple[Datatype, ...]
    metadata_datatype: Datatype
    shape: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ParameterSpec:
    name: str
    kind: ParameterKind


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """An output, as model metadata shows it (float outputs follow the compute precision)."""

    name: str
    metadata_datatype: Datatype
    shape: tuple[int, ...]


class Call(NamedTuple):
    """A request bound to a model: inputs by their canonical names, parameters by name (types
    checked), and the names of the outputs wanted."""

    inputs: Mapping[str, Tensor]
    parameters: Mapping[str, ParameterValue]
    outputs: frozenset[str]

    def one_of(self, names: tuple[str, ...]) -> str:
        """The one of ``names`` that was sent (binding made sure there is one)."""
        for name in names:
            if name in self.inputs:
                return name
        raise LookupError(names)

    def array(self, name: str) -> NDArray[Any] | None:
        tensor = self.inputs.get(name)
        return None if tensor is None else tensor.array

    def text(self, name: str, default: str) -> str:
        return cast(str, self.parameters.get(name, default))

    def number(self, name: str, default: float) -> float:
        return float(self.parameters.get(name, default))

    def integer(self, name: str) -> int | None:
        value = self.parameters.get(name)
        return None if value is None else int(value)

    def dtype(self, scores: Tensor) -> ComputeDtype:
        default = "float32" if scores.datatype == "FP32" else "float64"
        return cast(ComputeDtype, self.text("dtype", default))


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One model: its tensors and parameters, which inputs are alternatives, and its computation.

    ``choices`` are groups of inputs of which exactly one must be sent (``("logits",
    "probabilities")``); inputs in no group are optional. ``aliases`` map another accepted name to an
    input's name (v1's ``labels`` for ``target``). The lookups by name are made once, here.
    """

    name: str
    inputs: tuple[InputSpec, ...]
    choices: tuple[tuple[str, ...], ...]
    parameters: tuple[ParameterSpec, ...]
    outputs: tuple[OutputSpec, ...]
    default_outputs: tuple[str, ...]
    compute: Callable[[Call], Results]
    aliases: tuple[tuple[str, str], ...] = field(default=())
    input_specs: Mapping[str, InputSpec] = field(init=False, repr=False, compare=False)
    parameter_specs: Mapping[str, ParameterSpec] = field(init=False, repr=False, compare=False)
    output_names: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_specs", {spec.name: spec for spec in self.inputs})
        object.__setattr__(self, "parameter_specs", {spec.name: spec for spec in self.parameters})
        object.__setattr__(self, "output_names", frozenset(spec.name for spec in self.outputs))

    def input(self, name: str) -> InputSpec | None:
        return self.input_specs.get(name)


# --- binding a request to a model -------------------------------------------------------------


def run(model: ModelSpec, request: DecodedRequest) -> list[OutputTensor]:
    """Check the request against the model, compute, and list the outputs to send, in the order
    requested (or the model's default outputs, in its order). Raises ``InvalidInputError``."""
    inputs = _bind_inputs(model, request.inputs)
    parameters = _bind_parameters(model, request.parameters)
    wanted: list[tuple[str, bool | None]]
    if request.outputs is None:
        wanted = [(name, None) for name in model.default_outputs]
    else:
        wanted = [(item.name, item.binary) for item in request.outputs]
        _check_outputs(model, [name for name, _ in wanted])
    try:
        results = model.compute(Call(inputs, parameters, frozenset(name for name, _ in wanted)))
    except InvalidInputError as error:
        raise _under_parameters(model, error) from None
    return [
        OutputTensor(name, value, request.binary_output if binary is None else binary)
        for name, binary in wanted
        if (value := results.get(name)) is not None
    ]


def _under_parameters(model: ModelSpec, error: InvalidInputError) -> InvalidInputError:
    """The core's issues located as the request sent them: an option the core names by itself (a
    /v1 body's field) is one of the request's ``parameters``, where binding locates a wrong type."""
    issues = [
        Issue(("parameters", *issue.loc), issue.msg, issue.kind)
        if issue.loc and issue.loc[0] in model.parameter_specs
        else issue
        for issue in error.issues
    ]
    return InvalidInputError(issues)


def _names(names: tuple[str, ...] | list[str]) -> str:
    return ", ".join(names)


def _bind_inputs(model: ModelSpec, tensors: tuple[Tensor, ...]) -> dict[str, Tensor]:
    aliases = dict(model.aliases)
    issues: list[Issue] = []
    bound: dict[str, Tensor] = {}
    for tensor in tensors:
        name = aliases.get(tensor.name, tensor.name)
        spec = model.input_specs.get(name)
        if spec is None:
            known = _names(list(model.input_specs))
            msg = f"input '{tensor.name}' is not an input of model '{model.name}'; it takes {known}"
            issues.append(Issue((tensor.name,), msg, "unknown_input"))
            continue
        if name in bound:
            alias = next(other for other, target in model.aliases if target == name)
            msg = f"send the input '{name}' either as '{name}' or as its alias '{alias}', not both"
            issues.append(Issue((tensor.name,), msg, "alias_conflict"))
            continue
        if tensor.datatype not in spec.datatypes:
            accepted = _names(spec.datatypes)
            msg = f"input '{tensor.name}': datatype {tensor.datatype} is not accepted; use {accepted}"
            issues.append(Issue((tensor.name, "datatype"), msg, "datatype"))
        bound[name] = tensor
    for group in model.choices:
        given = [name for name in group if name in bound]
        if not given:
            what = f"one of the inputs {_names(group)}" if len(group) > 1 else f"the input '{group[0]}'"
            issues.append(Issue((), f"model '{model.name}' needs {what}", "missing"))
        elif len(given) > 1:
            msg = f"send only one of the inputs {_names(group)} (found: {_names(given)})"
            issues.append(Issue((), msg, "input_choice"))
    if issues:
        raise InvalidInputError(issues)
    return bound


_KIND_CHECKS: Final[dict[ParameterKind, tuple[str, Callable[[ParameterValue], bool]]]] = {
    "integer": ("an integer", lambda value: isinstance(value, int) and not isinstance(value, bool)),
    "number": ("a number", lambda value: isinstance(value, int | float) and not isinstance(value, bool)),
    "string": ("a string", lambda value: isinstance(value, str)),
}


def _bind_parameters(model: ModelSpec, parameters: Mapping[str, ParameterValue]) -> dict[str, ParameterValue]:
    if not parameters:
        return {}
    specs = model.parameter_specs
    issues: list[Issue] = []
    for name, value in parameters.items():
        spec = specs.get(name)
        if spec is None:
            known = _names([*specs, "binary_data_output"])
            msg = f"parameter '{name}' is not a parameter of model '{model.name}'; it takes {known}"
            issues.append(Issue(("parameters", name), msg, "unknown_parameter"))
            continue
        what, accepts = _KIND_CHECKS[spec.kind]
        if not accepts(value):
            shown = orjson.dumps(value).decode()
            msg = f"parameter '{name}' must be {what}, not {shown}"
            issues.append(Issue(("parameters", name), msg, "type"))
    if issues:
        raise InvalidInputError(issues)
    return dict(parameters)


def _check_outputs(model: ModelSpec, names: list[str]) -> None:
    if model.output_names.issuperset(names):
        return
    known = _names([spec.name for spec in model.outputs])
    issues = [
        Issue(
            ("outputs", name),
            f"output '{name}' is not an output of model '{model.name}'; it has {known}",
            "unknown_output",
        )
        for name in names
        if name not in model.output_names
    ]
    if issues:
        raise InvalidInputError(issues)
