"""The API under a real uvicorn server on loopback (in a thread), for what the
TestClient cannot show faithfully: long-lived streaming responses (SSE) read by a
real HTTP client, and a client that goes away."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Run ``app`` until the block ends; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="live-api", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError("the API did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@dataclass
class SseEvent:
    id: str | None
    data: dict[str, Any]


@dataclass
class SseStream:
    """Parses ``text/event-stream`` lines as they arrive."""

    response: httpx.Response
    comments: list[str] = field(default_factory=list)
    retry_ms: int | None = None

    def __post_init__(self) -> None:
        self._lines = self.response.iter_lines()

    def next_line(self) -> str:
        return next(self._lines)

    def next_event(self) -> SseEvent:
        """The next event; comments and ``retry:`` are noted on the way."""
        event_id: str | None = None
        data: list[str] = []
        for line in self._lines:
            if line.startswith(":"):
                self.comments.append(line)
            elif line.startswith("retry:"):
                self.retry_ms = int(line.split(":", 1)[1])
            elif line.startswith("id:"):
                event_id = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data.append(line.split(":", 1)[1].strip())
            elif line == "" and data:
                return SseEvent(event_id, json.loads("\n".join(data)))
        raise AssertionError("the event stream ended")


@contextmanager
def sse(
    base_url: str,
    headers: dict[str, str],
    params: dict[str, str | list[str]] | None = None,
    read_timeout_s: float = 10.0,
) -> Iterator[SseStream]:
    """GET /api/alerts/stream; the server has resolved its stream position once this
    yields (it does so before sending the headers)."""
    timeout = httpx.Timeout(10.0, read=read_timeout_s)
    with (
        httpx.Client(base_url=base_url, timeout=timeout) as client,
        client.stream("GET", "/api/alerts/stream", headers=headers, params=params) as response,
    ):
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield SseStream(response)
