"""The framework's ceiling: a bare FastAPI app whose one POST route returns a constant JSON object.

Run the same way as the service (uvicorn, same workers and log level) by ``bench/run.py``.
"""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.post("/v1/cross-entropy")
async def constant() -> dict[str, float]:
    return {"loss": 0.9184928130357697}
