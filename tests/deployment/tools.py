"""Helpers shared by the deployment tests: where things are, free ports, and tools that may be missing."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"

#: The Debian packages behind the tests that need system tools (see scripts/install-system-packages).
INSTALL_HINT = "scripts/install-system-packages installs it (it needs apt-get and root)"

#: The seed example of the README: the article's two samples, and the loss PyTorch gives for them.
SEED_REQUEST = {"logits": [[-1, 0.5, 2], [-1, 0.5, 3]], "target": [1, 2]}
SEED_LOSS = 0.9184928130357697


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def venv_tool(name: str) -> str:
    """A console script installed beside the running interpreter (the test extra's tools)."""
    path = Path(sys.executable).parent / name
    if path.is_file() and os.access(path, os.X_OK):
        return str(path)
    found = shutil.which(name)
    if found is None:
        # A Python test dependency, not a system package: missing means the environment is broken.
        pytest.fail(f"{name} is not installed: it comes with the test extra (pip install -e '.[test]')")
    return found


def system_tool(name: str, package: str, why: str) -> str:
    """The path of a system program, or a loud skip that says what is not being tested."""
    found = shutil.which(name)
    if found is None:
        pytest.skip(
            f"NOT TESTED: {why}. `{name}` (Debian package {package}) is not installed; {INSTALL_HINT}."
        )
    return found
