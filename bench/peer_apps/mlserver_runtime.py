"""A minimal MLServer runtime serving ``compute.cross_entropy`` over the v2 (Open Inference) protocol.

Loaded by ``mlserver start`` in its own virtual environment (``python -m bench.peers`` writes the
settings that name ``mlserver_runtime.CrossEntropyRuntime`` and puts this folder on PYTHONPATH).
"""

from __future__ import annotations

import numpy as np
from compute import cross_entropy  # type: ignore[import-not-found]
from mlserver import MLModel  # type: ignore[import-not-found]
from mlserver.codecs import NumpyCodec  # type: ignore[import-not-found]
from mlserver.types import InferenceRequest, InferenceResponse  # type: ignore[import-not-found]


class CrossEntropyRuntime(MLModel):  # type: ignore[misc]
    async def load(self) -> bool:
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        inputs = {tensor.name: NumpyCodec.decode_input(tensor) for tensor in payload.inputs}
        loss, losses, softmax = cross_entropy(inputs["logits"], inputs["target"])
        return InferenceResponse(
            model_name=self.name,
            outputs=[
                NumpyCodec.encode_output("loss", np.array([loss])),
                NumpyCodec.encode_output("losses", losses),
                NumpyCodec.encode_output("softmax", softmax),
            ],
        )
