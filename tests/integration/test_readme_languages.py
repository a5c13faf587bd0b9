"""The README's examples for other languages (Python with httpx, JavaScript's fetch) run against a real
service and print what they say they print."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.live import LiveServer

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## From other languages"


def _block(language: str) -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index(SECTION) : text.index("\n## ", text.index(SECTION) + len(SECTION))]
    match = re.search(rf"```{language}\n(.*?)```", section, re.DOTALL)
    assert match, f"the README's '{SECTION}' lost its {language} example"
    return match.group(1)


def _shown(code: str, comment: str) -> str:
    """What the example's last print line says it prints, up to the first '...'."""
    line = next(line for line in reversed(code.splitlines()) if comment in line)
    return line.split(comment, 1)[1].strip().split("...")[0]


def test_the_httpx_example(live_server: LiveServer, tmp_path: Path) -> None:
    code = _block("python").replace("http://127.0.0.1:8000", live_server.url)
    script = tmp_path / "example.py"
    script.write_text(code)
    run = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == _shown(code, "# ")


def test_the_javascript_example(live_server: LiveServer, tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip(
            "NOT TESTED: the README's JavaScript example. No `node` (Debian's nodejs) on this machine"
        )
    code = _block("js").replace("http://127.0.0.1:8000", live_server.url)
    script = tmp_path / "example.mjs"  # a module: top-level await
    script.write_text(code)
    run = subprocess.run([node, str(script)], capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(_shown(code, "// ")), run.stdout
