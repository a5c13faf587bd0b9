"""One vocabulary: the names in ``service.core.vocabulary`` are the ones every layer serves.

Each test enumerates the core's names, so that a new output is checked everywhere without editing
these tests, and a layer that misses it fails here.
"""

from __future__ import annotations

from typing import Any, get_args

import numpy as np
import pytest

from service.api.schemas import (
    BinaryCrossEntropyRequest,
    BinaryCrossEntropyResponse,
    CrossEntropyRequest,
    CrossEntropyResponse,
)
from service.api.v2.docs import INFER_DESCRIPTION
from service.api.v2.registry import MODELS
from service.core import (
    BinaryOutput,
    CrossEntropyOutput,
    binary_cross_entropy,
    cross_entropy,
)
from service.core.vocabulary import (
    BINARY_METRICS,
    BINARY_OUTPUTS,
    CROSS_ENTROPY_METRICS,
    CROSS_ENTROPY_OUTPUTS,
    BinaryMetric,
    BinaryRequestOutput,
    CrossEntropyMetric,
    CrossEntropyRequestOutput,
    OutputInfo,
)

LOSSES: list[tuple[str, dict[str, OutputInfo], Any, Any, Any, dict[str, str], Any, Any]] = [
    (
        "cross_entropy",
        CROSS_ENTROPY_OUTPUTS,
        CrossEntropyOutput,
        CrossEntropyRequest,
        CrossEntropyResponse,
        CROSS_ENTROPY_METRICS,
        CrossEntropyMetric,
        CrossEntropyRequestOutput,
    ),
    (
        "binary_cross_entropy",
        BINARY_OUTPUTS,
        BinaryOutput,
        BinaryCrossEntropyRequest,
        BinaryCrossEntropyResponse,
        BINARY_METRICS,
        BinaryMetric,
        BinaryRequestOutput,
    ),
]


@pytest.mark.parametrize(
    ("model", "names", "literal", "request_model", "response_model", "metrics", "metric_literal", "asked"),
    LOSSES,
)
def test_every_layer_knows_every_output(
    model: str,
    names: dict[str, OutputInfo],
    literal: Any,
    request_model: Any,
    response_model: Any,
    metrics: dict[str, str],
    metric_literal: Any,
    asked: Any,
) -> None:
    assert tuple(names) == get_args(literal)
    assert tuple(metrics) == get_args(metric_literal)
    assert get_args(asked) == (*names, *metrics)  # what a request may ask for: the arrays, then the metrics
    schema = request_model.model_json_schema()["properties"]["outputs"]
    assert schema["items"]["enum"] == [*names, *metrics]
    assert schema["maxItems"] == len(names) + len(metrics)
    response = response_model.model_json_schema()["properties"]
    for name, info in names.items():
        assert response[name]["description"] == info.description
    for name, description in metrics.items():
        assert response[name]["description"] == description
    specs = {spec.name: spec for spec in MODELS[model].outputs}
    for name, info in names.items():
        assert specs[name].metadata_datatype == ("INT64" if info.integer else "FP32"), name
        assert len(specs[name].shape) == (1 if info.shape == "batch" else 2), name


def test_the_v2_description_names_every_model_input_parameter_and_output() -> None:
    for model in MODELS.values():
        mentioned = [model.name, *(spec.name for spec in model.inputs)]
        mentioned += [spec.name for spec in model.parameters] + [spec.name for spec in model.outputs]
        for name in mentioned:
            assert f"`{name}`" in INFER_DESCRIPTION, f"{model.name}: {name}"


@pytest.mark.parametrize("size", ["small", "large"])
@pytest.mark.parametrize("name", list(CROSS_ENTROPY_OUTPUTS))
def test_each_cross_entropy_output_is_computed_alone(name: CrossEntropyOutput, size: str) -> None:
    rows = 2 if size == "small" else 40  # 6 numbers take the small path, 120 the general one
    x = np.tile([[-1.0, 0.5, 2.0]], (rows, 1))
    result = cross_entropy(x, np.ones(rows, dtype=np.int64), outputs=[name])
    info = CROSS_ENTROPY_OUTPUTS[name]
    for other in CROSS_ENTROPY_OUTPUTS:
        value = getattr(result, other)
        if other != name:
            assert value is None, other
            continue
        assert value is not None
        assert value.shape == ((rows,) if info.shape == "batch" else x.shape)
        assert (value.dtype.kind in "iu") == info.integer


@pytest.mark.parametrize("size", ["small", "large"])
@pytest.mark.parametrize("name", list(CROSS_ENTROPY_METRICS))
def test_each_cross_entropy_metric_is_computed_alone(name: CrossEntropyMetric, size: str) -> None:
    rows = 2 if size == "small" else 40
    x = np.tile([[-1.0, 0.5, 2.0]], (rows, 1))
    result = cross_entropy(x, np.ones(rows, dtype=np.int64), outputs=[name])
    assert result.losses is None and result.softmax is None and result.log_softmax is None
    for other in CROSS_ENTROPY_METRICS:
        assert (getattr(result, other) is not None) == (other == name), other


@pytest.mark.parametrize("name", list(BINARY_METRICS))
def test_each_binary_metric_is_computed_alone(name: BinaryMetric) -> None:
    x = np.array([[0.5, -1.0], [2.0, 0.0]])
    result = binary_cross_entropy(x, np.array([[1.0, 0.0], [0.0, 1.0]]), outputs=[name])
    assert result.losses is None and result.sigmoid is None
    for other in BINARY_METRICS:
        assert (getattr(result, other) is not None) == (other == name), other


@pytest.mark.parametrize("name", list(BINARY_OUTPUTS))
def test_each_binary_output_is_computed_alone(name: BinaryOutput) -> None:
    x = np.array([[0.5, -1.0], [2.0, 0.0]])
    result = binary_cross_entropy(x, np.array([[1.0, 0.0], [0.0, 1.0]]), outputs=[name])
    for other, info in BINARY_OUTPUTS.items():
        value = getattr(result, other)
        if other != name:
            assert value is None, other
            continue
        assert value is not None and value.shape == x.shape
        assert (value.dtype.kind in "iu") == info.integer
