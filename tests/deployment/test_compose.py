"""docker-compose.yml and the nginx proxy in front of the api replicas.

No Docker engine runs here, so the Compose file is checked against the Compose specification's JSON
schema (the copy that check-jsonschema ships, offline) and read for what matters; the nginx
configuration is checked by nginx itself and then run for real on loopback, in front of three real
replicas of the service, with a stub DNS server in the place of Docker's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.deployment.tools import DEPLOY, ROOT, SEED_LOSS, SEED_REQUEST, free_port, system_tool, venv_tool

COMPOSE = ROOT / "docker-compose.yml"
NGINX_CONF = DEPLOY / "nginx" / "nginx.conf"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def api(compose: dict[str, Any]) -> dict[str, Any]:
    service: dict[str, Any] = compose["services"]["api"]
    return service


@pytest.fixture(scope="module")
def proxy(compose: dict[str, Any]) -> dict[str, Any]:
    service: dict[str, Any] = compose["services"]["proxy"]
    return service


def check_compose_schema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [venv_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_compose_file_follows_the_compose_specification() -> None:
    result = check_compose_schema(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("services", "api", "readonly"), True),  # a misspelt key
        (("services", "api", "deploy", "resources", "limits", "memory_in_gb"), 2),
        (("services", "proxy", "ports"), "8000:8080"),
    ],
)
def test_the_schema_check_rejects_a_broken_file(
    compose: dict[str, Any], tmp_path: Path, where: tuple[str, ...], value: object
) -> None:
    """The check above means something: the same schema refuses a file with one thing wrong."""
    broken = yaml.safe_load(COMPOSE.read_text())
    node = broken
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    assert check_compose_schema(path).returncode != 0


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service["environment"]
    assert isinstance(env, dict), "environment is a mapping, one XENT_* variable a key"
    return {str(key): str(value) for key, value in env.items()}


def test_api_is_built_from_the_dockerfile_and_configured_by_environment(api: dict[str, Any]) -> None:
    assert api["build"]["context"] == "."
    assert (ROOT / api["build"]["context"] / api["build"]["dockerfile"]).is_file()
    env = environment(api)
    assert all(key.startswith("XENT_") for key in env)
    assert env["XENT_WORKERS"] == "1"  # one process per replica: scale with --scale
    assert int(env["XENT_MAX_BODY_BYTES"]) == 128 * MIB
    assert {"XENT_PORT", "XENT_MAX_ELEMENTS", "XENT_LOG_LEVEL"} <= set(env)


def test_api_is_reachable_only_through_the_proxy(api: dict[str, Any]) -> None:
    assert "ports" not in api, "the replicas publish no port: nginx is the way in"
    assert [str(port) for port in api["expose"]] == [environment(api)["XENT_PORT"]]


def test_api_is_locked_down_and_limited(api: dict[str, Any]) -> None:
    assert api["read_only"] is True
    assert any(str(mount).split(":")[0] == "/tmp" for mount in api["tmpfs"])
    assert api["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in api["security_opt"]
    limits = api["deploy"]["resources"]["limits"]
    assert float(limits["cpus"]) > 0
    assert re.fullmatch(r"\d+[kmg]", str(limits["memory"]))


def test_api_healthcheck_asks_readiness(api: dict[str, Any]) -> None:
    test = api["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    assert "urllib" in test[3]
    assert f"127.0.0.1:{environment(api)['XENT_PORT']}/health/ready" in test[3]
    compile(test[3], "healthcheck", "exec")
    assert {"interval", "timeout", "retries"} <= set(api["healthcheck"])


def test_proxy_publishes_a_port_and_waits_for_healthy_replicas(proxy: dict[str, Any]) -> None:
    assert proxy["image"].startswith("nginx:")
    assert proxy["depends_on"]["api"]["condition"] == "service_healthy"
    assert len(proxy["ports"]) == 1
    mounts = [str(volume).split(":") for volume in proxy["volumes"]]
    assert ["./deploy/nginx/nginx.conf", "/etc/nginx/nginx.conf", "ro"] in mounts
    assert (ROOT / "deploy" / "nginx" / "nginx.conf").is_file()
    assert proxy["read_only"] is True
    assert any(str(mount).split(":")[0] == "/tmp" for mount in proxy["tmpfs"])


def directive(conf: str, name: str) -> list[str]:
    """The arguments of every occurrence of a simple directive."""
    return [match.strip() for match in re.findall(rf"^\s*{name}\s+([^;]*);", conf, re.MULTILINE)]


def test_nginx_configuration_matches_the_compose_file(api: dict[str, Any], proxy: dict[str, Any]) -> None:
    conf = NGINX_CONF.read_text()
    container_port = str(proxy["ports"][0]).rsplit(":", 1)[-1]
    assert directive(conf, "listen") == [container_port]
    # Docker's embedded DNS, re-asked at run time: a variable upstream follows --scale.
    assert directive(conf, "resolver")[0].split()[0] == "127.0.0.11"
    assert directive(conf, "set") == [f"$api http://api:{environment(api)['XENT_PORT']}"]
    assert directive(conf, "proxy_pass") == ["$api"]
    assert directive(conf, "client_max_body_size") == ["128m"]
    for timeout in ("proxy_connect_timeout", "proxy_send_timeout", "proxy_read_timeout"):
        (value,) = directive(conf, timeout)
        assert 1 <= int(value.rstrip("s")) <= 300, (timeout, value)
    # Everything nginx writes goes to /tmp, the only writable place of the read-only proxy container.
    for written in (
        "pid",
        *(f"{kind}_temp_path" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")),
    ):
        (path,) = directive(conf, written)
        assert path.startswith("/tmp/"), (written, path)


def local_copy(directory: Path, replacements: dict[str, str]) -> Path:
    """The configuration with its /tmp paths moved into ``directory`` (so that running it here writes
    nothing outside the test's own folder), and the given exact replacements, each of which must occur
    exactly once: a change to the real file that these tests no longer fit fails loudly."""
    conf = NGINX_CONF.read_text()
    for old, new in replacements.items():
        assert conf.count(old) == 1, f"{old!r} occurs {conf.count(old)} times in {NGINX_CONF}"
        conf = conf.replace(old, new)
    conf = re.sub(r"(?<=\s)/tmp/", f"{directory}/", conf)
    copy = directory / "nginx.conf"
    copy.write_text(conf)
    return copy


@pytest.fixture
def nginx_dir() -> Iterator[Path]:
    # Not pytest's tmp_path: its parents are private to root, and nginx's workers run as nobody.
    directory = Path(tempfile.mkdtemp(prefix="xent-nginx-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_nginx_accepts_the_configuration(nginx_dir: Path) -> None:
    nginx = system_tool("nginx", "nginx", "deploy/nginx/nginx.conf is not checked by nginx")
    # As it is but for its /tmp paths: the upstream `api` is named in a variable and resolved at run
    # time (resolver 127.0.0.11), so `nginx -t` needs no such host on this machine.
    copy = local_copy(nginx_dir, {})
    result = subprocess.run(
        [nginx, "-t", "-e", "stderr", "-p", str(nginx_dir), "-c", str(copy)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


class StubDNS:
    """A DNS server on loopback that answers A queries for one name with fixed addresses: Docker's
    embedded DNS as nginx sees it when ``--scale`` runs several replicas of a service."""

    def __init__(self, name: str, addresses: list[str]) -> None:
        self.name = name
        self.addresses = addresses
        self.queries = 0
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.port: int = self.socket.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                query, peer = self.socket.recvfrom(512)
            except TimeoutError:
                continue
            reply = self.answer(query)
            if reply is not None:
                self.socket.sendto(reply, peer)

    def answer(self, query: bytes) -> bytes | None:
        if len(query) < 17:
            return None
        ident = struct.unpack("!H", query[:2])[0]
        labels: list[str] = []
        position = 12
        while position < len(query) and query[position]:
            length = query[position]
            labels.append(query[position + 1 : position + 1 + length].decode("ascii", "replace").lower())
            position += 1 + length
        end = position + 5  # the zero octet, QTYPE, QCLASS
        if end > len(query):
            return None
        qtype = struct.unpack("!H", query[position + 1 : position + 3])[0]
        name = ".".join(labels)
        self.queries += 1
        known = name == self.name
        addresses = self.addresses if known and qtype == 1 else []
        flags = 0x8180 | (0 if known else 3)  # a response, recursion available; NXDOMAIN if unknown
        header = struct.pack("!HHHHHH", ident, flags, 1, len(addresses), 0, 0)
        records = b"".join(
            struct.pack("!HHHIH", 0xC00C, 1, 1, 10, 4) + socket.inet_aton(address) for address in addresses
        )
        return header + query[12:end] + records

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.socket.close()


def stop(process: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{process.args!r} exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{url} did not answer 200 in {timeout} s:\n{log.read_text()}")


def served(log: Path) -> int:
    """Answered seed requests, from the replica's JSON access log (one object per line)."""
    count = 0
    for line in log.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if entry.get("logger") == "service.access" and entry.get("route") == "/v1/cross-entropy":
            count += entry.get("status") == 200
    return count


@pytest.mark.slow
def test_nginx_balances_over_the_replicas_and_admits_128_mib(nginx_dir: Path) -> None:
    nginx = system_tool("nginx", "nginx", "deploy/nginx/nginx.conf is not run in front of the service")
    # Three replicas on 127.0.0.1-3, one port, as `--scale api=3` gives three addresses for `api`.
    replicas = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    port, proxy_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("XENT_")}
    env["PYTHONUNBUFFERED"] = "1"  # the JSON access log, counted below as it happens
    # Each process with the signal that stops it gracefully (nginx: SIGQUIT; uvicorn: SIGTERM).
    processes: list[tuple[subprocess.Popen[bytes], signal.Signals]] = []
    logs = [nginx_dir / f"replica-{address}.log" for address in replicas]
    dns = StubDNS("api", replicas)
    try:
        for address, log in zip(replicas, logs, strict=True):
            with log.open("wb") as sink:
                replica = subprocess.Popen(
                    [sys.executable, "-m", "service", "--host", address, "--port", str(port)],
                    cwd=ROOT,
                    env=env,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
            processes.append((replica, signal.SIGTERM))
        for address, (process, _), log in zip(replicas, processes, logs, strict=True):
            wait_for(f"http://{address}:{port}/health/ready", process, log)

        # The real configuration, with the addresses of this machine for Docker's: the stub DNS for
        # 127.0.0.11, the replicas' port for 8000, and a loopback port for the published one.
        copy = local_copy(
            nginx_dir,
            {
                "resolver 127.0.0.11 ": f"resolver 127.0.0.1:{dns.port} ",
                "http://api:8000;": f"http://api:{port};",
                "listen 8080;": f"listen 127.0.0.1:{proxy_port};",
            },
        )
        nginx_log = nginx_dir / "nginx.log"
        with nginx_log.open("wb") as sink:
            proxy = subprocess.Popen(
                [nginx, "-e", "stderr", "-p", str(nginx_dir), "-c", str(copy), "-g", "daemon off;"],
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        processes.append((proxy, signal.SIGQUIT))
        url = f"http://127.0.0.1:{proxy_port}"
        wait_for(f"{url}/health/ready", proxy, nginx_log)

        with httpx.Client(base_url=url, timeout=60) as client:
            for _ in range(60):
                answer = client.post("/v1/cross-entropy", json=SEED_REQUEST)
                assert answer.status_code == 200, answer.text
                assert answer.json()["loss"] == pytest.approx(SEED_LOSS, rel=1e-12, abs=0)
            # A replica logs a request once its response is sent: wait for the last lines (30 s: a
            # loaded machine may keep a replica off the CPU for seconds; the wait ends when they come).
            deadline = time.monotonic() + 30
            while sum(counts := [served(log) for log in logs]) < 60 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert sum(counts) == 60 and min(counts) > 0, f"requests per replica: {counts}"
            assert dns.queries > 0

            # A body of exactly 128 MiB (the seed example after leading blanks, which JSON allows)
            # passes nginx and is answered by a replica.
            seed = httpx.Request("POST", "/", json=SEED_REQUEST).content
            body = b" " * (128 * MIB - len(seed)) + seed
            headers = {"content-type": "application/json"}
            answer = client.post("/v1/cross-entropy", content=body, headers=headers)
            assert answer.status_code == 200, answer.text[:500]
            assert answer.json()["loss"] == pytest.approx(SEED_LOSS, rel=1e-12, abs=0)

            # A replica that goes away: nginx hands its share to the others, and no request fails.
            stop(processes[1][0])
            for _ in range(30):
                assert client.post("/v1/cross-entropy", json=SEED_REQUEST).status_code == 200

        # One byte more is refused by nginx itself, from the Content-Length alone.
        with socket.create_connection(("127.0.0.1", proxy_port), timeout=10) as connection:
            connection.sendall(
                b"POST /v1/cross-entropy HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {128 * MIB + 1}\r\n\r\n".encode()
            )
            status_line = connection.recv(4096).split(b"\r\n", 1)[0]
        assert status_line == b"HTTP/1.1 413 Request Entity Too Large"
    finally:
        for process, graceful in reversed(processes):
            stop(process, graceful)
        dns.close()
