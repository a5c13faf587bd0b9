"""Runtime configuration, read from ``XENT_*`` environment variables (or a ``.env`` file) on demand.

Nothing here reads the environment at import time: ``Settings()`` does, when the process entry point
(``python -m service``) or a test asks for it, and ``create_app(settings)`` takes the result.
"""

from __future__ import annotations

import os
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.observability import access_sample_rate

__all__ = ["LogLevel", "Settings"]

LogLevel = Literal["critical", "error", "warning", "info", "debug"]

MIB = 1024 * 1024


class Settings(BaseSettings):
    """Every knob of the service; each field is the environment variable ``XENT_<FIELD NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="XENT_",
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
    )

    host: str = Field(default="127.0.0.1", description="Interface to bind (XENT_HOST).")
    port: int = Field(default=8000, ge=0, le=65535, description="TCP port (XENT_PORT).")
    workers: int = Field(default=1, ge=1, le=64, description="uvicorn worker processes (XENT_WORKERS).")
    max_body_bytes: int = Field(
        default=128 * MIB,
        ge=1024,
        description=(
            "Largest request body accepted, in bytes; larger gets 413 (XENT_MAX_BODY_BYTES). The "
            "default admits a 4096 x 1000 float64 batch written as JSON (about 80 MB)."
        ),
    )
    max_elements: int = Field(
        default=16 * MIB,
        ge=1,
        description="Most numbers one array of a request may hold (XENT_MAX_ELEMENTS).",
    )
    max_dims: int = Field(
        default=8, ge=1, le=8, description="Most dimensions one array may have (XENT_MAX_DIMS)."
    )
    log_level: LogLevel = Field(default="info", description="Log verbosity (XENT_LOG_LEVEL).")
    offload_bytes: int = Field(
        default=64 * 1024,
        ge=0,
        description=(
            "Bodies larger than this are parsed and computed in a worker thread so that the event "
            "loop keeps serving other requests; smaller ones are cheaper inline (XENT_OFFLOAD_BYTES)."
        ),
    )
    body_timeout: float = Field(
        default=60.0,
        gt=0,
        description=(
            "Seconds the service waits for the next part of a request's body (as nginx's "
            "client_body_timeout); longer gets 408 and the connection is closed, so that a stalled "
            "upload cannot hold a large request's turn. Also how long a streamed answer waits for "
            "the client to take its next piece before the connection is closed (XENT_BODY_TIMEOUT)."
        ),
    )
    shutdown_timeout: float = Field(
        default=30.0,
        gt=0,
        description=(
            "On SIGTERM, how long requests in flight may take to finish before the process exits "
            "anyway, in seconds (XENT_SHUTDOWN_TIMEOUT)."
        ),
    )
    keep_alive_timeout: int = Field(
        default=75,
        ge=1,
        description=(
            "Seconds an idle keep-alive connection stays open (XENT_KEEP_ALIVE_TIMEOUT). Longer than a "
            "proxy's or client pool's idle timeout, so that the server never closes a connection "
            "the other side is about to reuse."
        ),
    )
    drain_seconds: float = Field(
        default=0.0,
        ge=0,
        description=(
            "On SIGTERM, how long to keep accepting requests while /health/ready answers 503, so that "
            "a load balancer stops sending new ones first, in seconds (XENT_DRAIN_SECONDS)."
        ),
    )
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description=(
            "Comma-separated API keys; when set, requests need `Authorization: Bearer <key>` "
            "(XENT_API_KEYS). None set: the service is open, and says so in its log at start."
        ),
    )
    public_health: bool = Field(default=True, description="Health probes need no key (XENT_PUBLIC_HEALTH).")
    public_metrics: bool = Field(default=True, description="/metrics needs no key (XENT_PUBLIC_METRICS).")
    public_docs: bool = Field(
        default=True,
        description=(
            "/docs, /redoc, /openapi.json, the front page and the playground need no key (XENT_PUBLIC_DOCS)."
        ),
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated origins allowed by CORS; none: CORS stays off (XENT_CORS_ORIGINS).",
    )
    log_format: Literal["json", "text"] = Field(
        default="json", description="Log lines as JSON objects or as plain text (XENT_LOG_FORMAT)."
    )
    access_log: str = Field(
        default="on",
        description=(
            "The access log, one line per request (XENT_ACCESS_LOG): `on`, `off`, or `sample:R` to "
            "write a share R (0 to 1) of the requests answered below 400 and every 4xx and 5xx. "
            "Independent of XENT_LOG_LEVEL."
        ),
    )

    compute_threads: int = Field(
        default_factory=lambda: len(os.sched_getaffinity(0)),
        ge=1,
        le=256,
        description=(
            "Threads one large softmax pass may use (XENT_COMPUTE_THREADS); by default the CPUs this "
            "process may run on. Set it to the container's CPU limit where that is lower."
        ),
    )
    compute_concurrency: int = Field(
        default=2,
        ge=1,
        description=(
            "Most large requests computed at once per process; the others wait their turn, which "
            "bounds memory (XENT_COMPUTE_CONCURRENCY)."
        ),
    )

    memory_budget: int = Field(
        default=0,
        ge=0,
        description=(
            "Bytes that the large requests in flight in one process may hold together: their bodies, "
            "arrays and answers, from admission until the client has taken the last byte "
            "(XENT_MEMORY_BUDGET). 0: 60 % of the container's memory limit (cgroup), or of physical "
            "memory, shared among the workers. A request that does not fit waits XENT_MEMORY_WAIT "
            "seconds, then gets 503; one larger than the whole budget gets 413 at once."
        ),
    )
    memory_wait: float = Field(
        default=10.0,
        ge=0,
        description=(
            "Seconds a large request waits for room in the memory budget before it gets 503 with "
            "Retry-After (XENT_MEMORY_WAIT)."
        ),
    )
    min_receive_rate: int = Field(
        default=32 * 1024,
        ge=0,
        description=(
            "Bytes per second a request body must arrive at, once XENT_BODY_TIMEOUT has passed: each "
            "byte received buys 1/rate seconds more (as Apache's mod_reqtimeout MinRate); slower gets "
            "408 (XENT_MIN_RECEIVE_RATE). 0: only silence is cut off."
        ),
    )
    min_send_rate: int = Field(
        default=32 * 1024,
        ge=0,
        description=(
            "Bytes per second a client must take an answer at, once XENT_BODY_TIMEOUT has passed since "
            "the answer started to wait for it; slower: the connection is aborted and what it held is "
            "freed at once (XENT_MIN_SEND_RATE). 0: never."
        ),
    )
    max_header_bytes: int = Field(
        default=16 * 1024,
        ge=1024,
        description=(
            "Largest request head (request line and headers), in bytes; larger gets 431 and the "
            "connection is closed (XENT_MAX_HEADER_BYTES)."
        ),
    )
    header_timeout: float = Field(
        default=10.0,
        gt=0,
        description=(
            "Seconds a request head may take from its first byte (or from the connection's opening) "
            "to its end, however steadily it arrives; longer: 408 and the connection is closed "
            "(XENT_HEADER_TIMEOUT)."
        ),
    )
    max_connections: int = Field(
        default=1000,
        ge=1,
        description=(
            "Most open connections per process; more get 503 and are closed at once (XENT_MAX_CONNECTIONS)."
        ),
    )

    @field_validator("access_log")
    @classmethod
    def _access_log_setting(cls, value: str) -> str:
        access_sample_rate(value)  # raises ValueError, which pydantic reports against the field
        return value

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value
