"""The project's own files keep their promises: the lock files are current, complete and what the test
run installed; the pre-commit hook runs the test command's static checks.

``requirements.txt`` (the service) and ``requirements-test.txt`` (with the test tools and the client)
are made by ``scripts/lock``; the Dockerfile, the README's start command and ``scripts/test`` install
them with ``pip --require-hashes``, so the image and the tests run the same versions.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.lock_inputs import ROOT, inputs_hash, requirement_lists

LOCKS = ("requirements.txt", "requirements-test.txt")
_PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^ ;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def _pins(lock: str) -> dict[str, str]:
    """{package: version} of the pins that apply to this interpreter (their markers evaluated)."""
    pins: dict[str, str] = {}
    for line in (ROOT / lock).read_text().splitlines():
        match = _PIN.match(line)
        if match is None:
            continue
        name, version, marker = match.groups()
        if marker is None or Requirement(f"x; {marker}").marker.evaluate():  # type: ignore[union-attr]
            pins[canonicalize_name(name)] = version
    return pins


@pytest.mark.parametrize("lock", LOCKS)
def test_the_lock_was_made_from_the_current_requirements(lock: str) -> None:
    recorded = (ROOT / lock).read_text().splitlines()[1]
    assert recorded == f"# inputs: {inputs_hash(lock)}", f"{lock} is stale: run scripts/lock"


@pytest.mark.parametrize("lock", LOCKS)
def test_every_requirement_is_pinned_to_a_version_it_accepts(lock: str) -> None:
    pins = _pins(lock)
    for where, requirements in requirement_lists(lock).items():
        for text in requirements:
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate():
                continue
            version = pins.get(canonicalize_name(requirement.name))
            assert version is not None, f"{requirement.name} ({where}) is not in {lock}"
            assert requirement.specifier.contains(version, prereleases=True), (text, version)


@pytest.mark.parametrize("lock", LOCKS)
def test_every_pin_has_a_hash(lock: str) -> None:
    text = (ROOT / lock).read_text()
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    for block in blocks:
        if "==" in block.splitlines()[0]:
            assert "--hash=sha256:" in block, block.splitlines()[0]


def test_the_image_and_the_tests_get_the_same_versions() -> None:
    service, test = _pins("requirements.txt"), _pins("requirements-test.txt")
    assert service, "no pins read"
    assert {name: test.get(name) for name in service} == service


def test_this_test_run_installed_the_locked_versions() -> None:
    """scripts/test installs requirements-test.txt: what is installed is what is locked."""
    different: dict[str, tuple[str, str | None]] = {}
    for name, version in _pins("requirements-test.txt").items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            different[name] = (version, None)
            continue
        if installed != version:
            different[name] = (version, installed)
    assert not different, f"locked vs installed (run scripts/test, which installs the lock): {different}"


def test_the_lock_files_are_where_the_readme_and_the_dockerfile_say() -> None:
    assert "requirements.txt" in (ROOT / "Dockerfile").read_text()
    assert "--require-hashes -r requirements.txt" in (ROOT / "README.md").read_text()
    assert "--require-hashes" in (ROOT / "scripts/test").read_text()
    assert Path(ROOT / "scripts/lock").stat().st_mode & 0o111


def test_the_pre_commit_hook_runs_the_test_commands_static_checks() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    (hook,) = [hook for repo in config["repos"] for hook in repo["hooks"]]
    assert hook["entry"] == "scripts/lint" and hook["pass_filenames"] is False
    assert 'scripts/lint "$VENV"' in (ROOT / "scripts/test").read_text()
    lint = (ROOT / "scripts/lint").read_text()
    assert all(check in lint for check in ('ruff" check .', 'ruff" format --check .', 'mypy"'))
