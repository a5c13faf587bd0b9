"""Attacks on a real server, each next to a well-behaved client that must keep its latency (issue 12).

Each attack is sized so that it held memory or turns for ever before the transport limits (no send
deadline for whole answers, a body deadline that a byte a second satisfied, no limit on request heads),
yet runs in seconds here: the limits are set low for the test. Asserted each time: every attacker's
outcome, the server's resident memory, and the well-behaved client's p99 latency.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import orjson

from tests.live import LiveServer, start_server, stop_server

SEED = b'{"logits": [[-1, 0.5, 2], [-1, 0.5, 3]], "target": [1, 2]}'
MB = 1024 * 1024
#: A well-behaved small request's p99 latency must stay under this while the attack goes on. The
#: machine running the tests is shared and small: this is far from the seconds the attacks caused.
P99_SECONDS = 1.0


class SteadyClient(threading.Thread):
    """A well-behaved client: small requests one after the other on one connection, timed."""

    def __init__(self, url: str, *, body: bytes = SEED, pause: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.url, self.body, self.pause = url, body, pause
        self.latencies: list[float] = []
        self.statuses: list[int] = []
        self._stop_event = threading.Event()
        self.connected = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=20) as client:
            while not self._stop_event.is_set():
                started = time.perf_counter()
                response = client.post(
                    f"{self.url}/v1/cross-entropy",
                    content=self.body,
                    headers={"content-type": "application/json"},
                )
                self.latencies.append(time.perf_counter() - started)
                self.statuses.append(response.status_code)
                self.connected.set()
                time.sleep(self.pause)

    def finish(self) -> float:
        """Stop; the p99 latency of what was sent, each answered 200."""
        self._stop_event.set()
        self.join(timeout=30)
        assert not self.is_alive()
        assert len(self.statuses) >= 10, self.statuses
        assert set(self.statuses) == {200}, self.statuses
        return float(np.percentile(self.latencies, 99))


def _rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(field)


def _port(server: LiveServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


def _connect(port: int, *, receive_buffer: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:  # a small window: the server's writes stall once it is full
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(20)
    sock.connect(("127.0.0.1", port))
    return sock


def _read_what_comes(sock: socket.socket, limit: float = 20) -> bytes:
    """Everything the server sends until it closes (or resets) the connection, within ``limit`` s."""
    answer = bytearray()
    deadline = time.monotonic() + limit
    try:
        while time.monotonic() < deadline and (chunk := sock.recv(1 << 20)):
            answer += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return bytes(answer)


def _request(path: str, body: bytes, *, version: str = "1.1", headers: str = "") -> bytes:
    return (
        f"POST {path} HTTP/{version}\r\nHost: x\r\nContent-Length: {len(body)}\r\n{headers}\r\n".encode()
        + body
    )


def _batch(rows: int, classes: int, outputs: list[str]) -> bytes:
    rng = np.random.default_rng(rows)
    document = {
        "logits": rng.normal(size=(rows, classes)),
        "target": rng.integers(0, classes, rows),
        "outputs": outputs,
    }
    return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)


def _v2_binary(rows: int, classes: int) -> tuple[bytes, str]:
    logits = np.random.default_rng(1).normal(size=(rows, classes))
    target = np.zeros(rows, dtype="<i8")
    header = orjson.dumps(
        {
            "inputs": [
                {"name": "logits", "datatype": "FP64", "shape": [rows, classes],
                 "parameters": {"binary_data_size": logits.nbytes}},
                {"name": "target", "datatype": "INT64", "shape": [rows],
                 "parameters": {"binary_data_size": target.nbytes}},
            ],
            "outputs": [{"name": "softmax", "parameters": {"binary_data": True}}],
        }
    )  # fmt: skip
    return header + logits.tobytes() + target.tobytes(), f"Inference-Header-Content-Length: {len(header)}\r\n"


def _in_parallel(*jobs: Callable[[], object]) -> list[object]:
    results: list[object] = [None] * len(jobs)

    def run(index: int, job: Callable[[], object]) -> None:
        try:
            results[index] = job()
        except Exception as error:  # reported by the assertions on the results
            results[index] = error

    threads = [threading.Thread(target=run, args=(i, job), daemon=True) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_clients_that_do_not_read_their_answers_are_cut_and_their_memory_freed(tmp_path: Path) -> None:
    # Before: a whole (not streamed) answer had no send deadline, and an HTTP/1.0 client's joined
    # answer neither: each such client held its answer for as long as it kept the connection open.
    # The attackers' shares add up to about 220 MB once their answers are made (and to more while
    # they are computed: some wait their turn); a budget of 200 MB fits them all, and the large
    # request at the end, only if every share is given back when its connection is cut.
    budget = 200 * MB
    server = start_server(
        tmp_path,
        env={
            "XENT_BODY_TIMEOUT": "1",
            "XENT_MIN_SEND_RATE": "1000000",
            "XENT_MEMORY_BUDGET": str(budget),
            "XENT_MEMORY_WAIT": "30",
            "XENT_LOG_LEVEL": "warning",
        },
    )
    try:
        port = _port(server)
        whole = _batch(600, 1000, ["softmax"])  # about 12 MB each way: answered whole
        streamed = _batch(1100, 1000, ["softmax"])  # 1.1 million numbers: a streamed answer
        binary, binary_header = _v2_binary(600, 1000)
        attacks = [
            ("whole answer", _request("/v1/cross-entropy", whole)),
            ("whole answer", _request("/v1/cross-entropy", whole)),
            ("whole answer", _request("/v1/cross-entropy", whole)),
            ("whole answer", _request("/v1/cross-entropy", whole)),
            ("streamed answer", _request("/v1/cross-entropy", streamed)),
            ("HTTP/1.0, answer joined", _request("/v1/cross-entropy", streamed, version="1.0")),
            ("/v2 binary", _request("/v2/models/cross_entropy/infer", binary, headers=binary_header)),
        ]
        httpx.post(f"{server.url}/v1/cross-entropy", content=whole, timeout=60)  # warm: the allocator's pools
        before = _rss_mb(server.process.pid)
        steady = SteadyClient(server.url)
        steady.start()
        assert steady.connected.wait(10)
        sockets = [_connect(port, receive_buffer=4096) for _ in attacks]
        try:
            _in_parallel(
                *(
                    lambda s=sock, r=attack[1]: s.sendall(r)
                    for sock, attack in zip(sockets, attacks, strict=True)
                )
            )
            # The answers are computed, then wait for clients that take nothing. Within the grace
            # (XENT_BODY_TIMEOUT) and a look of the guard, each connection is aborted.
            deadline = time.monotonic() + 40
            while "XENT_MIN_SEND_RATE" not in server.output() or server.output().count(
                "XENT_MIN_SEND_RATE"
            ) < len(attacks):
                assert time.monotonic() < deadline, server.output()[-3000:]
                time.sleep(0.2)
            time.sleep(1.5)  # the idle release (1 s after the budget is empty)
            # The attackers still hold their sockets open, unread: the server holds nothing for them.
            after = _rss_mb(server.process.pid)
            peak = _rss_mb(server.process.pid, "VmHWM")
            large = httpx.post(f"{server.url}/v1/cross-entropy", content=streamed, timeout=60)
            assert large.status_code == 200, large.text
        finally:
            outcomes = [_read_what_comes(sock, limit=5) for sock in sockets]
            for sock in sockets:
                sock.close()
        p99 = steady.finish()
        for (kind, _), answer in zip(attacks, outcomes, strict=True):
            head, _, rest = answer.partition(b"\r\n\r\n")
            assert head.startswith((b"HTTP/1.1 200 ", b"HTTP/1.0 200 ")), (kind, head[:200])
            length = dict(
                line.lower().split(b": ", 1) for line in head.split(b"\r\n")[1:] if b": " in line
            ).get(b"content-length")
            if length is not None:
                assert len(rest) < int(length), kind  # cut off
            else:
                assert not rest.endswith(b"0\r\n\r\n"), kind  # the last chunk never came
        print(
            f"RSS before {before:.0f} MB, peak {peak:.0f} MB, after the cuts {after:.0f} MB; p99 {p99:.3f} s"
        )
        assert after - before < 100, (before, after)
        assert peak - before < budget / MB + 150, (before, peak)
        assert p99 < P99_SECONDS
    finally:
        assert stop_server(server) == 0, server.output()[-3000:]


def _trickle(port: int, body: bytes, *, chunked: bool, seconds: float) -> bytes:
    """Send a request head, then its body a byte every 0.2 s (never silent for a second); the answer."""
    with _connect(port) as sock:
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}"
        sock.sendall(f"POST /v1/cross-entropy HTTP/1.1\r\nHost: x\r\n{framing}\r\n\r\n".encode())
        deadline = time.monotonic() + seconds
        sent = 0
        try:
            while time.monotonic() < deadline:
                piece = body[sent : sent + 1]
                sock.sendall(b"1\r\n" + piece + b"\r\n" if chunked else piece)
                sent += 1
                time.sleep(0.2)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server gave up on it: its answer is waiting
        return _read_what_comes(sock, limit=10)


def test_uploads_that_trickle_in_hold_no_compute_turn_and_are_cut_off(tmp_path: Path) -> None:
    # Before: two uploads at a byte a second held both compute turns (XENT_COMPUTE_CONCURRENCY=2),
    # and every large request waited for as long as they went on; the body deadline bounded only
    # the silence between bytes.
    server = start_server(
        tmp_path,
        env={"XENT_BODY_TIMEOUT": "1", "XENT_MIN_RECEIVE_RATE": "10000", "XENT_LOG_LEVEL": "warning"},
    )
    try:
        port = _port(server)
        large = _batch(256, 100, ["losses"])
        assert len(large) > 64 * 1024  # past XENT_OFFLOAD_BYTES: it needs a compute turn
        steady = SteadyClient(server.url)
        steady.start()
        assert steady.connected.wait(10)
        before = _rss_mb(server.process.pid)
        started = time.monotonic()
        results: list[object] = []

        def attack() -> None:
            results.extend(
                _in_parallel(
                    lambda: _trickle(port, large, chunked=False, seconds=8),
                    lambda: _trickle(port, large, chunked=False, seconds=8),
                    lambda: _trickle(port, large, chunked=True, seconds=8),
                )
            )

        attackers = threading.Thread(target=attack, daemon=True)
        attackers.start()
        time.sleep(0.5)  # the trickles have begun: before, they held both turns now
        waits = []
        for _ in range(5):
            sent = time.monotonic()
            response = httpx.post(f"{server.url}/v1/cross-entropy", content=large, timeout=30)
            waits.append(time.monotonic() - sent)
            assert response.status_code == 200, response.text
            assert len(response.json()["losses"]) == 256
        attackers.join(timeout=60)
        cut_after = time.monotonic() - started
        p99 = steady.finish()
        after = _rss_mb(server.process.pid)
        print(
            f"large requests took {max(waits):.2f} s at most; p99 {p99:.3f} s; "
            f"attackers cut off after {cut_after:.1f} s"
        )
        assert max(waits) < 3.0, waits
        assert p99 < P99_SECONDS
        assert len(results) == 3
        for answer in results:
            assert isinstance(answer, bytes), answer
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 408 "), head[:200]
            assert b"XENT_MIN_RECEIVE_RATE" in body
        assert cut_after < 6  # each was cut after about a second, not after the 8 s it would go on
        assert after - before < 50
    finally:
        assert stop_server(server) == 0, server.output()[-3000:]


def _send_head_slowly(port: int, piece: bytes, pieces: int, gap: float) -> bytes:
    """A request head that never ends: ``pieces`` times ``piece``, ``gap`` seconds apart; the answer."""
    with _connect(port) as sock:
        try:
            sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
            for _ in range(pieces):
                sock.sendall(piece)
                if gap:
                    time.sleep(gap)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused mid-head: the answer was sent before the connection closed
        return _read_what_comes(sock, limit=10)


def test_request_heads_are_bounded_in_size_time_and_number(tmp_path: Path) -> None:
    # Before: one 100 MB header took 13 s to parse and stalled the loop, 10 unfinished 30 MB headers
    # held 335 MB, and 300 connections sending a header byte every 3 s were never cut.
    server = start_server(
        tmp_path,
        env={
            "XENT_HEADER_TIMEOUT": "1",
            "XENT_MAX_HEADER_BYTES": "16384",
            "XENT_MAX_CONNECTIONS": "60",
            "XENT_LOG_LEVEL": "warning",
        },
    )
    try:
        port = _port(server)
        steady = SteadyClient(server.url)
        steady.start()
        assert steady.connected.wait(10)
        before = _rss_mb(server.process.pid)
        header = b"X-Flood: " + b"a" * (64 * 1024 - 11) + b"\r\n"  # 64 KiB header lines
        started = time.monotonic()
        outcomes = _in_parallel(
            # One 20 MB header, and ten unfinished 2 MB ones sent as fast as the server takes them.
            lambda: _send_head_slowly(port, header, 320, 0),
            *(lambda: _send_head_slowly(port, header, 32, 0) for _ in range(10)),
            # Forty heads trickling in a byte every 0.3 s: never silent, never done.
            *(lambda: _send_head_slowly(port, b"a", 40, 0.3) for _ in range(40)),
        )
        took = time.monotonic() - started
        peak = _rss_mb(server.process.pid, "VmHWM")
        for outcome in outcomes[:11]:
            assert isinstance(outcome, bytes), outcome
            head, _, body = outcome.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 431 "), head[:200]
            assert orjson.loads(body)["status"] == 431
            assert b"XENT_MAX_HEADER_BYTES" in body
        for outcome in outcomes[11:]:
            assert isinstance(outcome, bytes), outcome
            assert outcome.startswith(b"HTTP/1.1 408 "), outcome[:200]
            assert b"XENT_HEADER_TIMEOUT" in outcome
        assert took < 8, took  # the trickling heads were cut after a second or so, not after 12 s

        # More connections than the cap: the extra ones get 503 at once, and a connection that
        # says nothing is closed after XENT_HEADER_TIMEOUT, which frees the slots.
        idle = [_connect(port) for _ in range(70)]
        try:
            time.sleep(0.3)
            refused = [sock for sock in idle if _answer_now(sock).startswith(b"HTTP/1.1 503 ")]
            assert 9 <= len(refused) <= 12, len(refused)  # the cap, less the steady client's connection
            time.sleep(1.5)
            assert all(_read_what_comes(sock, limit=2) == b"" for sock in idle if sock not in refused)
            assert httpx.get(f"{server.url}/health/live", timeout=5).status_code == 200
        finally:
            for sock in idle:
                sock.close()
        p99 = steady.finish()
        print(f"RSS before {before:.0f} MB, peak {peak:.0f} MB; p99 {p99:.3f} s")
        assert peak - before < 50
        assert p99 < P99_SECONDS
    finally:
        assert stop_server(server) == 0, server.output()[-3000:]


def _answer_now(sock: socket.socket) -> bytes:
    sock.settimeout(0.2)
    try:
        return sock.recv(4096)
    except TimeoutError:
        return b""
    finally:
        sock.settimeout(20)


def _read_at(sock: socket.socket, bytes_per_second: int, limit: float) -> bytes:
    """Read an answer (with a Content-Length) at about ``bytes_per_second``, until it is whole, the
    server closes the connection or ``limit`` seconds pass."""
    answer = bytearray()
    step = bytes_per_second // 10
    deadline = time.monotonic() + limit
    try:
        while time.monotonic() < deadline and (chunk := sock.recv(step)):
            answer += chunk
            head, _, rest = bytes(answer).partition(b"\r\n\r\n")
            length = re.search(rb"content-length: (\d+)", head.lower())
            if length and len(rest) >= int(length.group(1)):
                break
            time.sleep(0.1 * len(chunk) / step)
    except ConnectionResetError:
        pass
    return bytes(answer)


def test_a_slow_but_steady_reader_gets_its_whole_answer_and_a_slower_one_is_cut(tmp_path: Path) -> None:
    server = start_server(
        tmp_path, env={"XENT_BODY_TIMEOUT": "1", "XENT_MIN_SEND_RATE": "300000", "XENT_LOG_LEVEL": "warning"}
    )
    try:
        port = _port(server)
        body = _batch(150, 1000, ["softmax"])  # about 3 MB each way
        steady, slow = _connect(port, receive_buffer=4096), _connect(port, receive_buffer=4096)
        with steady, slow:
            steady.sendall(_request("/v1/cross-entropy", body))
            slow.sendall(_request("/v1/cross-entropy", body))
            # Four times the minimum rate, and a third of it.
            fast_enough, too_slow = _in_parallel(
                lambda: _read_at(steady, 1_200_000, 30), lambda: _read_at(slow, 100_000, 30)
            )
        assert isinstance(fast_enough, bytes) and isinstance(too_slow, bytes)
        head, _, rest = fast_enough.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ")
        assert len(orjson.loads(rest)["softmax"]) == 150
        head, _, rest = too_slow.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ")
        assert len(rest) < 1_000_000  # cut off: what was taken in about two seconds, at 100 KB/s
        assert "less than 300000 bytes per second (XENT_MIN_SEND_RATE)" in server.output()
    finally:
        assert stop_server(server) == 0, server.output()[-3000:]


#: Bytes read past an answer on a connection (pipelined answers can arrive in one read), by socket.
_LEFTOVER: dict[int, bytes] = {}


def _answer(sock: socket.socket) -> tuple[bytes, bytes]:
    """One whole answer (with a Content-Length) from a keep-alive connection: (head, body). What was
    read past it (the next pipelined answer) is kept for the next call."""
    data = _LEFTOVER.pop(id(sock), b"")
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"content-length: (\d+)", head.lower())
    assert length, head
    size = int(length.group(1))
    while len(body) < size:
        body += sock.recv(65536)
    if len(body) > size:
        _LEFTOVER[id(sock)] = body[size:]
    return head, body[:size]


def test_the_head_limit_counts_heads_only_whatever_the_bodies_and_early_answers(tmp_path: Path) -> None:
    # Bodies are not heads: a large body, one refused before it was read (404 before the body), and
    # requests sent back to back in one write, all on one connection, with heads near the limit.
    server = start_server(tmp_path, env={"XENT_MAX_HEADER_BYTES": "4096", "XENT_LOG_LEVEL": "warning"})
    try:
        large = _batch(256, 100, ["losses"])  # about 300 KB: many reads, each past the head limit
        near_limit = "X-Pad: " + "p" * 3800 + "\r\n"
        with _connect(_port(server)) as sock:
            sock.sendall(_request("/v1/cross-entropy", large, headers=near_limit))
            head, body = _answer(sock)
            assert head.startswith(b"HTTP/1.1 200 "), head
            assert len(orjson.loads(body)["losses"]) == 256
            sock.sendall(_request("/no/such/route", large, headers=near_limit))
            head, _ = _answer(sock)
            assert head.startswith(b"HTTP/1.1 404 "), head
            sock.sendall(_request("/v1/cross-entropy", SEED, headers=near_limit) * 3)
            for _ in range(3):
                head, body = _answer(sock)
                assert head.startswith(b"HTTP/1.1 200 "), head
                assert orjson.loads(body)["loss"] > 0
            sock.sendall(
                _request("/v1/cross-entropy", SEED, headers=near_limit + "X-More: " + "m" * 400 + "\r\n")
            )
            head, body = _answer(sock)
            assert head.startswith(b"HTTP/1.1 431 "), head
            assert b"XENT_MAX_HEADER_BYTES" in body
    finally:
        assert stop_server(server) == 0, server.output()[-3000:]


def test_websocket_upgrades_are_plain_requests_and_leave_no_slot_taken(tmp_path: Path) -> None:
    """The service has no WebSocket route; uvicorn's WebSocket protocol, were it on, would take over
    the connection out of reach of the connection cap, and a few upgrades would lock everyone out."""
    server = start_server(tmp_path, env={"XENT_MAX_CONNECTIONS": "5"})
    try:
        port = _port(server)
        upgrade = (
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        for _ in range(8):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(upgrade)
                answer = sock.recv(4096)
                assert answer.startswith(b"HTTP/1.1 404 "), answer[:200]  # no such route, as plain HTTP
        assert httpx.get(f"{server.url}/health/live", timeout=10).status_code == 200
    finally:
        assert stop_server(server) == 0, server.output()[-3000:]
