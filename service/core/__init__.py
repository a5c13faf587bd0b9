"""The computational core: pure NumPy, no web framework.

Every function here takes and returns NumPy arrays and plain Python values, validates its input
before computing, and raises ``InvalidInputError`` (a ``ValueError``) listing what is wrong.
"""

from service.core.cross_entropy import (
    DEFAULT_EPSILON,
    DEFAULT_IGNORE_INDEX,
    DEFAULT_OUTPUTS,
    ComputeDtype,
    CrossEntropyOutput,
    CrossEntropyResult,
    InputKind,
    Reduction,
    cross_entropy,
)
from service.core.errors import InvalidInputError, Issue, Loc, format_loc
from service.core.softmax import (
    FloatArray,
    log_softmax,
    logsumexp,
    softmax,
    softmax_and_log_softmax,
)

__all__ = [
    "DEFAULT_EPSILON",
    "DEFAULT_IGNORE_INDEX",
    "DEFAULT_OUTPUTS",
    "ComputeDtype",
    "CrossEntropyOutput",
    "CrossEntropyResult",
    "FloatArray",
    "InputKind",
    "InvalidInputError",
    "Issue",
    "Loc",
    "Reduction",
    "cross_entropy",
    "format_loc",
    "log_softmax",
    "logsumexp",
    "softmax",
    "softmax_and_log_softmax",
]
