"""What each lock file is made from, and a hash of it: the requirement lists of the pyproject files.

    python tests/lock_inputs.py requirements.txt     # prints the hash scripts/lock writes in that file

``scripts/lock`` records the hash in the lock's second line; ``tests/test_project_files.py``
recomputes it, so a dependency changed in a pyproject file without a new lock fails the tests.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _project(path: str) -> dict[str, object]:
    project: dict[str, object] = tomllib.loads((ROOT / path).read_text())["project"]
    return project


def requirement_lists(lock: str) -> dict[str, list[str]]:
    """The requirement lists a lock file is resolved from, by where they are declared."""
    service = _project("pyproject.toml")
    lists = {"pyproject.toml dependencies": list(service["dependencies"])}  # type: ignore[call-overload]
    if lock == "requirements-test.txt":
        client = _project("client/pyproject.toml")
        lists["pyproject.toml test"] = list(service["optional-dependencies"]["test"])  # type: ignore[index]
        lists["client/pyproject.toml dependencies"] = list(client["dependencies"])  # type: ignore[call-overload]
        lists["client/pyproject.toml progress"] = list(client["optional-dependencies"]["progress"])  # type: ignore[index]
    elif lock != "requirements.txt":
        raise ValueError(f"no such lock file: {lock}")
    return lists


def inputs_hash(lock: str) -> str:
    text = json.dumps(requirement_lists(lock), sort_keys=True)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


if __name__ == "__main__":
    print(inputs_hash(Path(sys.argv[1]).name))
