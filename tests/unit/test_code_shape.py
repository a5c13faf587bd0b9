"""The code stays changeable: no module over about 400 lines, no function over 60 lines or above
complexity C (radon's cyclomatic complexity rank: A-C are 1-20)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from radon.complexity import cc_rank, cc_visit

import service

SOURCES = sorted(Path(service.__file__).parent.rglob("*.py"))
#: "About 400": the /v2 codec, one concern (request bytes to tensors), sits just above.
MAX_MODULE_LINES = 410
MAX_FUNCTION_LINES = 60
WORST_RANK = "C"


def _name(path: Path) -> str:
    return str(path.relative_to(Path(service.__file__).parent.parent))


def test_the_sources_are_found() -> None:
    assert any(path.name == "multiclass.py" for path in SOURCES)


@pytest.mark.parametrize("path", SOURCES, ids=_name)
def test_module_length(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{_name(path)} has {lines} lines"


@pytest.mark.parametrize("path", SOURCES, ids=_name)
def test_function_length(path: Path) -> None:
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{_name(path)}: {', '.join(long)}"


@pytest.mark.parametrize("path", SOURCES, ids=_name)
def test_complexity(path: Path) -> None:
    complex_blocks = [
        f"{block.name} ({cc_rank(block.complexity)}, {block.complexity})"
        for block in cc_visit(path.read_text())
        if cc_rank(block.complexity) > WORST_RANK
    ]
    assert not complex_blocks, f"{_name(path)}: {', '.join(complex_blocks)}"
