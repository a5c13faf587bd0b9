"""The dependency rule: the core is pure NumPy and knows nothing of HTTP."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import service

CORE = Path(service.__file__).parent / "core"
WEB_PACKAGES = {"fastapi", "starlette", "pydantic", "pydantic_core", "pydantic_settings", "uvicorn"}
ALLOWED_TOP_LEVEL = {"numpy", "service", "__future__"}


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


CORE_FILES = sorted(CORE.rglob("*.py"))


@pytest.mark.parametrize("path", CORE_FILES, ids=[p.name for p in CORE_FILES])
def test_core_modules_import_only_numpy_and_the_standard_library(path: Path) -> None:
    for module in _imported_modules(path):
        top = module.split(".")[0]
        assert top not in WEB_PACKAGES, f"{path.name} imports {module}"
        assert top in ALLOWED_TOP_LEVEL or top in sys.stdlib_module_names, (
            f"{path.name} imports {module}: the core depends on NumPy alone"
        )
        if top == "service":
            assert module.startswith("service.core"), f"{path.name} imports {module}"


def test_importing_the_core_loads_no_web_framework() -> None:
    code = (
        "import sys, service.core; "
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {sorted(WEB_PACKAGES)!r}); "
        "print(','.join(loaded))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""


def test_importing_the_app_module_reads_no_environment() -> None:
    # create_app takes its settings; importing service.main must neither read XENT_* nor fail on them.
    code = "import service.main, service.settings"
    env = {"XENT_PORT": "not-a-port", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
