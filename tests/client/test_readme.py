"""The READMEs' Python examples run against a real service and print what they say they print."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from tests.live import LiveServer

ROOT = Path(__file__).resolve().parents[2]


def client_examples(readme: Path) -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(encoding="utf-8"), re.DOTALL)
    return [str(block) for block in blocks if "from xent_client import Client" in block]


def first_example(readme: Path) -> str:
    return client_examples(readme)[0]


@pytest.mark.parametrize(
    "readme", [ROOT / "README.md", ROOT / "client" / "README.md"], ids=lambda p: p.parent.name
)
def test_the_python_example_prints_what_it_shows(live_server: LiveServer, readme: Path) -> None:
    code = first_example(readme)
    shown = [line.split("#", 1)[1].strip() for line in code.splitlines() if "print(" in line and "#" in line]
    assert shown, "the example shows what it prints"
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compile(code.replace("http://127.0.0.1:8000", live_server.url), str(readme), "exec"), {})
    printed = output.getvalue().splitlines()
    assert len(printed) == len(shown), printed
    for line, want in zip(printed, shown, strict=True):
        assert " ".join(line.split()) == " ".join(want.split())


def test_every_client_example_of_the_readme_runs(
    live_server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each self-contained snippet (the evaluate example writes its own sample files) runs as shown."""
    monkeypatch.chdir(tmp_path)
    examples = client_examples(ROOT / "README.md")
    assert len(examples) >= 2
    for code in examples:
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            exec(compile(code.replace("http://127.0.0.1:8000", live_server.url), "README.md", "exec"), {})
        assert output.getvalue().strip(), code
