"""All camera readers of one process: start, stop, change one camera without
touching the others, and watch them.

Each reader has its own thread and its own stop event, so removing or
reconfiguring camera 7 never pauses camera 8.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import cv2

from core.config import CameraConfig
from core.types import CameraHealth, CameraState, FrameRef
from streams.backpressure import CameraAdmission
from streams.reader import (
    Backoff,
    CameraReader,
    FrameGate,
    PacketSink,
    Publish,
    StateListener,
)
from streams.record_reader import RecordStreamReader

log = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 15.0


@dataclass
class _Running:
    reader: CameraReader
    thread: threading.Thread
    stop: threading.Event
    record_thread: threading.Thread | None = None


class CameraManager:
    def __init__(
        self,
        publish: Publish,
        on_state: StateListener | None = None,
        packet_sinks: Callable[[CameraConfig, CameraHealth], list[PacketSink]] | None = None,
        backoff: Backoff | None = None,
        gate_factory: Callable[[CameraConfig], FrameGate | None] | None = None,
    ) -> None:
        self._publish = publish
        self._gate_factory = gate_factory
        self._on_state = on_state
        self._packet_sinks = packet_sinks
        self._backoff = backoff
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        # Parallelism comes from a thread per camera; OpenCV's own worker pool on
        # top only spins and contends for the same cores on small frames.
        cv2.setNumThreads(1)

    @property
    def camera_ids(self) -> list[str]:
        return sorted(self._running)

    def readers(self) -> list[CameraReader]:
        with self._lock:
            return [r.reader for r in self._running.values()]

    def apply(self, cameras: Iterable[CameraConfig]) -> tuple[list[str], list[str], list[str]]:
        """Make the running set match ``cameras``; returns (added, changed, removed) ids."""
        wanted = {c.id: c for c in cameras if c.enabled}
        added, changed, removed = [], [], []
        with self._lock:
            current = dict(self._running)
        for camera_id, running in current.items():
            config = wanted.get(camera_id)
            if config is None:
                self._stop_one(camera_id)
                removed.append(camera_id)
            elif config != running.reader.camera:
                if config.stream_settings() != running.reader.camera.stream_settings():
                    self._stop_one(camera_id)
                    self._start_one(config)
                else:
                    running.reader.camera = config  # zones, rules, filters: no reconnect
                changed.append(camera_id)
        for camera_id, config in wanted.items():
            if camera_id not in current:
                self._start_one(config)
                added.append(camera_id)
        if added or changed or removed:
            log.info("cameras: +%s ~%s -%s", added, changed, removed)
        return added, changed, removed

    def _start_one(self, camera: CameraConfig) -> None:
        stop = threading.Event()
        # One health record per camera, shared by its reader and its recorder.
        health = CameraHealth(camera_id=camera.id)
        sinks = self._packet_sinks(camera, health) if self._packet_sinks else []
        gate = self._gate_factory(camera) if self._gate_factory else None
        record_thread = None
        if camera.record_url and sinks:
            # Record the main stream by remux on its own connection; the detect
            # substream then feeds only the detector.
            record_reader = RecordStreamReader(
                camera, camera.record_url, sinks, stop, self._backoff
            )
            record_thread = threading.Thread(
                target=record_reader.run, name=f"rec-{camera.id}", daemon=True
            )
            sinks = []
        reader = CameraReader(
            camera, self._publish, stop, self._on_state, sinks, self._backoff, gate, health
        )
        thread = threading.Thread(target=reader.run, name=f"cam-{camera.id}", daemon=True)
        with self._lock:
            self._running[camera.id] = _Running(reader, thread, stop, record_thread)
        thread.start()
        if record_thread is not None:
            record_thread.start()

    def _stop_one(self, camera_id: str) -> None:
        with self._lock:
            running = self._running.pop(camera_id, None)
        if running is None:
            return
        running.stop.set()
        # A read blocked in FFmpeg returns within the camera's timeout at most.
        for thread in (running.thread, running.record_thread):
            if thread is None:
                continue
            thread.join(timeout=running.reader.camera.stall_timeout_s + JOIN_TIMEOUT_S)
            if thread.is_alive():
                log.error("camera %s: %s did not stop in time", camera_id, thread.name)

    def watchdog(self) -> None:
        now = time.monotonic()
        for reader in self.readers():
            reader.check_stall(now)

    def health(self) -> dict[str, dict[str, object]]:
        return {r.camera.id: r.health.to_json_dict() for r in self.readers()}

    def latest_frames(self) -> dict[str, FrameRef]:
        """Each running camera's newest frame in shared memory (cameras with none left out)."""
        refs = {r.camera.id: r.last_ref for r in self.readers()}
        return {camera_id: ref for camera_id, ref in refs.items() if ref is not None}

    def admission(self) -> dict[str, CameraAdmission]:
        """Per camera: its ceiling (detect fps) and frames admitted / held back."""
        return {r.camera.id: r.admission() for r in self.readers()}

    def set_admit_fps(self, fps: Mapping[str, float]) -> None:
        """Backpressure: each camera's admitted fps; a camera left out is not throttled."""
        for reader in self.readers():
            reader.set_admit_fps(fps.get(reader.camera.id))

    def states(self) -> dict[str, CameraState]:
        return {r.camera.id: r.health.state for r in self.readers()}

    def stop_all(self) -> None:
        with self._lock:
            ids = list(self._running)
        for running in [self._running[i] for i in ids if i in self._running]:
            running.stop.set()  # signal all first, then wait: stops in parallel
        for camera_id in ids:
            self._stop_one(camera_id)
