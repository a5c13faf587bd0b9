"""The real server process, driven by httpx over loopback TCP."""

from __future__ import annotations

import concurrent.futures

import httpx
import numpy as np
import pytest

from tests.live import LiveServer
from tests.reference import assert_matches, load_cases, request_of

SEED = {"logits": [[-1, 0.5, 2], [-1, 0.5, 3]], "target": [1, 2]}


def test_seed_example(live_server: LiveServer) -> None:
    response = httpx.post(f"{live_server.url}/v1/cross-entropy", json=SEED, timeout=10)
    assert response.status_code == 200
    data = response.json()
    assert round(data["loss"], 4) == 0.9185
    assert np.round(data["softmax"], 4).tolist() == [
        [0.0391, 0.1753, 0.7856],
        [0.0166, 0.0746, 0.9088],
    ]


def test_every_reference_case_over_tcp(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url, timeout=10) as client:
        for case in load_cases():
            response = client.post(case["endpoint"], json=request_of(case))
            assert response.status_code == 200, (case["name"], response.text)
            assert_matches(case, response.json())


def test_bad_input_and_unknown_routes_are_problems(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url, timeout=10) as client:
        bad = client.post(
            "/v1/cross-entropy",
            content=b'{"logits": [[1, NaN]], "target": [0]}',
            headers={"content-type": "application/json"},
        )
        assert bad.status_code == 422
        assert bad.headers["content-type"] == "application/problem+json"
        assert "logits[0][1] = NaN" in bad.json()["detail"]
        assert client.get("/nowhere").status_code == 404
        assert client.get("/v1/cross-entropy").status_code == 405


def test_large_batch_and_concurrent_small_requests(live_server: LiveServer) -> None:
    rng = np.random.default_rng(7)
    big = {
        "logits": rng.normal(size=(2000, 100)).round(6).tolist(),
        "target": rng.integers(0, 100, 2000).tolist(),
        "outputs": ["losses"],
    }
    with httpx.Client(base_url=live_server.url, timeout=60) as client:

        def small(_: int) -> float:
            return float(client.post("/v1/cross-entropy", json=SEED).json()["loss"])

        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            large = pool.submit(lambda: client.post("/v1/cross-entropy", json=big))
            losses = list(pool.map(small, range(64)))
            response = large.result()
    assert response.status_code == 200
    assert len(response.json()["losses"]) == 2000
    assert losses == [pytest.approx(0.9184928130357697, rel=1e-15)] * 64


def test_the_server_says_where_it_listens(live_server: LiveServer) -> None:
    assert live_server.url.split(":")[-1] in live_server.output()
