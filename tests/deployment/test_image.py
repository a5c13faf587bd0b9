"""The container image, built for real from the Dockerfile and run, with buildah (no Docker engine here).

Docker Hub is out of reach, so the base image is made here: mmdebstrap bootstraps Debian bookworm with
its python3 (3.11) and venv module, and ``python`` on PATH as in the official python images. That
tarball is imported into a private buildah storage (vfs driver, in a temporary directory removed at
the end), the real Dockerfile is built on it with ``buildah bud --build-arg BASE_IMAGE=...``, and the
service is started in the image with ``buildah run``, which (chroot isolation) shares the host's
network: the README's seed example must come back over loopback.

pip in the build reaches PyPI with this machine's pip settings (``pip config list``: index, CA bundle,
timeout), handed to the build as the two secrets the Dockerfile mounts (``pip.conf`` and
``pip-ca.crt``), so nothing of this machine lands in the image or in the Dockerfile.

The bootstrapped base is cached between runs as a tarball keyed by the hash of its recipe, under
``$XENT_IMAGE_TEST_CACHE`` (default ``~/.cache/xent-service/image-test``); a run from nothing makes it
(about 20 s). The whole module takes about a minute here.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deployment.tools import ROOT, SEED_LOSS, SEED_REQUEST, free_port, system_tool

# Time limits of the steps that make the image (seconds). The first test's limit must cover them all,
# since it builds the module's image in its setup, and leave time for the test itself (TEST_SECONDS):
# a step that times out then fails with its own output, not with pytest-timeout's stack dump.
BOOTSTRAP_SECONDS = 900  # mmdebstrap, when the base tarball is not cached
COMMAND_SECONDS = 120  # a short buildah command
IMPORT_SECONDS = 300  # buildah add, then buildah commit, of the base tarball
BUILD_SECONDS = 900  # buildah bud of the Dockerfile
TEST_SECONDS = 600
IMAGE_SECONDS = BOOTSTRAP_SECONDS + 2 * COMMAND_SECONDS + 2 * IMPORT_SECONDS + BUILD_SECONDS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(IMAGE_SECONDS + TEST_SECONDS)]

BASE_IMAGE = "localhost/xent-test-base"
IMAGE_USER = "10001:10001"

# The base image's recipe. Its hash names the cached tarball: change anything here and it is remade.
SUITE = "bookworm"
MIRROR = os.environ.get("XENT_DEBIAN_MIRROR", "http://deb.debian.org/debian")
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
BASE_HOOKS = (
    # The official images have `python` on PATH (in /usr/local/bin); Debian calls it python3.
    'ln -s /usr/bin/python3 "$1/usr/local/bin/python"',
    'rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin',
)
BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}

# Where the Dockerfile mounts its build secrets (a secret's default target is /run/secrets/<id>).
SECRET_DIR = "/run/secrets"
PIP_SETTINGS = ("index-url", "extra-index-url", "trusted-host", "timeout", "default-timeout", "retries")


def readme_build_command() -> list[str]:
    """The README's buildah command (the route for a machine without a Docker daemon), as words."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.startswith("buildah bud ")]
    assert len(lines) == 1, "the README gives one buildah command"
    words = shlex.split(lines[0])
    # What the README promises: the Docker format, which keeps the HEALTHCHECK; the repository as context.
    assert words[:2] == ["buildah", "bud"] and "--format" in words and words[-1] == "."
    assert words[words.index("--format") + 1] == "docker"
    return words


def cache_dir() -> Path:
    configured = os.environ.get("XENT_IMAGE_TEST_CACHE")
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "xent-service" / "image-test"


def tail(path: Path, lines: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Buildah:
    """buildah on a private storage: vfs driver, chroot isolation, nothing shared with the machine's."""

    exe: str
    root: Path

    def argv(self, *args: str) -> list[str]:
        return [
            self.exe,
            "--root",
            str(self.root / "storage"),
            "--runroot",
            str(self.root / "run"),
            "--storage-driver",
            "vfs",
            *args,
        ]

    def __call__(self, *args: str, timeout: float = COMMAND_SECONDS) -> str:
        result = subprocess.run(
            self.argv(*args), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
        assert result.returncode == 0, f"buildah {' '.join(args)} failed:\n{result.stderr}"
        return result.stdout

    def logged(self, log: Path, *args: str, timeout: float, cwd: Path | None = None) -> None:
        """A long command whose output goes to a file, shown when it fails."""
        with log.open("wb") as sink:
            result = subprocess.run(
                self.argv(*args),
                stdout=sink,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                cwd=cwd,
            )
        assert result.returncode == 0, f"buildah {args[0]} failed ({result.returncode}):\n{tail(log)}"

    def run(
        self, container: str, *command: str, env: dict[str, str] | None = None, user: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        options = [f"--env={key}={value}" for key, value in (env or {}).items()]
        if user is not None:
            options.append(f"--user={user}")
        return subprocess.run(
            self.argv("run", "--isolation", "chroot", *options, container, "--", *command),
            capture_output=True,
            text=True,
            timeout=COMMAND_SECONDS,
            stdin=subprocess.DEVNULL,
        )


@pytest.fixture(scope="module")
def buildah() -> Iterator[Buildah]:
    if os.geteuid() != 0:
        pytest.skip(
            "NOT TESTED: the container image. buildah (vfs storage, chroot isolation) and mmdebstrap are "
            f"run as root here, and this test runs as uid {os.geteuid()}."
        )
    exe = system_tool("buildah", "buildah", "the container image is not built")
    system_tool("mmdebstrap", "mmdebstrap", "the container image is not built (no base image)")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    if version.returncode != 0:
        pytest.skip(f"NOT TESTED: the container image. `buildah --version` fails: {version.stderr.strip()}")
    root = Path(tempfile.mkdtemp(prefix="xent-buildah-"))
    tool = Buildah(exe, root)
    try:
        yield tool
    finally:
        # Containers first (buildah unmounts them), then the storage itself.
        subprocess.run(tool.argv("rm", "--all"), capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)


def bootstrap_base(workdir: Path) -> Path:
    """The base rootfs as a tarball, made by mmdebstrap or taken from the cache."""
    hooks = [f"--customize-hook={hook}" for hook in BASE_HOOKS]
    options = ["--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", *hooks]
    recipe = json.dumps({"options": options, "suite": SUITE, "mirror": MIRROR}, sort_keys=True)
    key = hashlib.sha256(recipe.encode()).hexdigest()[:16]
    cache = cache_dir()
    tarball = cache / f"base-{SUITE}-{key}.tar"
    if tarball.is_file():
        return tarball
    cache.mkdir(parents=True, exist_ok=True)
    partial = workdir / tarball.name
    log = workdir / "mmdebstrap.log"
    with log.open("wb") as sink:
        result = subprocess.run(
            ["mmdebstrap", *options, SUITE, str(partial), MIRROR],
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=BOOTSTRAP_SECONDS,
        )
    assert result.returncode == 0, f"mmdebstrap failed ({result.returncode}):\n{tail(log)}"
    for stale in cache.glob(f"base-{SUITE}-*.tar"):
        stale.unlink()  # only the current recipe's tarball is kept
    shutil.move(partial, tarball)
    return tarball


def pip_secrets(directory: Path) -> list[str]:
    """``--secret`` options giving pip in the build this machine's settings and CA bundle."""
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=True
    ).stdout
    settings: dict[str, str] = {}
    for line in listed.splitlines():
        name, _, value = line.partition("=")
        section, _, key = name.partition(".")
        # Files win over defaults and the environment wins over files, as in pip itself.
        if section in ("global", ":env:") and (section == ":env:" or key not in settings):
            settings[key] = value.strip().strip("'\"")
    lines = ["[global]"]
    for key in PIP_SETTINGS:
        # Local paths and file:// indexes are this machine's, not the build container's.
        values = [v for v in settings.get(key, "").split() if not v.startswith(("file:", "/"))]
        if values:
            lines.append(f"{key} = {' '.join(values)}")
    options: list[str] = []
    cert = settings.get("cert") or os.environ.get("SSL_CERT_FILE", "")
    if cert and Path(cert).is_file():
        lines.append(f"cert = {SECRET_DIR}/pip-ca.crt")
        options.append(f"--secret=id=pip-ca.crt,src={cert}")
    config = directory / "pip.conf"
    config.write_text("\n".join(lines) + "\n")
    options.append(f"--secret=id=pip.conf,src={config}")
    return options


@pytest.fixture(scope="module")
def image(buildah: Buildah, tmp_path_factory: pytest.TempPathFactory) -> str:
    workdir = tmp_path_factory.mktemp("image")
    started = time.monotonic()
    tarball = bootstrap_base(workdir)
    bootstrapped = time.monotonic()

    container = buildah("from", "scratch").strip()
    buildah("add", container, str(tarball), "/", timeout=IMPORT_SECONDS)  # buildah add unpacks a tarball
    buildah("config", *(f"--env={k}={v}" for k, v in BASE_ENV.items()), "--cmd=python3", container)
    buildah("commit", "--rm", "--quiet", container, BASE_IMAGE, timeout=IMPORT_SECONDS)
    imported = time.monotonic()

    # The README's own command, word for word, with only this machine's storage (Buildah.argv), the
    # bootstrapped base image, chroot isolation and pip's settings added.
    documented = readme_build_command()
    tag = documented[documented.index("-t") + 1]
    buildah.logged(
        workdir / "build.log",
        *documented[1:-1],
        "--isolation=chroot",
        f"--build-arg=BASE_IMAGE={BASE_IMAGE}",
        *pip_secrets(workdir),
        documented[-1],  # the context: the repository (cwd)
        timeout=BUILD_SECONDS,
        cwd=ROOT,
    )
    built = time.monotonic()
    sys.stderr.write(
        f"image test: base {bootstrapped - started:.0f} s, import {imported - bootstrapped:.0f} s, "
        f"build {built - imported:.0f} s\n"
    )
    return f"localhost/{tag}"


@pytest.fixture(scope="module")
def config(buildah: Buildah, image: str) -> dict[str, Any]:
    inspected = json.loads(buildah("inspect", "--type", "image", image))
    docker_config: dict[str, Any] = inspected["Docker"]["config"]
    return docker_config


def test_image_runs_as_a_numeric_non_root_user_and_starts_the_service(config: dict[str, Any]) -> None:
    assert config["User"] == IMAGE_USER
    command = [*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])]
    assert command == ["python", "-m", "service", "--host", "0.0.0.0"]
    assert "8000/tcp" in config["ExposedPorts"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PATH"].startswith("/opt/venv/bin:")
    test = config["Healthcheck"]["Test"]
    assert test[0] == "CMD"
    assert "urllib" in " ".join(test) and "/health/ready" in " ".join(test)


CONTENTS = r"""
import json, os, shutil, sys
leftovers = ["/src", "/root/.cache", "/tmp/pip", "/opt/venv/src"]
leftovers += [os.path.join("/run/secrets", name) for name in ("pip.conf", "pip-ca.crt")]
archives = [
    os.path.join(directory, name)
    for top in ("/opt", "/app", "/root", "/tmp")
    for directory, _, names in os.walk(top)
    for name in names
    if name.endswith((".whl", ".tar.gz", ".zip"))
]
print(json.dumps({
    "uid": os.getuid(),
    "gid": os.getgid(),
    "cwd": os.getcwd(),
    "python": sys.executable,
    "compilers": [tool for tool in ("gcc", "cc", "c++", "clang", "make") if shutil.which(tool)],
    "leftovers": [path for path in leftovers if os.path.exists(path)] + archives,
    "tmp": os.listdir("/tmp"),
}))
"""


def test_image_holds_the_service_and_no_build_leftovers(buildah: Buildah, image: str) -> None:
    container = buildah("from", image).strip()
    # As root, so that nothing is hidden from the look by permissions.
    seen = buildah.run(container, "python", "-c", CONTENTS, user="0:0")
    assert seen.returncode == 0, seen.stderr
    facts = json.loads(seen.stdout)
    assert facts["python"] == "/opt/venv/bin/python"
    assert facts["cwd"] == "/app"
    assert facts["compilers"] == []
    assert facts["leftovers"] == []
    assert facts["tmp"] == []
    # As the image's own user: the package and its dependencies import from the virtual environment.
    imports = buildah.run(
        container, "python", "-c", "import os, fastapi, numpy, service; print(os.getuid(), service.__file__)"
    )
    assert imports.returncode == 0, imports.stderr
    uid, path = imports.stdout.split()
    assert uid == IMAGE_USER.split(":")[0]
    assert path.startswith("/opt/venv/lib/python3")


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the service in the image exited with {process.returncode}:\n{tail(log)}")
        try:
            if httpx.get(f"{url}/health/ready", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"the service in the image was not ready in {timeout} s:\n{tail(log)}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: buildah and what it started
            process.wait()


def test_service_in_the_image_answers_the_seed_example_over_loopback(
    buildah: Buildah, image: str, config: dict[str, Any], tmp_path: Path
) -> None:
    container = buildah("from", image).strip()
    rootfs = Path(buildah("mount", container).strip())
    started = time.time()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [*(config.get("Entrypoint") or []), *(config.get("Cmd") or []), "--port", str(port)]
    log = tmp_path / "service.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            buildah.argv("run", "--isolation", "chroot", container, "--", *command),
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        wait_ready(url, process, log)
        answer = httpx.post(f"{url}/v1/cross-entropy", json=SEED_REQUEST, timeout=10)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["loss"] == pytest.approx(SEED_LOSS, rel=1e-12, abs=0)
        assert body["count"] == 2
        assert httpx.get(f"{url}/health/ready", timeout=5).json() == {"status": "ready"}
        assert httpx.get(f"{url}/health/live", timeout=5).json() == {"status": "ok"}

        # The image's own HEALTHCHECK, run as Docker would, in a second container of the image.
        probe = buildah("from", image).strip()
        healthcheck = config["Healthcheck"]["Test"][1:]
        healthy = buildah.run(probe, *healthcheck, env={"XENT_PORT": str(port)})
        assert healthy.returncode == 0, healthy.stderr
        unhealthy = buildah.run(probe, *healthcheck, env={"XENT_PORT": str(free_port())})
        assert unhealthy.returncode != 0, "the HEALTHCHECK passes with no server behind it"
    finally:
        stop(process)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/health/live", timeout=2)
    # Serving wrote nothing to the image's file system (outside /tmp, and what the runtime itself sets
    # up), so the image runs on a read-only root file system, as docker-compose.yml and Kubernetes do.
    assert written_since(rootfs, started) == []


def written_since(rootfs: Path, since: float) -> list[str]:
    runtime = {"proc", "sys", "dev", "run", "tmp"}
    managed = {"etc/hosts", "etc/hostname", "etc/resolv.conf"}  # written by buildah run, as by Docker
    written: list[str] = []
    for directory, subdirectories, names in os.walk(rootfs):
        if Path(directory) == rootfs:
            subdirectories[:] = [name for name in subdirectories if name not in runtime]
        for name in names:
            path = Path(directory, name)
            relative = str(path.relative_to(rootfs))
            if relative not in managed and not path.is_symlink() and path.stat().st_mtime >= since:
                written.append(relative)
    return written
