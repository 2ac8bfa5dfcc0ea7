"""Starts, watches and stops every process of the service.

Process graph (docs/architecture.md):
    ingest (a thread per camera) --FrameRef--> detector (one, batched)
    --(FrameRef, Detections)--> analytics (tracker + rules) --StoreEvent-->
    store (single writer) --XADD--> Valkey/Redis --XREAD--> api (WebSocket, SSE)
                                                  --XREAD--> webhooks (HTTP POST)
Frames themselves stay in shared memory.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.context import SpawnProcess
from pathlib import Path
from types import FrameType
from typing import Any

from commune_vision import processes, store_stage
from commune_vision.channels import FanIn, StageQueue
from commune_vision.stopflag import StopFlag
from commune_vision.valkey import EmbeddedValkey
from core.bus import WORKER_ID_ENV, EventBus
from core.config import AppConfig, load_config
from core.errors import ConfigError
from core.storage.config_store import ConfigStore
from core.storage.db import make_engine
from core.storage.migrate import upgrade

log = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 10.0
RESTART_BACKOFF_S = 2.0
# A stage that ran this long before dying starts its backoff afresh: a crash a day
# should not wait as long as a crash loop does.
STABLE_RUN_S = 60.0
API_STAGES = ("cv-api", "cv-webhooks")
PIPELINE_STAGES = ("cv-store", "cv-analytics", "cv-detector", "cv-ingest")


@dataclass
class _Child:
    name: str
    target: Callable[..., None]
    args: tuple[Any, ...]
    process: SpawnProcess | None = None
    restarts: int = 0
    crash_streak: int = 0  # crashes in a row, each after a short run: sets the backoff
    started_monotonic: float = 0.0


ROLES = ("all", "worker", "api")


def check_role(config: AppConfig, role: str) -> None:
    """A worker or a lone API shares Redis and the database with other nodes: refuse
    to start with an embedded Valkey or a SQLite file, which nobody else can reach."""
    if role == "all":
        return
    if not config.redis_url:
        raise ConfigError(
            f"commune-vision {role}",
            [
                "redis_url: the nodes of a cluster share one Redis/Valkey; set redis_url "
                "in the config or REDIS_URL (docs/deployment.md)"
            ],
        )
    if config.storage.resolved_database_url.startswith("sqlite"):
        raise ConfigError(
            f"commune-vision {role}",
            [
                "storage.database_url: the nodes of a cluster share one PostgreSQL; set "
                "storage.database_url or DATABASE_URL to a postgresql+psycopg:// URL "
                "(docs/deployment.md)"
            ],
        )


class Supervisor:
    def __init__(
        self,
        config: AppConfig,
        config_path: Path | None = None,
        role: str = "all",
        worker_id: str | None = None,
    ) -> None:
        """``role``: ``all`` runs everything on one box; ``worker`` the pipeline for
        the cameras it holds leases on (``worker_id``); ``api`` the API and webhooks."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {role!r}")
        check_role(config, role)
        self.role = role
        self.worker_id = worker_id or "worker"
        self.config = config
        self.config_path = config_path
        self._ctx = mp.get_context("spawn")
        self.stop_event = StopFlag(self._ctx)
        self.store_stop = StopFlag(self._ctx)
        self._children: list[_Child] = []
        self._valkey: EmbeddedValkey | None = None
        self.redis_url = ""
        self._stopping = False
        self._reload_requested = False
        self._pid_file: Path | None = None

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
        self._store = ConfigStore(engine)
        self._sync_cameras_from_file()
        latest = self._store.latest()
        if latest is not None:
            # The newest version runs: API edits survive a restart with an unchanged file.
            cfg = self.config = cfg.model_copy(update={"cameras": latest.cameras})
        # Nodes of a cluster may share one data folder: one pid file each.
        pid_name = {"all": "commune-vision", "api": "api", "worker": f"worker-{self.worker_id}"}
        self._pid_file = cfg.storage.data_dir / f"{pid_name[self.role]}.pid"
        self._pid_file.write_text(str(os.getpid()))

        # One producer and one consumer per queue, no cross-process locks: a stage
        # killed with SIGKILL cannot wedge a queue for the others (channels.py).
        # The writer reads one events queue per producer.
        frames_q = StageQueue(cfg.detector.queue_size, ctx=self._ctx)
        results_q = StageQueue(1024, ctx=self._ctx)
        ingest_events_q = StageQueue(10_000, ctx=self._ctx)
        analytics_events_q = StageQueue(10_000, ctx=self._ctx)
        events_q = FanIn(ingest_events_q, analytics_events_q)
        stop = self.stop_event
        worker = self.worker_id if self.role == "worker" else None
        self._children = [
            # The writer has its own stop flag, set only once every producer has
            # ended, so what they report while stopping (closed incidents, the last
            # traffic counts) is still written.
            _Child(
                "cv-store",
                store_stage.store_main,
                (cfg, events_q, self.store_stop, self.redis_url, worker),
            ),
            _Child("cv-api", processes.api_main, (cfg, self.redis_url, stop)),
            # Its own process: webhook receivers that hang never touch the pipeline.
            _Child("cv-webhooks", processes.webhooks_main, (cfg, stop, self.redis_url)),
            _Child(
                "cv-analytics",
                processes.analytics_main,
                (cfg, results_q, analytics_events_q, stop, self.redis_url, worker is not None),
            ),
            _Child(
                "cv-detector",
                processes.detector_main,
                (cfg, frames_q, results_q, stop, self.redis_url),
            ),
            _Child(
                "cv-ingest",
                processes.ingest_main,
                (cfg, frames_q, ingest_events_q, stop, self.redis_url, worker),
            ),
        ]
        keep = {"all": None, "api": API_STAGES, "worker": PIPELINE_STAGES}[self.role]
        if keep is not None:
            self._children = [c for c in self._children if c.name in keep]
        if self.role == "worker":
            os.environ[WORKER_ID_ENV] = self.worker_id  # the stages' stats carry it
        for child in self._children:
            self._spawn(child)

    def _sync_cameras_from_file(self) -> int | None:
        if self.config_path is None:
            return None
        text = self.config_path.read_text(encoding="utf-8")
        cameras = load_config(self.config_path).cameras
        version = self._store.sync_from_file(cameras, text, str(self.config_path))
        if version is not None:
            log.info("camera config version %d imported from %s", version, self.config_path)
        return version

    def reload(self) -> None:
        """SIGHUP: import the YAML file again; running stages follow a new version."""
        try:
            version = self._sync_cameras_from_file()
        except ConfigError as exc:
            log.error("config reload refused, nothing changed:\n%s", exc)
            return
        if version is None:
            log.info("config reload: cameras unchanged")
            return
        bus = EventBus(self.redis_url)
        try:
            bus.notify_config(version)
        finally:
            bus.close()

    def _spawn(self, child: _Child) -> None:
        child.process = self._ctx.Process(target=child.target, args=child.args, name=child.name)
        child.process.start()
        child.started_monotonic = time.monotonic()
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
            stable = time.monotonic() - child.started_monotonic >= STABLE_RUN_S
            child.crash_streak = 1 if stable else child.crash_streak + 1
            log.error(
                "%s exited with code %s; restarting (restart %d)",
                child.name,
                proc.exitcode,
                child.restarts,
            )
            time.sleep(min(RESTART_BACKOFF_S * child.crash_streak, 30.0))
            if not self._stopping:
                self._spawn(child)

    def run_forever(self) -> None:
        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %s: stopping", signal.Signals(signum).name)
            self._stopping = True

        def on_hup(_signum: int, _frame: FrameType | None) -> None:
            self._reload_requested = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGHUP, on_hup)
        while not self._stopping:
            if self._reload_requested:
                self._reload_requested = False
                self.reload()
            self.watch_once()
            time.sleep(0.5)
        self.stop()

    def stop(self) -> None:
        self._stopping = True
        self.stop_event.set()
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        # Producers first, then the writer, so it drains everything they reported.
        writers = [c for c in self._children if c.name == "cv-store"]
        for child in [c for c in reversed(self._children) if c not in writers] + writers:
            if child in writers:
                self.store_stop.set()
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
        if self._pid_file is not None:
            self._pid_file.unlink(missing_ok=True)
        log.info("stopped")
