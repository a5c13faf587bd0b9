"""A Python client of the reference cross-entropy service: NumPy in, exact answers out.

    from xent_client import Client

    with Client("http://127.0.0.1:8000") as client:
        print(client.cross_entropy(logits=[[-1, 0.5, 2], [-1, 0.5, 3]], target=[1, 2]).loss)

``Client`` (threads) and ``AsyncClient`` (asyncio) have one method per endpoint, and ``evaluate`` for
inputs of any size; every failure is a ``XentError``: ``ProblemError`` for an error answer of the
service, ``TransportError`` when it cannot be reached.
"""

from xent_client._client import AsyncClient, Client
from xent_client._errors import ErrorItem, ProblemError, ServiceUnavailableError, TransportError, XentError
from xent_client._evaluate import EvaluateResult
from xent_client._results import (
    BinaryCrossEntropyResult,
    CrossEntropyResult,
    DivergenceResult,
    FocalLossResult,
    SoftmaxResult,
)

__all__ = [
    "AsyncClient",
    "BinaryCrossEntropyResult",
    "Client",
    "CrossEntropyResult",
    "DivergenceResult",
    "ErrorItem",
    "EvaluateResult",
    "FocalLossResult",
    "ProblemError",
    "ServiceUnavailableError",
    "SoftmaxResult",
    "TransportError",
    "XentError",
]
__version__ = "0.1.0"
