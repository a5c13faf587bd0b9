"""A minimal MLServer runtime serving ``compute.cross_entropy`` over the v2 (Open Inference) protocol.

Loaded by ``mlserver start`` in its own virtual environment (``python -m bench.peers`` writes the
settings that name ``mlserver_runtime.CrossEntropyRuntime`` and puts this folder on PYTHONPATH).
"""

from __future__ import annotations

import numpy as np
from compute import cross_entropy
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse, ResponseOutput


class CrossEntropyRuntime(MLModel):
    async def load(self) -> bool:
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        inputs = {tensor.name: NumpyCodec.decode_input(tensor) for tensor in payload.inputs}
        loss, losses, softmax = cross_entropy(inputs["logits"], inputs["target"])
        return InferenceResponse(
            model_name=self.name,
            outputs=[
                _output("loss", np.array([loss])),
                _output("losses", losses),
                _output("softmax", softmax),
            ],
        )


def _output(name: str, values: np.ndarray) -> ResponseOutput:
    """FP64 with the array's own shape (NumpyCodec.encode_output would give a 1-D array a shape [N, 1])."""
    return ResponseOutput(name=name, shape=list(values.shape), datatype="FP64", data=values.ravel().tolist())
