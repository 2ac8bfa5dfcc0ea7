"""Live alerts read from the incident stream, shared by the WebSocket
(``/api/alerts/ws``) and Server-Sent Events (``/api/alerts/stream``) endpoints.

A client that reconnects with the id of the last alert it got receives what it
missed (the stream keeps the last 100 000); without one, it gets only what is
published after it connected. Filters apply to both.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis

from api.telemetry import ApiMetrics
from core.bus import INCIDENT_STREAM

log = logging.getLogger(__name__)

READ_BLOCK_MS = 1000  # how long one read waits; also how soon a closed client is noticed
READ_COUNT = 100
STREAM_ID_PATTERN = r"^\d{1,20}(-\d{1,20})?$"  # what XREAD accepts as a position

# redis-py's stream replies, with decode_responses off.
StreamReply = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]


def _stream_key(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """Empty means "all"; several values of one filter mean "any of them"."""

    camera_ids: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()

    @classmethod
    def of(cls, camera_ids: Sequence[str] | None, types: Sequence[str] | None) -> AlertFilter:
        return cls(frozenset(camera_ids or ()), frozenset(types or ()))

    def matches(self, incident: dict[str, Any]) -> bool:
        if self.camera_ids and incident.get("camera_id") not in self.camera_ids:
            return False
        return not self.types or incident.get("type") in self.types


@dataclass(frozen=True, slots=True)
class Alert:
    id: str  # the stream entry id: what a client sends back to resume
    kind: str  # opened | updated | closed | review
    incident: dict[str, Any]
    live: bool  # published after the client connected (not a replay)

    def message(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "incident": self.incident}


class AlertReader:
    """Follows the incident stream from a position, passing on what the filter lets
    through. The position moves past filtered-out entries too."""

    def __init__(self, client: aioredis.Redis, cursor: str, head: str, filt: AlertFilter) -> None:
        self._client = client
        self.cursor = cursor
        self._head = _stream_key(head)
        self._filter = filt

    @classmethod
    async def open(
        cls, client: aioredis.Redis, last_id: str | None, filt: AlertFilter
    ) -> AlertReader:
        """Resolve the position before the client is told it is connected, so nothing
        published in between is missed (re-reading with "$" would skip entries)."""
        latest = cast(list[tuple[bytes, Any]], await client.xrevrange(INCIDENT_STREAM, count=1))
        head = latest[0][0].decode() if latest else "0-0"
        return cls(client, last_id or head, head, filt)

    async def read(self, block_ms: int = READ_BLOCK_MS) -> list[Alert]:
        reply = cast(
            StreamReply,
            await self._client.xread(
                {INCIDENT_STREAM: self.cursor}, block=max(1, block_ms), count=READ_COUNT
            ),
        )
        alerts: list[Alert] = []
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                self.cursor = entry_id.decode()
                try:
                    incident = json.loads(fields[b"data"])
                    kind = fields[b"kind"].decode()
                except (KeyError, ValueError) as exc:
                    log.warning("alert %s skipped: %s", self.cursor, exc)
                    continue
                if isinstance(incident, dict) and self._filter.matches(incident):
                    live = _stream_key(self.cursor) > self._head
                    alerts.append(Alert(self.cursor, kind, incident, live))
        return alerts


def observe_sent(metrics: ApiMetrics, transport: str, alert: Alert) -> None:
    """Fan-out latency, for live 'opened' alerts only: a replayed alert waited for
    its client, and later kinds carry the incident's original ``created_ts``."""
    if alert.live and alert.kind == "opened":
        metrics.observe_fanout(transport, alert.incident, time.time())


def sse_frame(alert: Alert) -> str:
    data = json.dumps(alert.message(), separators=(",", ":"))
    return f"id: {alert.id}\ndata: {data}\n\n"


async def sse_events(
    reader: AlertReader, metrics: ApiMetrics, heartbeat_s: float
) -> AsyncIterator[str]:
    """The SSE body. A comment line every ``heartbeat_s`` without alerts keeps
    proxies from closing an idle connection and lets the browser notice a dead one."""
    yield "retry: 3000\n\n"  # EventSource reconnects after 3 s, sending Last-Event-ID
    last_sent = time.monotonic()
    while True:
        wait_s = last_sent + heartbeat_s - time.monotonic()
        alerts = await reader.read(min(READ_BLOCK_MS, int(wait_s * 1000)))
        for alert in alerts:
            yield sse_frame(alert)
            observe_sent(metrics, "sse", alert)  # runs once the frame was handed on
        if alerts:
            last_sent = time.monotonic()
        elif time.monotonic() - last_sent >= heartbeat_s:
            yield ": keepalive\n\n"
            last_sent = time.monotonic()
