"""The live-server fixture of the integration tests, shared here (imported, not copied)."""

from __future__ import annotations

from tests.integration.conftest import live_server

__all__ = ["live_server"]
