"""A /v1 JSON body -> its request model, each size by the cheapest way that reads it as pydantic would.

* Large bodies (``BULK_MIN_BODY_BYTES`` and more): the large number arrays are decoded straight to
  NumPy and the rest validated as a document (``service.api.bulk_json``).
* Small bodies (``SMALL_BODY_BYTES`` at most) whose keys are plainly fine: orjson's document, parsed
  once for the key check and validated as the large path validates its documents
  (``service.api.json_keys.small_document``).
* Any other body: its keys scanned (``check_keys``), then pydantic-core's JSON parser.

Whichever way, the same body gets the same model or the same errors (``tests/api/test_bad_requests.py``
checks every refused body both ways).
"""

from __future__ import annotations

from collections.abc import Collection

from pydantic import BaseModel

from service.api.arrays import ArrayLimits, decode_context
from service.api.bulk_json import BULK_MIN_BODY_BYTES, decode_bulk
from service.api.json_keys import SMALL_BODY_BYTES, check_keys, small_document

__all__ = ["parse_json_request"]


def parse_json_request(
    model: type[BaseModel],
    body: bytearray,
    *,
    array_fields: Collection[str],
    known_keys: Collection[str],
    limits: ArrayLimits,
) -> BaseModel:
    """``body`` validated into ``model``; raises ``ValidationError`` or ``InvalidInputError``.

    ``array_fields``: the model's tensor fields; ``known_keys``: what its top-level object may hold
    (a /v1 body is one flat object: keys are checked at that level only).
    """

    def keys_checked(text: bytes | bytearray, *, quick: bool = True) -> None:
        check_keys(text, known_keys, max_depth=1, quick=quick)

    if len(body) >= BULK_MIN_BODY_BYTES:
        document = decode_bulk(body, array_fields, max_dims=limits.max_dims, check_envelope=keys_checked)
        if document is not None:
            # The large arrays are checked already; the lists left (under MIN_SPAN_BYTES of text)
            # are walked for booleans, which costs less than searching the whole body.
            return model.model_validate(document, context={"limits": limits, "may_contain_bool": True})
    context = decode_context(body, limits)
    if len(body) <= SMALL_BODY_BYTES:
        small = small_document(body, known_keys)
        if isinstance(small, dict):
            # The models' unknown-field check runs on a dict whichever the parser.
            return model.model_validate(small, context=context)
    keys_checked(body, quick=False)  # the quick way, for a small body, was small_document
    return model.model_validate_json(body, context=context)
