"""A packet-only reader for a camera's main stream, when detection reads a substream.

Decoding a 1080p main stream costs about 0.1 core (GUIDE §3); remuxing its packets
costs almost nothing. So the main stream is demuxed here and handed to the
recorder, and never decoded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from fractions import Fraction

import av

from core.config import CameraConfig
from core.redact import redact_url
from streams.pacing import WallClockMapper
from streams.reader import Backoff, PacketSink, open_options

log = logging.getLogger(__name__)


class RecordStreamReader:
    def __init__(
        self,
        camera: CameraConfig,
        url: str,
        sinks: Sequence[PacketSink],
        stop: threading.Event,
        backoff: Backoff | None = None,
    ) -> None:
        self.camera = camera
        self.url = url
        self._sinks = list(sinks)
        self._stop = stop
        self._backoff = backoff or Backoff()
        self.last_error: str | None = None
        self.packets = 0

    def run(self) -> None:
        delay_s = self._backoff.start_s
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self._session()
            except Exception as exc:
                self.last_error = f"{redact_url(self.url)}: {exc}"
                log.warning("camera %s record stream: %s", self.camera.id, self.last_error)
            finally:
                for sink in self._sinks:
                    sink.end_session(self.camera.id)
            if time.monotonic() - started > 30.0:
                delay_s = self._backoff.start_s  # it was up for a while: retry soon
            self._stop.wait(Backoff.jitter(delay_s))
            delay_s = self._backoff.next(delay_s)

    def _session(self) -> None:
        timeout = (self.camera.stall_timeout_s, self.camera.stall_timeout_s)
        mapper = WallClockMapper()
        with av.open(self.url, options=open_options(self.camera), timeout=timeout) as container:
            stream = container.streams.video[0]
            time_base = stream.time_base or Fraction(1, 90000)
            for packet in container.demux(stream):
                if self._stop.is_set():
                    return
                if packet.pts is None:
                    continue
                self.packets += 1
                capture_ts = mapper.capture_ts(float(packet.pts * time_base))
                for sink in self._sinks:
                    sink.on_packet(self.camera.id, packet, capture_ts)
