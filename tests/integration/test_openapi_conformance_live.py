"""A real ``python -m service`` answers only what openapi/openapi.json declares (tests/conformance.py):
through uvicorn, with API keys off and on, for valid and invalid requests to every operation."""

from __future__ import annotations

import collections
from pathlib import Path

import httpx
import pytest

from tests.conformance import KEY, REQUESTS, check_conforms
from tests.live import LiveServer, start_server, stop_server


def _send_everything(url: str, headers: dict[str, str]) -> collections.Counter[str]:
    statuses: collections.Counter[str] = collections.Counter()
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        for method, template, concrete, kwargs in REQUESTS:
            statuses[
                check_conforms(method, template, client.request(method.upper(), concrete, **kwargs))
            ] += 1
    return statuses


def test_the_live_service_answers_as_declared(live_server: LiveServer) -> None:
    statuses = _send_everything(live_server.url, {})
    assert {"200", "400", "404", "415", "422"} <= set(statuses), statuses


@pytest.mark.slow
def test_the_live_service_with_keys_answers_as_declared(tmp_path: Path) -> None:
    env = {"XENT_API_KEYS": KEY, "XENT_PUBLIC_METRICS": "false", "XENT_MAX_BODY_BYTES": "2097152"}
    server = start_server(tmp_path, env=env)
    try:
        anonymous = _send_everything(server.url, {})
        assert set(anonymous) == {"200", "401"}, anonymous  # the health probes stay public
        keyed = _send_everything(server.url, {"authorization": f"Bearer {KEY}"})
        assert {"200", "400", "404", "413", "415", "422"} <= set(keyed), keyed
    finally:
        assert stop_server(server) == 0, server.output()
