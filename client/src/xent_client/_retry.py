"""When to try a request again, and how long to wait first.

Retried: a connection that could not be made or broke before the answer came (the request may never
have reached the service, and every operation is a pure computation, so sending it again is safe),
and the statuses that say "not now" rather than "not this": 408, 429, 502, 503, 504. A timeout waiting
for the answer is not retried (the service is busy with it; sending it again doubles the heaviest
work), nor is any other 4xx or 5xx: the same request would get the same answer.

The wait before retry ``n`` (0-based) is ``backoff * 2**n`` with "equal jitter" (uniformly between
half and all of it, so that many clients refused at once do not come back at once), and at least what
the answer's ``Retry-After`` asks (seconds or an HTTP date), capped at ``MAX_WAIT`` seconds.
"""

from __future__ import annotations

import email.utils
import random
import time
from typing import Final

import httpx

__all__ = ["MAX_WAIT", "RETRY_STATUSES", "retryable_error", "wait_before_retry"]

RETRY_STATUSES: Final = frozenset({408, 429, 502, 503, 504})
MAX_WAIT: Final = 60.0


def retryable_error(error: httpx.TransportError) -> bool:
    """A failure to connect or a broken connection; not a timeout waiting for the answer."""
    return not isinstance(error, httpx.ReadTimeout | httpx.WriteTimeout | httpx.PoolTimeout)


def _retry_after(value: str | None) -> float:
    if value is None:
        return 0.0
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    return max(0.0, when.timestamp() - time.time())


def wait_before_retry(attempt: int, backoff: float, retry_after: str | None = None) -> float:
    """Seconds to wait before retry number ``attempt`` (0 for the first)."""
    exponential = backoff * 2.0**attempt
    jittered = exponential * random.uniform(0.5, 1.0)
    return min(MAX_WAIT, max(jittered, _retry_after(retry_after)))
