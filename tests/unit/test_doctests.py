"""The examples in the core's docstrings run, and give what they say."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import service.core

MODULES = sorted(
    f"service.core.{info.name}" for info in pkgutil.iter_modules(service.core.__path__) if not info.ispkg
)


def test_every_core_module_is_found() -> None:
    assert "service.core.multiclass" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed"
