"""Every curl example in the README gets the answer the README shows.

An example is a ``sh`` block with ``curl ... http://127.0.0.1:8000<path> ... -d '<body>'``; its
answer is either the ``# ...`` comment lines inside the block or the ``json`` block right after it.
``...`` in an answer stands for the rest of a number (after a digit) or for anything (elsewhere);
a ``request_id`` stands for any request id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.anyio

README = Path(__file__).resolve().parents[2] / "README.md"
_BLOCK = re.compile(r"```(sh|json)\n(.*?)```", re.DOTALL)
_CURL = re.compile(r"curl -s http://127\.0\.0\.1:8000(\S+).*?-d '(.*?)'", re.DOTALL)


@dataclass(frozen=True)
class Example:
    line: int
    path: str
    body: str
    answer: str


def _examples() -> list[Example]:
    text = README.read_text(encoding="utf-8")
    blocks = list(_BLOCK.finditer(text))
    examples = []
    for index, block in enumerate(blocks):
        kind, content = block.groups()
        curl = _CURL.search(content) if kind == "sh" else None
        if curl is None:
            continue
        comments = [line[1:] for line in content[curl.end() :].splitlines() if line.startswith("#")]
        answer = "".join(comments)
        if not answer and index + 1 < len(blocks):
            following = blocks[index + 1]
            if following.group(1) == "json" and not text[block.end() : following.start()].strip():
                answer = following.group(2)
        if answer:
            line = text.count("\n", 0, block.start()) + 1
            examples.append(Example(line, curl.group(1), curl.group(2), answer))
    return examples


def _pattern(answer: str) -> str:
    """The answer as a regular expression over whitespace-free JSON text."""
    text = re.sub(r"\s+", "", answer)
    text = text[: text.rindex("}") + 1]  # what follows the object is a remark ("= -log(0.0875) ...")
    pieces = re.split(r'(\.\.\.|"request_id":"[0-9a-f]+")', text)
    pattern = ""
    for previous, piece in zip(["", *pieces], pieces, strict=False):
        if piece == "...":
            pattern += r"[0-9eE+\-]*" if previous[-1:].isdigit() else ".*?"
        elif piece.startswith('"request_id"'):
            pattern += r'"request_id":"[0-9a-f]{32}"'
        else:
            pattern += re.escape(piece)
    return pattern


EXAMPLES = _examples()


def test_the_readme_has_its_examples() -> None:
    paths = {example.path for example in EXAMPLES}
    assert {"/v1/cross-entropy", "/v1/binary-cross-entropy", "/v1/softmax", "/v1/divergence"} <= paths
    assert any(path.startswith("/v2/") for path in paths)
    assert len(EXAMPLES) >= 7


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"README.md:{e.line}" for e in EXAMPLES])
async def test_the_readme_example_answers_as_shown(client: httpx.AsyncClient, example: Example) -> None:
    response = await client.post(
        example.path, content=example.body, headers={"content-type": "application/json"}
    )
    got = re.sub(r"\s+", "", response.text)
    shown = f"README.md:{example.line}\nshown: {example.answer}\ngot:   {got}"
    assert re.fullmatch(_pattern(example.answer), got), shown
