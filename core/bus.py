"""The Redis/Valkey event bus: incident alerts on a stream, camera health in a hash.

A stream (not pub/sub) so that a client that reconnects can ask for what it missed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from typing import Any

import redis

from core.errors import BusError
from core.types import FrameRef

log = logging.getLogger(__name__)

INCIDENT_STREAM = "cv:incidents"
EVENT_STREAM = "cv:events"  # system events: camera state changes, disk pressure, …
HEALTH_HASH = "cv:health"
STATS_HASH = "cv:stats"  # per-stage counters for /metrics
CONFIG_CHANNEL = "cv:config"  # "a new camera config version is live"
ACTIVITY_HASH = "cv:activity"  # camera -> capture time until which it has moving tracks
# camera -> its newest FrameRef (JSON) in the ingest host's shared memory: the live
# preview's way to the ring. Only readable on that host (not across nodes).
LATEST_FRAME_HASH = "cv:latest_frame"
# JSON [camera, type, rule] -> incidents opened: /metrics reads a counter per rule here
# instead of grouping the whole incidents table on every scrape.
INCIDENT_TOTALS_HASH = "cv:incident_totals"
INCIDENT_STREAM_MAXLEN = 100_000
EVENT_STREAM_MAXLEN = 10_000


def encode_event(kind: str, payload: dict[str, Any]) -> dict[str, str]:
    return {"kind": kind, "data": json.dumps(payload, separators=(",", ":"))}


def incident_totals_field(incident: dict[str, Any]) -> str:
    """The ``INCIDENT_TOTALS_HASH`` field of an incident: its camera, type and rule."""
    labels = [str(incident.get(key, "")) for key in ("camera_id", "type", "rule")]
    return json.dumps(labels, separators=(",", ":"), ensure_ascii=False)


def encode_frame_ref(ref: FrameRef) -> str:
    return json.dumps(asdict(ref), separators=(",", ":"))


def decode_frame_ref(raw: str | bytes) -> FrameRef:
    return FrameRef(**json.loads(raw))


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
        pipe = self._client.pipeline(transaction=True)  # the alert and its count, or neither
        pipe.xadd(
            INCIDENT_STREAM,
            encode_event(kind, payload),  # type: ignore[arg-type]
            maxlen=INCIDENT_STREAM_MAXLEN,
            approximate=True,
        )
        if kind == "opened":
            pipe.hincrby(INCIDENT_TOTALS_HASH, incident_totals_field(payload), 1)
        try:
            entry_id = pipe.execute()[0]
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

    def publish_latest_frames(self, refs: dict[str, FrameRef]) -> None:
        """Replace the whole hash in one transaction: cameras that were removed, or
        whose ring is gone, drop out, and a reader never sees it half written."""
        pipe = self._client.pipeline(transaction=True)
        pipe.delete(LATEST_FRAME_HASH)
        if refs:
            mapping = {cam: encode_frame_ref(ref) for cam, ref in refs.items()}
            pipe.hset(LATEST_FRAME_HASH, mapping=mapping)  # type: ignore[arg-type]
        try:
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("latest frames not published: %s", exc)

    def remove_health(self, camera_ids: list[str]) -> None:
        if camera_ids:
            self._client.hdel(HEALTH_HASH, *camera_ids)

    def close(self) -> None:
        self._client.close()


class ConfigListener:
    """Tells a pipeline process that a new camera config version is live."""

    def __init__(self, client: redis.Redis) -> None:
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
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
