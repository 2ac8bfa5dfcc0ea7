"""The Redis/Valkey event bus: incident alerts on a stream, camera health in a hash.

A stream (not pub/sub) so that a client that reconnects can ask for what it missed.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis

from core.errors import BusError

log = logging.getLogger(__name__)

INCIDENT_STREAM = "cv:incidents"
HEALTH_HASH = "cv:health"
INCIDENT_STREAM_MAXLEN = 100_000


def encode_event(kind: str, payload: dict[str, Any]) -> dict[str, str]:
    return {"kind": kind, "data": json.dumps(payload, separators=(",", ":"))}


class EventBus:
    """Synchronous publisher used by pipeline processes."""

    def __init__(self, redis_url: str) -> None:
        self._client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)

    def ping(self) -> None:
        try:
            self._client.ping()
        except redis.RedisError as exc:
            raise BusError(f"cannot reach Redis/Valkey: {exc}; check REDIS_URL") from exc

    def publish_incident(self, kind: str, payload: dict[str, Any]) -> str:
        try:
            entry_id = self._client.xadd(
                INCIDENT_STREAM,
                encode_event(kind, payload),  # type: ignore[arg-type]
                maxlen=INCIDENT_STREAM_MAXLEN,
                approximate=True,
            )
        except redis.RedisError as exc:
            raise BusError(f"cannot publish to {INCIDENT_STREAM}: {exc}") from exc
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    def publish_health(self, health: dict[str, dict[str, Any]]) -> None:
        if not health:
            return
        mapping = {cam: json.dumps(h, separators=(",", ":")) for cam, h in health.items()}
        try:
            self._client.hset(HEALTH_HASH, mapping=mapping)  # type: ignore[arg-type]
        except redis.RedisError as exc:
            log.warning("camera health not published: %s", exc)

    def remove_health(self, camera_ids: list[str]) -> None:
        if camera_ids:
            self._client.hdel(HEALTH_HASH, *camera_ids)

    def close(self) -> None:
        self._client.close()
