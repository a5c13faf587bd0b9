"""The integration tests' server helpers live in ``tests/live.py``; the fixture in ``tests/conftest.py``."""

from tests.live import LiveServer, free_port, start_server, stop_server

__all__ = ["LiveServer", "free_port", "start_server", "stop_server"]
