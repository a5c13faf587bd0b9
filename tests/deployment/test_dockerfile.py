"""The Dockerfile, read: hadolint finds nothing, and its structure keeps the promises made for it.

The image itself is built and run in test_image.py; these checks are fast and need no system tools.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deployment.tools import ROOT, venv_tool

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    result: list[Instruction] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or not stripped:
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        result.append(Instruction(keyword.upper(), " ".join(arguments.split())))
        pending = ""
    assert not pending, "the Dockerfile ends in a continuation line"
    return result


def stages(parsed: list[Instruction]) -> list[list[Instruction]]:
    """Instructions grouped by stage, each starting at its FROM (global ARGs before the first are dropped)."""
    grouped: list[list[Instruction]] = []
    for instruction in parsed:
        if instruction.keyword == "FROM":
            grouped.append([])
        if grouped:
            grouped[-1].append(instruction)
    return grouped


def exec_form(arguments: str) -> list[str]:
    value = json.loads(arguments)
    assert isinstance(value, list) and all(isinstance(item, str) for item in value), arguments
    return value


@pytest.fixture(scope="module")
def parsed() -> list[Instruction]:
    return instructions(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def final(parsed: list[Instruction]) -> list[Instruction]:
    return stages(parsed)[-1]


def only(stage: list[Instruction], keyword: str) -> Instruction:
    found = [instruction for instruction in stage if instruction.keyword == keyword]
    assert len(found) == 1, f"the final stage has {len(found)} {keyword} instructions"
    return found[0]


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [venv_tool("hadolint"), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_hadolint_does_report_problems(tmp_path: Path) -> None:
    """The check above means something: the same hadolint flags a Dockerfile with known problems."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install fastapi\nCMD python -m service\n")
    result = subprocess.run(
        [venv_tool("hadolint"), "--no-color", "--format", "json", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    codes = {finding["code"] for finding in json.loads(result.stdout)}
    assert result.returncode != 0
    assert {"DL3007", "DL3013", "DL3042", "DL3025"} <= codes


def test_base_image_is_an_argument_defaulting_to_an_official_slim_python(parsed: list[Instruction]) -> None:
    first = parsed[0]
    assert first.keyword == "ARG"
    name, _, default = first.arguments.partition("=")
    assert name == "BASE_IMAGE"
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-[a-z]+)?", default), default
    for stage in stages(parsed):
        assert stage[0].arguments.split()[0] == "${BASE_IMAGE}", stage[0]


def test_multi_stage_and_the_final_stage_takes_only_the_virtual_environment(
    parsed: list[Instruction], final: list[Instruction]
) -> None:
    assert len(stages(parsed)) >= 2
    copies = [instruction.arguments for instruction in final if instruction.keyword in ("COPY", "ADD")]
    assert copies == ["--from=build /opt/venv /opt/venv"]
    # No package manager, compiler or pip runs in the final stage: nothing to clean up after.
    assert [instruction for instruction in final if instruction.keyword == "RUN"] == []


def test_final_stage_runs_as_a_numeric_non_root_user(final: list[Instruction]) -> None:
    user = only(final, "USER").arguments
    match = re.fullmatch(r"(\d+)(?::(\d+))?", user)
    assert match, f"USER {user} is not numeric (Kubernetes' runAsNonRoot can only verify numbers)"
    assert int(match.group(1)) != 0 and int(match.group(2) or 1) != 0
    keywords = [instruction.keyword for instruction in final]
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k in ("COPY", "RUN", "WORKDIR"))


def test_starts_the_service_on_all_interfaces_in_exec_form(final: list[Instruction]) -> None:
    command: list[str] = []
    for keyword in ("ENTRYPOINT", "CMD"):
        found = [instruction for instruction in final if instruction.keyword == keyword]
        if found:
            command += exec_form(found[-1].arguments)
    assert command[:5] == ["python", "-m", "service", "--host", "0.0.0.0"], command
    assert only(final, "EXPOSE").arguments == "8000"


def test_healthcheck_asks_readiness_with_urllib(final: list[Instruction]) -> None:
    healthcheck = only(final, "HEALTHCHECK").arguments
    options, _, command = healthcheck.partition("CMD ")
    assert re.search(r"--interval=\d+s", options) and re.search(r"--timeout=\d+s", options)
    argv = exec_form(command)
    assert argv[:2] == ["python", "-c"]
    code = argv[2]
    assert "urllib.request" in code and "/health/ready" in code and "XENT_PORT" in code
    compile(code, "HEALTHCHECK", "exec")  # it is valid Python


def test_python_runtime_environment(final: list[Instruction]) -> None:
    env = " ".join(instruction.arguments for instruction in final if instruction.keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "PYTHONUNBUFFERED=1" in env
    assert 'PATH="/opt/venv/bin:${PATH}"' in env


def test_dependencies_are_installed_before_the_source_is_copied(parsed: list[Instruction]) -> None:
    build = next(stage for stage in stages(parsed) if stage[0].arguments.endswith(" AS build"))
    steps = [f"{instruction.keyword} {instruction.arguments}" for instruction in build]
    dependencies = next(
        i for i, step in enumerate(steps) if "pip install" in step and "-r requirements" in step
    )
    source = next(i for i, step in enumerate(steps) if step.startswith("COPY service"))
    assert dependencies < source
    # What the dependency layer depends on is the lock file only (every version pinned, with hashes):
    # an edit of the code or of pyproject.toml leaves it cached, and PyPI's news do not reach it.
    before = [step for step in steps[:dependencies] if step.startswith(("COPY", "ADD"))]
    assert before == ["COPY requirements.txt ./"]
    assert "--require-hashes -r requirements.txt" in steps[dependencies]


def test_pip_gets_build_settings_only_from_secrets(parsed: list[Instruction]) -> None:
    pip_runs = [i for i in parsed if i.keyword == "RUN" and re.search(r"\bpip install\b", i.arguments)]
    assert len(pip_runs) == 2
    for run in pip_runs:
        words = shlex.split(run.arguments)
        assert "--mount=type=secret,id=pip.conf" in words
        assert "--mount=type=secret,id=pip-ca.crt" in words
        assert "PIP_CONFIG_FILE=/run/secrets/pip.conf" in words
        assert "--no-cache-dir" in words
    text = DOCKERFILE.read_text()
    # No certificate or proxy of a build machine is baked in: not as a file, an ARG or an ENV.
    for instruction in parsed:
        if instruction.keyword in ("ARG", "ENV", "COPY", "ADD"):
            assert not re.search(r"cert|proxy|index-url|pip\.conf", instruction.arguments, re.IGNORECASE)
    assert "ca-certificates.crt" not in text


def test_dockerignore_admits_what_the_dockerfile_copies_and_nothing_else(parsed: list[Instruction]) -> None:
    patterns = [
        line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and line[0] != "#"
    ]
    assert patterns[0] == "*", "the context starts empty and names what it admits"
    admitted = {pattern[1:].rstrip("/") for pattern in patterns if pattern.startswith("!")}
    copied: set[str] = set()
    for instruction in parsed:
        if instruction.keyword in ("COPY", "ADD") and "--from=" not in instruction.arguments:
            *sources, _ = instruction.arguments.split()
            copied.update(source.rstrip("/") for source in sources)
    assert copied == admitted
    assert {"**/__pycache__", "**/*.py[cod]"} <= set(patterns)
    for path in copied:
        assert (ROOT / path).exists(), f"the Dockerfile copies {path}, which is not in the repository"
