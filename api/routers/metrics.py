"""Prometheus metrics. Camera health is data in Redis; this renders it on each
scrape into a fresh registry of our own (no global registry, no import-time metrics).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Annotated, Any

import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from api.bus_metrics import BusCollector
from api.deps import get_api_metrics, get_redis
from api.telemetry import ApiMetrics
from core.bus import HEALTH_HASH, INCIDENT_TOTALS_HASH, STATS_HASH
from core.types import CameraState

router = APIRouter(tags=["ops"])


class CameraHealthCollector(Collector):
    def __init__(self, health: list[dict[str, Any]], now_ts: float) -> None:
        self._health = health
        self._now_ts = now_ts

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        up = GaugeMetricFamily(
            "cv_camera_up", "1 when the camera delivers frames", labels=["camera"]
        )
        state = GaugeMetricFamily(
            "cv_camera_state", "1 for the camera's current state", labels=["camera", "state"]
        )
        input_fps = GaugeMetricFamily(
            "cv_camera_input_fps", "frames/s from the stream", labels=["camera"]
        )
        decoded_fps = GaugeMetricFamily(
            "cv_camera_decoded_fps", "frames/s sent to the detector", labels=["camera"]
        )
        age = GaugeMetricFamily(
            "cv_camera_last_frame_age_seconds", "seconds since the last frame", labels=["camera"]
        )
        dropped = CounterMetricFamily(
            "cv_camera_frames_dropped",
            "frames dropped because the detector queue was full",
            labels=["camera"],
        )
        reconnects = CounterMetricFamily(
            "cv_camera_reconnects", "reconnect attempts", labels=["camera"]
        )
        decode_errors = CounterMetricFamily(
            "cv_camera_decode_errors",
            "corrupt pictures and undecodable packets from the stream",
            labels=["camera"],
        )
        for h in self._health:
            cam = str(h["camera_id"])
            up.add_metric([cam], 1.0 if h["state"] == CameraState.ONLINE.value else 0.0)
            for s in CameraState:
                state.add_metric([cam, s.value], 1.0 if h["state"] == s.value else 0.0)
            input_fps.add_metric([cam], float(h["input_fps"]))
            decoded_fps.add_metric([cam], float(h["decoded_fps"]))
            if h.get("last_frame_ts") is not None:
                age.add_metric([cam], max(0.0, self._now_ts - float(h["last_frame_ts"])))
            dropped.add_metric([cam], float(h["frames_dropped"]))
            reconnects.add_metric([cam], float(h["reconnects"]))
            decode_errors.add_metric([cam], float(h.get("decode_errors", 0)))
        yield from (up, state, input_fps, decoded_fps, age, dropped, reconnects, decode_errors)


def _histogram(
    name: str, doc: str, data: dict[str, Any], scale: float = 1.0
) -> HistogramMetricFamily:
    """From ``{"buckets": [...], "counts": [... +Inf], "total": x}`` (per-bucket counts)."""
    cumulative, buckets = 0, []
    for bound, count in zip([*data["buckets"], float("inf")], data["counts"], strict=True):
        cumulative += int(count)
        buckets.append(("+Inf" if bound == float("inf") else str(bound * scale), cumulative))
    return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=float(data["total"]) * scale)


class DetectorCollector(Collector):
    def __init__(self, stats: dict[str, Any]) -> None:
        self._s = stats

    def collect(self) -> Iterator[Any]:
        s = self._s
        for name, key, doc in (
            ("cv_detector_frames_in", "frames_in", "frames received by the detector"),
            ("cv_detector_frames_detected", "frames_detected", "frames run through the model"),
            ("cv_detector_frames_stale", "frames_stale", "frames overwritten before their turn"),
            (
                "cv_detector_frames_mosaic",
                "frames_mosaic",
                "frames detected packed several to an input, at reduced size (detector.mosaic)",
            ),
            ("cv_detector_batches", "batches", "model calls"),
        ):
            # .get: a worker of an older release publishes no frames_mosaic.
            yield CounterMetricFamily(name, doc, value=float(s.get(key, 0)))
        max_batch = max(1, int(s["max_batch"]))
        sizes = [int(c) for c in s["batch_sizes"]]
        fill = CounterMetricFamily(
            "cv_detector_batch_size", "batches by number of frames", labels=["size"]
        )
        for size, count in enumerate(sizes):
            if size:
                fill.add_metric([str(size)], float(count))
        yield fill
        filled = sum(size * count for size, count in enumerate(sizes))
        yield GaugeMetricFamily(
            "cv_detector_batch_fill_ratio",
            "mean batch size ÷ max_batch",
            value=filled / max(1, sum(sizes[1:])) / max_batch,
        )
        yield _histogram(
            "cv_detector_inference_seconds", "model time per batch", s["infer_ms"], 0.001
        )
        yield _histogram(
            "cv_detector_queue_wait_seconds", "capture to batch start", s["queue_wait_ms"], 0.001
        )
        for name, key, doc in (
            ("cv_detector_frames_detected_by_camera", "detected_per_camera", "frames detected"),
            (
                "cv_detector_frames_dropped_by_camera",
                "dropped_per_camera",
                "oldest frames dropped because the camera's detector queue was full",
            ),
        ):
            family = CounterMetricFamily(name, doc, labels=["camera"])
            for camera, value in sorted(s[key].items()):
                family.add_metric([camera], float(value))
            yield family


class RecordingCollector(Collector):
    """Recording footprint and retention, from the store's ``recording`` stats entry
    (its shape is documented in ``streams/retention.py``)."""

    def __init__(self, stats: dict[str, Any]) -> None:
        self._s = stats

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        size = GaugeMetricFamily(
            "cv_recording_bytes", "bytes of recorded segments on disk", labels=["camera"]
        )
        segments = GaugeMetricFamily(
            "cv_recording_segments", "recorded segments on disk", labels=["camera"]
        )
        oldest = GaugeMetricFamily(
            "cv_recording_oldest_timestamp_seconds",
            "start of the oldest recorded footage, UTC",
            labels=["camera"],
        )
        for cam, usage in sorted(self._s.get("cameras", {}).items()):
            size.add_metric([cam], float(usage["bytes"]))
            segments.add_metric([cam], float(usage["segments"]))
            if usage.get("oldest_ts") is not None:
                oldest.add_metric([cam], float(usage["oldest_ts"]))
        deleted_segments = CounterMetricFamily(
            "cv_recording_deleted_segments",
            "segments deleted by retention, by reason",
            labels=["camera", "reason"],
        )
        deleted_bytes = CounterMetricFamily(
            "cv_recording_deleted_bytes",
            "bytes deleted by retention, by reason",
            labels=["camera", "reason"],
        )
        for cam, per_reason in sorted(self._s.get("deleted", {}).items()):
            for reason, counts in sorted(per_reason.items()):
                deleted_segments.add_metric([cam, reason], float(counts["segments"]))
                deleted_bytes.add_metric([cam, reason], float(counts["bytes"]))
        yield from (size, segments, oldest, deleted_segments, deleted_bytes)
        disk = self._s.get("disk", {})
        for name, key, doc in (
            ("cv_disk_free_bytes", "free_bytes", "free bytes on the recordings disk"),
            ("cv_disk_total_bytes", "total_bytes", "size of the recordings disk"),
            (
                "cv_disk_min_free_bytes",
                "threshold_bytes",
                "free space under which retention deletes the oldest footage",
            ),
        ):
            if disk.get(key) is not None:
                yield GaugeMetricFamily(name, doc, value=float(disk[key]))
        yield GaugeMetricFamily(
            "cv_disk_pressure",
            "1 while free space is low and retention deletes footage for it",
            value=1.0 if disk.get("pressure") else 0.0,
        )


class IncidentCollector(Collector):
    """Incidents opened per camera, type and rule, counted by the bus as each one's
    ``opened`` alert is published (``core.bus.INCIDENT_TOTALS_HASH``): one HGETALL per
    scrape, whatever the size of the incidents table. The count lives as long as the
    Valkey/Redis data does (the embedded server persists it), not the database."""

    def __init__(self, totals: dict[bytes | str, bytes | str]) -> None:
        self._totals = totals

    def collect(self) -> Iterator[CounterMetricFamily]:
        opened = CounterMetricFamily(
            "cv_incidents",
            "incidents opened, by camera, rule type and rule name",
            labels=["camera", "type", "rule"],
        )
        for field, count in sorted(self._totals.items()):
            camera, kind, rule = (str(v) for v in json.loads(field))
            opened.add_metric([camera, kind, rule], float(count))
        yield opened


@router.get("/metrics", response_class=Response)
async def metrics(
    client: Annotated[aioredis.Redis, Depends(get_redis)],
    api_metrics: Annotated[ApiMetrics, Depends(get_api_metrics)],
) -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(api_metrics)  # the API process's own: request and fan-out latency
    try:
        await _register_from_bus(registry, client)
    except RedisError:
        # The bus is down: answer with what is known, so the outage itself shows.
        registry.register(BusCollector(up=False, bus=None, store=None))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


async def _register_from_bus(registry: CollectorRegistry, client: aioredis.Redis) -> None:
    """Everything the stages published; read first, registered only when all was read."""
    raw = await client.hgetall(HEALTH_HASH)
    stats = _by_stage(await client.hgetall(STATS_HASH))
    totals = await client.hgetall(INCIDENT_TOTALS_HASH)
    registry.register(CameraHealthCollector([json.loads(v) for v in raw.values()], time.time()))
    registry.register(
        PerWorker({w: DetectorCollector(s) for w, s in stats.get("detector", {}).items()})
    )
    registry.register(
        PerWorker({w: RecordingCollector(s) for w, s in stats.get("recording", {}).items()})
    )
    registry.register(IncidentCollector(totals))
    buses, stores = stats.get("bus", {}), stats.get("store", {})
    nodes = sorted(set(buses) | set(stores)) or [""]
    registry.register(
        PerWorker({w: BusCollector(up=True, bus=buses.get(w), store=stores.get(w)) for w in nodes})
    )


def _by_stage(raw: dict[Any, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """stage → worker → stats, from ``cv:stats`` fields ``stage`` (one box: worker "")
    and ``stage@worker`` (a cluster, core/bus.py)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for field, value in raw.items():
        name = field.decode() if isinstance(field, bytes) else str(field)
        stage, _, worker = name.partition("@")
        out.setdefault(stage, {})[worker] = json.loads(value)
    return out


class PerWorker(Collector):
    """Several workers' collectors as one: each sample gets a ``worker`` label. One box
    (a single worker "") keeps its metrics unlabelled, as before clusters existed."""

    def __init__(self, parts: dict[str, Collector]) -> None:
        self._parts = parts

    def collect(self) -> Iterator[Metric]:
        if set(self._parts) <= {""}:
            for part in self._parts.values():
                yield from part.collect()
            return
        merged: dict[str, Metric] = {}
        for worker, part in sorted(self._parts.items()):
            for family in part.collect():
                out = merged.setdefault(
                    family.name, Metric(family.name, family.documentation, family.type)
                )
                out.samples.extend(
                    s._replace(labels={**s.labels, "worker": worker}) for s in family.samples
                )
        yield from merged.values()
