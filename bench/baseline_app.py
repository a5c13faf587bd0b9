"""The framework's ceiling: a bare FastAPI app whose one POST route returns a constant JSON object;
and the HTTP server's: ``bare``, an ASGI app with no framework that reads the body and answers the
same constant.

Run the same way as the service (uvicorn, same workers and log level) by ``bench/run.py`` and
``bench/peers.py``.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

app = FastAPI()

CONSTANT = b'{"loss":0.9184928130357697}'


@app.post("/v1/cross-entropy")
async def constant() -> dict[str, float]:
    return {"loss": 0.9184928130357697}


async def bare(scope: Scope, receive: Receive, send: Send) -> None:
    """uvicorn alone: every HTTP request, whatever its path, is read and answered ``CONSTANT``."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body", False):
        pass
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(CONSTANT)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": CONSTANT})
