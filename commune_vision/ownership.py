"""Which cameras this node's ingest runs: all of them (``commune-vision run``), or the
ones this worker holds leases on (``commune-vision worker``, core/leases.py)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

import redis
from redis.exceptions import RedisError

from core.config import CameraConfig, ClusterConfig
from core.leases import CameraLeases

log = logging.getLogger(__name__)


class CameraOwnership(Protocol):
    def select(self, cameras: list[CameraConfig]) -> list[CameraConfig]:
        """The cameras to run now, out of every configured one."""
        ...

    def handed_over(self) -> None:
        """The cameras ``select`` left out have stopped: others may take them now."""
        ...

    def leave(self) -> None: ...


class AllCameras:
    """One box runs every camera."""

    def select(self, cameras: list[CameraConfig]) -> list[CameraConfig]:
        return cameras

    def handed_over(self) -> None:
        pass

    def leave(self) -> None:
        pass


class LeasedCameras:
    """A worker runs the cameras it holds leases on.

    A thread renews them every ``heartbeat_s``: stopping a hung camera can hold the
    ingest loop for its read timeout plus the join timeout (25 s by default), longer
    than a lease lives. The thread stops renewing when the loop itself has not come
    by for ``LOOP_STALL_S``: then the others take over the cameras of a wedged ingest.
    """

    LOOP_STALL_S = 60.0

    def __init__(self, redis_url: str, worker_id: str, cluster: ClusterConfig) -> None:
        self._client = redis.Redis.from_url(
            redis_url, socket_timeout=2.0, socket_connect_timeout=2.0
        )
        self._leases = CameraLeases(self._client, worker_id, cluster.lease_ttl_s)
        self._heartbeat_s = cluster.heartbeat_s
        self._lock = threading.Lock()  # the leases, and the sets below
        self._wanted: list[str] = []
        self._serving: set[str] = set()
        self._give_away: set[str] = set()
        self._stopped: set[str] = set()  # left out by the last select: release them
        self._loop_seen = time.monotonic()
        self._warned_at = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="camera-leases", daemon=True)

    def select(self, cameras: list[CameraConfig]) -> list[CameraConfig]:
        with self._lock:
            self._wanted = [c.id for c in cameras if c.enabled]
            self._loop_seen = time.monotonic()
        if not self._thread.is_alive():
            self._tick()  # the first cameras start now, not a heartbeat later
            self._thread.start()
        with self._lock:
            serving = set(self._serving)
            self._stopped = set(self._give_away) - serving
        return [c for c in cameras if c.id in serving]

    def handed_over(self) -> None:
        with self._lock:
            stopped, self._stopped = self._stopped - self._serving, set()
            if not stopped:
                return
            log.info("handing over cameras %s", sorted(stopped))
            try:
                self._leases.release(stopped)
            except RedisError as exc:
                log.warning("leases not released (%s); they expire by themselves", exc)

    def leave(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        with self._lock:
            try:
                self._leases.leave()
            except RedisError as exc:
                log.warning("leases not released on stop (%s); they expire by themselves", exc)
        self._client.close()

    def _run(self) -> None:
        while not self._stop.wait(self._heartbeat_s):
            with self._lock:
                stalled_s = time.monotonic() - self._loop_seen
            if stalled_s > self.LOOP_STALL_S:
                self._warn(f"ingest loop silent for {stalled_s:.0f} s; leases left to expire")
                continue
            self._tick()

    def _tick(self) -> None:
        with self._lock:
            try:
                tick = self._leases.tick(self._wanted)
            except RedisError as exc:
                # Keep serving what we hold: nobody can claim it while Redis is down,
                # and a camera dropped for a Redis blip loses its recording.
                self._warn(f"camera leases not renewed ({exc}); keeping current cameras")
                return
            self._serving, self._give_away = tick.serve, tick.give_away

    def _warn(self, message: str) -> None:
        now = time.monotonic()
        if now - self._warned_at > 30:
            self._warned_at = now
            log.warning(message)
