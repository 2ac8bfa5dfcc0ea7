"""Recording wiring of the ingest process: a recorder per camera, and the hand-off
of what recorders report to the single writer and the event bus.

Recorders run on camera reader threads, which must never block on a queue; they
only append to local queues, which the ingest loop drains once a second.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.config import CameraConfig
from core.types import CameraHealth, SegmentClosed
from streams.reader import PacketSink
from streams.recorder import SegmentRecorder, recover


class RecorderFactory:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._segments: queue.SimpleQueue[SegmentClosed] = queue.SimpleQueue()
        # (event kind, payload): recording_error, and recording_resumed once a
        # segment is written again (the disk had room again, say).
        self._errors: queue.SimpleQueue[tuple[str, dict[str, Any]]] = queue.SimpleQueue()

    def sinks_for(self, camera: CameraConfig, health: CameraHealth) -> list[PacketSink]:
        if not camera.record.enabled:
            return []
        # A previous run may have died mid-segment: drop its partial file and
        # re-announce its last segments, whose index entries may be lost.
        recover(self.root, camera.id, self._segments.put)
        return [
            SegmentRecorder(
                camera.id,
                self.root,
                camera.record.segment_s,
                self._segments.put,
                health,
                self._on_error,
                self._on_recovered,
            )
        ]

    def _on_error(self, camera_id: str, message: str) -> None:
        payload = {"camera_id": camera_id, "error": message, "ts": time.time()}
        self._errors.put(("recording_error", payload))

    def _on_recovered(self, camera_id: str) -> None:
        self._errors.put(("recording_resumed", {"camera_id": camera_id, "ts": time.time()}))

    def drain(
        self,
        store: Callable[[SegmentClosed], None],
        publish_event: Callable[[str, dict[str, Any]], None],
    ) -> int:
        """Hand on what the recorders reported; returns how many segments."""
        count = 0
        while not self._segments.empty():
            store(self._segments.get())
            count += 1
        while not self._errors.empty():
            publish_event(*self._errors.get())
        return count
