"""What-if replay jobs: one at a time, on a worker thread of the API process.

A replay decodes and detects minutes of footage: seconds to minutes of CPU, far too
long for a request. ``POST /api/replays`` queues a job and answers at once; the
console polls ``GET /api/replays/{id}`` for its progress and result.

The work itself is a ``ReplayRunner`` the composition root passes to ``create_app``
(``commune_vision/replay_runner.py``): the detector and the rules live above ``api``
in the layering, so the API receives the runner instead of importing it. Without
one (``uvicorn api.app:app_from_env`` on its own) replays answer 503.

Limits, because the box is 2 cores shared with the live pipeline: one job at a
time (a second gets 409), the worker thread runs at a lower CPU priority (nice
+10, Linux per-thread) so live detection wins, a job is cancelled after
``max_runtime_s``, and only the newest ``KEEP_JOBS`` jobs are kept, in memory (an
API restart forgets them; a running one is cancelled).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from core.config import CameraConfig

log = logging.getLogger(__name__)

KEEP_JOBS = 10
LOW_PRIORITY_NICE = 10


class ReplayRunner(Protocol):
    """Replays ``[since_ts, until_ts)`` of ``candidate.id``'s recordings with both
    configs; calls ``progress(fraction_done)`` per frame (an exception raised there
    aborts the replay) and returns the JSON of ``ReplayResultOut``. Raises
    ``ValueError`` (or any exception) with a message for the admin on failure."""

    def __call__(
        self,
        candidate: CameraConfig,
        current: CameraConfig,
        since_ts: float,
        until_ts: float,
        progress: Callable[[float], None],
    ) -> Mapping[str, Any]: ...


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = frozenset({JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED})


class ReplayBusyError(Exception):
    """A replay is already queued or running (409)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(
            f"replay {job_id} is still running: wait for it or cancel it "
            f"(DELETE /api/replays/{job_id}); one replay runs at a time"
        )
        self.job_id = job_id


class _CancelledError(Exception):
    """Raised from the progress callback: unwinds the runner between two frames."""


@dataclass
class ReplayJob:
    id: str
    camera_id: str
    since_ts: float
    until_ts: float
    requested_by: str
    created_ts: float
    candidate: CameraConfig
    current: CameraConfig
    status: JobStatus = JobStatus.QUEUED
    progress: float = 0.0
    started_ts: float | None = None
    finished_ts: float | None = None
    error: str | None = None
    result: Mapping[str, Any] | None = None
    cancel: threading.Event = field(default_factory=threading.Event)


class ReplayJobs:
    """The API's job table (one per app, in the lifespan state). Thread-safe: the
    event loop reads and starts jobs while the worker thread updates one."""

    def __init__(self, runner: ReplayRunner | None, max_runtime_s: float = 900.0) -> None:
        self._runner = runner
        self._max_runtime_s = max_runtime_s
        self._jobs: dict[str, ReplayJob] = {}  # oldest first
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def available(self) -> bool:
        return self._runner is not None

    def start(
        self,
        candidate: CameraConfig,
        current: CameraConfig,
        since_ts: float,
        until_ts: float,
        requested_by: str,
    ) -> ReplayJob:
        """Queue a job and start its thread; ReplayBusyError while one is unfinished."""
        if self._runner is None:
            raise RuntimeError("no replay runner: the API was started without one")
        runner = self._runner
        with self._lock:
            busy = next((j for j in self._jobs.values() if j.status not in FINISHED), None)
            if busy is not None:
                raise ReplayBusyError(busy.id)
            job = ReplayJob(
                id=uuid.uuid4().hex[:12],
                camera_id=candidate.id,
                since_ts=since_ts,
                until_ts=until_ts,
                requested_by=requested_by,
                created_ts=time.time(),
                candidate=candidate,
                current=current,
            )
            self._jobs[job.id] = job
            for old in [j for j in self._jobs.values() if j.status in FINISHED]:
                if len(self._jobs) <= KEEP_JOBS:
                    break
                del self._jobs[old.id]
            self._thread = threading.Thread(
                target=self._run, args=(job, runner), name=f"replay-{job.id}", daemon=True
            )
            self._thread.start()
        return job

    def get(self, job_id: str) -> ReplayJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def list(self) -> list[ReplayJob]:
        """Newest first."""
        with self._lock:
            return list(reversed(self._jobs.values()))

    def cancel(self, job_id: str) -> ReplayJob | None:
        """Ask a job to stop at its next frame; a finished job is left as it is."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is not None and job.status not in FINISHED:
            job.cancel.set()
        return job

    def close(self, timeout_s: float = 10.0) -> None:
        """Cancel what runs and wait a little for it (API shutdown)."""
        with self._lock:
            jobs = list(self._jobs.values())
            thread = self._thread
        for job in jobs:
            job.cancel.set()
        if thread is not None:
            thread.join(timeout_s)

    # -- worker thread ---------------------------------------------------------
    def _run(self, job: ReplayJob, runner: ReplayRunner) -> None:
        _lower_priority()
        deadline = time.monotonic() + self._max_runtime_s
        job.started_ts = time.time()
        job.status = JobStatus.RUNNING

        def progress(fraction: float) -> None:
            if job.cancel.is_set():
                raise _CancelledError("cancelled by an admin")
            if time.monotonic() > deadline:
                raise _CancelledError(
                    f"stopped after {self._max_runtime_s:.0f} s: replay a shorter window"
                )
            job.progress = round(max(job.progress, min(1.0, fraction)), 4)

        status, error, result = JobStatus.DONE, None, None
        try:
            if job.cancel.is_set():
                raise _CancelledError("cancelled by an admin")
            result = runner(job.candidate, job.current, job.since_ts, job.until_ts, progress)
        except _CancelledError as exc:
            status, error = JobStatus.CANCELLED, str(exc)
        except Exception as exc:  # any failure is the job's, never the API's
            unexpected = not isinstance(exc, ValueError)  # ValueError: a message for the admin
            log.warning("replay %s failed: %s", job.id, exc, exc_info=unexpected)
            status, error = JobStatus.FAILED, str(exc) or type(exc).__name__
        # The status goes last: a reader that sees "done" finds the result with it.
        job.result, job.error, job.finished_ts = result, error, time.time()
        if status is JobStatus.DONE:
            job.progress = 1.0
        job.status = status


def _lower_priority() -> None:
    """Nice this thread only (Linux: the nice value is per thread), so the live
    pipeline's processes get the cores first; threads it starts (the detector's)
    inherit it."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOW_PRIORITY_NICE)
    except (AttributeError, OSError) as exc:
        log.info("replay runs at normal priority: %s", exc)
