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
EVENT_STREAM = "cv:events"  # system events: camera state changes, disk pressure, …
HEALTH_HASH = "cv:health"
STATS_HASH = "cv:stats"  # per-stage counters for /metrics
CONFIG_CHANNEL = "cv:config"  # "a new camera config version is live"
ACTIVITY_HASH = "cv:activity"  # camera -> capture time until which it has moving tracks
INCIDENT_STREAM_MAXLEN = 100_000
EVENT_STREAM_MAXLEN = 10_000


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

    def publish_event(self, kind: str, payload: dict[str, Any]) -> None:
        try:
            self._client.xadd(
                EVENT_STREAM,
                encode_event(kind, payload),  # type: ignore[arg-type]
                maxlen=EVENT_STREAM_MAXLEN,
                approximate=True,
            )
        except redis.RedisError as exc:
            log.warning("event %s not published: %s", kind, exc)

    def publish_stats(self, stage: str, stats: dict[str, Any]) -> None:
        try:
            self._client.hset(STATS_HASH, stage, json.dumps(stats, separators=(",", ":")))
        except redis.RedisError as exc:
            log.warning("stats of %s not published: %s", stage, exc)

    def publish_activity(self, until_ts: dict[str, float]) -> None:
        if not until_ts:
            return
        try:
            self._client.hset(ACTIVITY_HASH, mapping={k: repr(v) for k, v in until_ts.items()})
        except redis.RedisError as exc:
            log.warning("activity not published: %s", exc)

    def read_activity(self) -> dict[str, float]:
        try:
            raw = self._client.hgetall(ACTIVITY_HASH)
        except redis.RedisError as exc:
            log.warning("activity not read: %s", exc)
            return {}
        return {k.decode(): float(v) for k, v in raw.items()}  # type: ignore[union-attr]

    def notify_config(self, version_id: int) -> None:
        self._client.publish(CONFIG_CHANNEL, str(version_id))

    def config_listener(self) -> ConfigListener:
        return ConfigListener(self._client)

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


class ConfigListener:
    """Tells a pipeline process that a new camera config version is live."""

    def __init__(self, client: redis.Redis) -> None:
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        self._pubsub.subscribe(CONFIG_CHANNEL)

    def poll(self, timeout_s: float = 0.0) -> int | None:
        """The newest version announced since the last poll, or None."""
        newest: int | None = None
        try:
            message = self._pubsub.get_message(timeout=timeout_s)
            while message is not None:
                if message.get("type") == "message":
                    newest = int(message["data"])
                message = self._pubsub.get_message(timeout=0.0)
        except (redis.RedisError, ValueError) as exc:
            log.warning("config notifications: %s", exc)
        return newest

    def close(self) -> None:
        self._pubsub.close()
