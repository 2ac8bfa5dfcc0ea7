"""Starts, watches and stops every process of the service.

Process graph (docs/architecture.md):
    ingest (a thread per camera) --FrameRef--> detector (one, batched)
    --(FrameRef, Detections)--> analytics (tracker + rules) --IncidentEvent-->
    store (single writer) --XADD--> Valkey/Redis --XREAD--> api (WebSocket)
Frames themselves stay in shared memory.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.context import SpawnProcess
from types import FrameType
from typing import Any

from commune_vision import processes
from commune_vision.stopflag import StopFlag
from commune_vision.valkey import EmbeddedValkey
from core.config import AppConfig
from core.storage.db import make_engine
from core.storage.migrate import upgrade

log = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 10.0
RESTART_BACKOFF_S = 2.0


@dataclass
class _Child:
    name: str
    target: Callable[..., None]
    args: tuple[Any, ...]
    process: SpawnProcess | None = None
    restarts: int = 0


class Supervisor:
    def __init__(self, config: AppConfig) -> None:
        self.config = config
        self._ctx = mp.get_context("spawn")
        self.stop_event = StopFlag(self._ctx)
        self._children: list[_Child] = []
        self._valkey: EmbeddedValkey | None = None
        self.redis_url = ""
        self._stopping = False

    def start(self) -> None:
        cfg = self.config
        cfg.storage.data_dir.mkdir(parents=True, exist_ok=True)
        if cfg.redis_url:
            self.redis_url = cfg.redis_url
        else:
            self._valkey = EmbeddedValkey(cfg.storage.data_dir / "valkey")
            self.redis_url = self._valkey.start()
        engine = make_engine(cfg.storage.resolved_database_url)
        upgrade(engine)
        engine.dispose()

        frames_q = self._ctx.Queue(maxsize=cfg.detector.queue_size)
        results_q = self._ctx.Queue(maxsize=1024)
        events_q = self._ctx.Queue(maxsize=10_000)
        stop = self.stop_event
        self._children = [
            _Child("cv-store", processes.store_main, (cfg, events_q, stop, self.redis_url)),
            _Child("cv-api", processes.api_main, (cfg, self.redis_url, stop)),
            _Child("cv-analytics", processes.analytics_main, (cfg, results_q, events_q, stop)),
            _Child("cv-detector", processes.detector_main, (cfg, frames_q, results_q, stop)),
            _Child("cv-ingest", processes.ingest_main, (cfg, frames_q, stop, self.redis_url)),
        ]
        for child in self._children:
            self._spawn(child)

    def _spawn(self, child: _Child) -> None:
        child.process = self._ctx.Process(target=child.target, args=child.args, name=child.name)
        child.process.start()
        log.info("started %s (pid %s)", child.name, child.process.pid)

    def pids(self) -> dict[str, int]:
        return {c.name: c.process.pid for c in self._children if c.process and c.process.pid}

    def watch_once(self) -> None:
        """Restart any child that died; one crashed stage must not end the service."""
        for child in self._children:
            proc = child.process
            if self._stopping or proc is None or proc.is_alive():
                continue
            child.restarts += 1
            log.error(
                "%s exited with code %s; restarting (restart %d)",
                child.name,
                proc.exitcode,
                child.restarts,
            )
            time.sleep(min(RESTART_BACKOFF_S * child.restarts, 30.0))
            if not self._stopping:
                self._spawn(child)

    def run_forever(self) -> None:
        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %s: stopping", signal.Signals(signum).name)
            self._stopping = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        while not self._stopping:
            self.watch_once()
            time.sleep(0.5)
        self.stop()

    def stop(self) -> None:
        self._stopping = True
        self.stop_event.set()
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        # Producers first, so the writer can drain what is already reported.
        for child in reversed(self._children):
            if child.process is not None:
                child.process.join(timeout=max(0.1, deadline - time.monotonic()))
        for child in self._children:
            proc = child.process
            if proc is not None and proc.is_alive():
                log.warning("%s did not stop in time; terminating", child.name)
                proc.terminate()
                proc.join(timeout=3)
                if proc.is_alive():
                    proc.kill()
                    proc.join(timeout=3)
        if self._valkey is not None:
            self._valkey.stop()
            self._valkey = None
        log.info("stopped")
