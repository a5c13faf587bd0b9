"""Errors the core raises for input it refuses.

The core checks every input before it computes, and reports all it finds at once. Each problem is an
``Issue``: where it is (``loc``, a path such as ``("target", 3)``), what is wrong (``msg``, a sentence
that names the field and the position), and a short machine-readable ``kind``. The HTTP layer turns an
``InvalidInputError`` into a 422 problem+json; nothing here knows about HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MAX_REPORTED_ISSUES", "InvalidInputError", "Issue", "Loc", "format_loc"]

Loc = tuple[str | int, ...]

#: How many element-level problems of one kind are spelled out before the rest are only counted.
MAX_REPORTED_ISSUES = 5


@dataclass(frozen=True, slots=True)
class Issue:
    """One thing wrong with the input."""

    loc: Loc
    msg: str
    kind: str


class InvalidInputError(ValueError):
    """The input cannot be computed on; ``issues`` says why, one entry per problem found."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        if not issues:
            raise ValueError("InvalidInputError needs at least one issue")
        self.issues: tuple[Issue, ...] = tuple(issues)
        super().__init__("; ".join(issue.msg for issue in self.issues))

    @classmethod
    def single(cls, loc: Loc, msg: str, kind: str) -> InvalidInputError:
        return cls([Issue(loc, msg, kind)])


def format_loc(loc: Loc) -> str:
    """Render a location the way a reader writes it: ``("logits", 0, 2)`` -> ``logits[0][2]``.

    ``":"`` stands for a whole axis: ``("probabilities", 3, ":")`` -> ``probabilities[3][:]``.
    """
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif part == ":":
            parts.append("[:]")
        elif parts:
            parts.append(f".{part}")
        else:
            parts.append(part)
    return "".join(parts)
