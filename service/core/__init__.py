"""The computational core: pure NumPy, no web framework.

Every function here takes and returns NumPy arrays and plain Python values, validates its input
before computing, and raises ``InvalidInputError`` (a ``ValueError``) listing what is wrong.
"""

from service.core.binary import (
    DEFAULT_BINARY_OUTPUTS,
    BinaryCrossEntropyResult,
    BinaryInputKind,
    BinaryOutput,
    binary_cross_entropy,
    log_sigmoid,
    sigmoid,
)
from service.core.divergence import BASES, Base, DivergenceResult, divergence
from service.core.errors import InvalidInputError, Issue, Loc, format_loc
from service.core.kernels import get_threads, set_threads
from service.core.multiclass import (
    DEFAULT_IGNORE_INDEX,
    DEFAULT_OUTPUTS,
    CrossEntropyOutput,
    CrossEntropyResult,
    InputKind,
    cross_entropy,
)
from service.core.options import DEFAULT_EPSILON, ComputeDtype, Reduction
from service.core.softmax import (
    FloatArray,
    default_dim,
    log_softmax,
    logsumexp,
    softmax,
    softmax_and_log_softmax,
    tempered_softmax,
)

__all__ = [
    "BASES",
    "DEFAULT_BINARY_OUTPUTS",
    "DEFAULT_EPSILON",
    "DEFAULT_IGNORE_INDEX",
    "DEFAULT_OUTPUTS",
    "Base",
    "BinaryCrossEntropyResult",
    "BinaryInputKind",
    "BinaryOutput",
    "ComputeDtype",
    "CrossEntropyOutput",
    "CrossEntropyResult",
    "DivergenceResult",
    "FloatArray",
    "InputKind",
    "InvalidInputError",
    "Issue",
    "Loc",
    "Reduction",
    "binary_cross_entropy",
    "cross_entropy",
    "default_dim",
    "divergence",
    "format_loc",
    "get_threads",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "set_threads",
    "sigmoid",
    "softmax",
    "softmax_and_log_softmax",
    "tempered_softmax",
]
