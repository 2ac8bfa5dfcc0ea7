"""The Redis/Valkey event bus: incident alerts on a stream, camera health in a hash.

A stream (not pub/sub) so that a client that reconnects can ask for what it missed.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from typing import Any

import redis

from core.errors import BusError
from core.types import FrameRef

log = logging.getLogger(__name__)

INCIDENT_STREAM = "cv:incidents"
EVENT_STREAM = "cv:events"  # system events: camera state changes, disk pressure, …
HEALTH_HASH = "cv:health"
STATS_HASH = "cv:stats"  # per-stage counters for /metrics
# Set by `commune-vision worker` for its stages: stats fields carry the worker's id.
WORKER_ID_ENV = "COMMUNE_VISION_WORKER_ID"
CONFIG_CHANNEL = "cv:config"  # "a new camera config version is live"
ACTIVITY_HASH = "cv:activity"  # camera -> capture time until which it has moving tracks
# camera -> its newest FrameRef (JSON) in the ingest host's shared memory: the live
# preview's way to the ring. Only readable on that host (not across nodes).
LATEST_FRAME_HASH = "cv:latest_frame"
# camera -> JSON {"ref": FrameRef, "boxes": [[x1, y1, x2, y2, confidence, label], …]}:
# analytics' newest detections before its per-class filters (boxes normalised 0..1),
# for the console's threshold preview. Same host as the rings, like cv:latest_frame.
LATEST_DETECTIONS_HASH = "cv:latest_detections"
# JSON [camera, type, rule] -> incidents opened: /metrics reads a counter per rule here
# instead of grouping the whole incidents table on every scrape.
INCIDENT_TOTALS_HASH = "cv:incident_totals"
INCIDENT_STREAM_MAXLEN = 100_000
EVENT_STREAM_MAXLEN = 10_000
# "<session>:<seq>" of the newest message the store's outbox published: the dedup and
# data-loss check of :meth:`EventBus.publish_sequenced` (core/outbox.py).
OUTBOX_MARKER_KEY = "cv:outbox:published"

# One atomic step on the server: skip a message already published (its reply was
# lost with the connection, so the outbox retries it), else XADD it, count an opened
# incident, and move the marker. Also tells whether the server lost what this
# session published before (it came back empty, or from an older snapshot).
_PUBLISH_ONCE_LUA = """
local marker = redis.call('GET', KEYS[3])
local mine, last = false, 0
if marker then
  local sep = string.find(marker, ':', 1, true)
  mine = sep ~= nil and string.sub(marker, 1, sep - 1) == ARGV[1]
  if mine then last = tonumber(string.sub(marker, sep + 1)) end
end
local acked = tonumber(ARGV[3])
local lost = 0
if acked > 0 and ((not mine) or last < acked) then lost = 1 end
if mine and last >= tonumber(ARGV[2]) then return {'', lost} end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*',
                      'kind', ARGV[5], 'data', ARGV[6])
if ARGV[7] ~= '' then redis.call('HINCRBY', KEYS[2], ARGV[7], 1) end
redis.call('SET', KEYS[3], ARGV[1] .. ':' .. ARGV[2])
return {id, lost}
"""


WARN_EVERY_S = 30.0
_last_warned: dict[str, float] = {}


def _warn_throttled(what: str, exc: Exception) -> None:
    """Best-effort publishes fail several times a second while the bus restarts: one
    warning per kind of failure every ``WARN_EVERY_S``, the rest at debug level."""
    now = time.monotonic()
    if now - _last_warned.get(what, -WARN_EVERY_S) >= WARN_EVERY_S:
        _last_warned[what] = now
        log.warning("%s: %s (bus unavailable? repeats are logged at debug level)", what, exc)
    else:
        log.debug("%s: %s", what, exc)


def encode_event(kind: str, payload: dict[str, Any]) -> dict[str, str]:
    return {"kind": kind, "data": json.dumps(payload, separators=(",", ":"))}


def incident_totals_field(incident: dict[str, Any]) -> str:
    """The ``INCIDENT_TOTALS_HASH`` field of an incident: its camera, type and rule."""
    labels = [str(incident.get(key, "")) for key in ("camera_id", "type", "rule")]
    return json.dumps(labels, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class SequencedMessage:
    """One alert or system event waiting in the store's outbox (core/outbox.py)."""

    seq: int  # per outbox session, increasing: what makes a retry idempotent
    stream: str  # INCIDENT_STREAM or EVENT_STREAM
    kind: str
    data: str  # the JSON payload, as encode_event writes it
    totals_field: str  # INCIDENT_TOTALS_HASH field to count ("" for none)
    maxlen: int


def encode_frame_ref(ref: FrameRef) -> str:
    return json.dumps(asdict(ref), separators=(",", ":"))


def decode_frame_ref(raw: str | bytes) -> FrameRef:
    return FrameRef(**json.loads(raw))


class EventBus:
    """Synchronous publisher used by pipeline processes."""

    def __init__(self, redis_url: str) -> None:
        self._client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        self._publish_once = self._client.register_script(_PUBLISH_ONCE_LUA)
        self._own_fields: dict[str, set[str]] = {}  # hash → the fields this process wrote

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

    def publish_sequenced(
        self, message: SequencedMessage, session: str, acked_seq: int
    ) -> tuple[str | None, bool]:
        """Publish ``message`` at most once per (session, seq); raises BusError.

        Returns the stream entry id (None when an earlier try already published it)
        and whether the server lost messages of this session acknowledged up to
        ``acked_seq`` (0: nothing acknowledged yet)."""
        # One marker per writer: in a cluster each worker's outbox has its own
        # sequence, and a shared marker read as "the bus lost my messages".
        worker = os.environ.get(WORKER_ID_ENV)
        marker = f"{OUTBOX_MARKER_KEY}:{worker}" if worker else OUTBOX_MARKER_KEY
        keys = [message.stream, INCIDENT_TOTALS_HASH, marker]
        args: list[str | int] = [session, message.seq, acked_seq, message.maxlen]
        args += [message.kind, message.data, message.totals_field]
        try:
            reply = self._publish_once(keys=keys, args=args)
        except redis.RedisError as exc:
            raise BusError(f"cannot publish to {message.stream}: {exc}") from exc
        entry_id, lost = reply[0], int(reply[1])
        if isinstance(entry_id, bytes):
            entry_id = entry_id.decode()
        return (str(entry_id) or None), bool(lost)

    def publish_event(self, kind: str, payload: dict[str, Any]) -> None:
        try:
            self._client.xadd(
                EVENT_STREAM,
                encode_event(kind, payload),  # type: ignore[arg-type]
                maxlen=EVENT_STREAM_MAXLEN,
                approximate=True,
            )
        except redis.RedisError as exc:
            _warn_throttled(f"event {kind} not published", exc)

    def stats_field(self, stage: str) -> str:
        """The ``cv:stats`` field of ``stage`` on this node: ``detector`` on one box,
        ``detector@<worker id>`` in a cluster, so workers do not overwrite each other."""
        worker = os.environ.get(WORKER_ID_ENV)
        return f"{stage}@{worker}" if worker else stage

    def publish_stats(self, stage: str, stats: dict[str, Any]) -> None:
        try:
            self._client.hset(
                STATS_HASH, self.stats_field(stage), json.dumps(stats, separators=(",", ":"))
            )
        except redis.RedisError as exc:
            _warn_throttled(f"stats of {stage} not published", exc)

    def publish_activity(self, until_ts: dict[str, float]) -> None:
        if not until_ts:
            return
        try:
            self._client.hset(ACTIVITY_HASH, mapping={k: repr(v) for k, v in until_ts.items()})
        except redis.RedisError as exc:
            _warn_throttled("activity not published", exc)

    def read_activity(self) -> dict[str, float]:
        try:
            raw = self._client.hgetall(ACTIVITY_HASH)
        except redis.RedisError as exc:
            _warn_throttled("activity not read", exc)
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
            _warn_throttled("camera health not published", exc)

    def publish_latest_frames(self, refs: dict[str, FrameRef]) -> None:
        """Each camera's newest frame in shared memory, for the API's live preview."""
        mapping = {cam: encode_frame_ref(ref) for cam, ref in refs.items()}
        self._replace_own(LATEST_FRAME_HASH, mapping, "latest frames")

    def publish_latest_detections(self, latest: dict[str, dict[str, Any]]) -> None:
        """Each camera's newest detections, for the console's threshold preview."""
        mapping = {cam: json.dumps(d, separators=(",", ":")) for cam, d in latest.items()}
        self._replace_own(LATEST_DETECTIONS_HASH, mapping, "latest detections")

    def _replace_own(self, key: str, mapping: dict[str, str], what: str) -> None:
        """Replace the fields this publisher owns, in one transaction: cameras it
        stopped serving drop out, and a reader never sees it half written. Other
        workers' cameras in the same hash are left alone (core/leases.py)."""
        stale = self._own_fields.get(key, set()) - set(mapping)
        pipe = self._client.pipeline(transaction=True)
        if stale:
            pipe.hdel(key, *sorted(stale))
        if mapping:
            pipe.hset(key, mapping=mapping)  # type: ignore[arg-type]
        try:
            pipe.execute()
        except redis.RedisError as exc:
            _warn_throttled(f"{what} not published", exc)
            return
        self._own_fields[key] = set(mapping)

    def remove_health(self, camera_ids: list[str]) -> None:
        if not camera_ids:
            return
        try:
            self._client.hdel(HEALTH_HASH, *camera_ids)
        except redis.RedisError as exc:  # a restarting bus must not end the ingest loop
            _warn_throttled("health of removed cameras not removed", exc)

    def close(self) -> None:
        self._client.close()

    def read_stats(self, stage: str) -> dict[str, Any] | None:
        """A stage's newest ``publish_stats`` entry; None before its first publish or
        while the bus is unavailable (ingest's backpressure reads the detector's)."""
        try:
            raw = self._client.hget(STATS_HASH, self.stats_field(stage))
        except redis.RedisError as exc:
            _warn_throttled(f"stats of {stage} not read", exc)
            return None
        if not isinstance(raw, bytes | str):
            return None
        try:
            stats = json.loads(raw)
        except ValueError:
            return None
        return stats if isinstance(stats, dict) else None


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
            _warn_throttled("config notifications", exc)
        return newest

    def close(self) -> None:
        self._pubsub.close()
