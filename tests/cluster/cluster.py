"""The service scaled out: ``commune-vision api`` and several ``commune-vision worker``
processes on one config file, one PostgreSQL, one Valkey and one data folder.

Each process runs in a session of its own (``start_new_session``), so its process
group is the whole of it (supervisor and stage children) and ``kill()`` is a node
losing power: ``os.killpg(pgid, SIGKILL)``. Logs go to files under the test's
``tmp_path``; every failure raised through :class:`Cluster` carries their tails.

    cluster = Cluster(tmp_path, config, env)
    cluster.start_api()                          # returns once signed in as the admin
    worker_a = cluster.start_worker("A")
    cluster.wait(lambda: ..., 30, "what we wait for")   # seconds it took
    cluster.workers()                            # GET /api/workers, parsed
    cluster.stop_all()                           # in a fixture's teardown
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, cast

import httpx
import psutil
import pytest
import redis

from core.bus import EVENT_STREAM, INCIDENT_STREAM
from tests.auth_helpers import auth_headers

# The console script, as the Docker images run it (not ``python -m``).
CLI = Path(sys.executable).with_name("commune-vision")
ADMIN_PASSWORD = "cluster admin password"
STARTUP_TIMEOUT_S = 120.0  # a contended 2-core box loads the model slowly
POLL_S = 0.25
STOP_TIMEOUT_S = 20.0
LOG_TAIL_CHARS = 4000


@dataclass
class Proc:
    """One process group of the cluster: the API or a worker."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    # Every process seen under it, so a child that left the group still gets killed.
    seen: dict[int, psutil.Process] = field(default_factory=dict)

    @property
    def pgid(self) -> int:
        return self.popen.pid  # a new session's leader: its pid is the group id

    def alive(self) -> bool:
        return self.popen.poll() is None

    def note_descendants(self) -> list[psutil.Process]:
        """The supervisor and its descendants now, remembered for the teardown."""
        procs: list[psutil.Process] = []
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(self.popen.pid)
            procs = [root, *root.children(recursive=True)]
        for p in procs:
            self.seen[p.pid] = p
        return procs

    def kill(self) -> None:
        """SIGKILL the whole process group at once: a node dying."""
        self.note_descendants()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM the group, SIGKILL what is left after ``STOP_TIMEOUT_S``."""
        self.note_descendants()
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pgid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=STOP_TIMEOUT_S)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGKILL)
        for p in self.seen.values():
            with contextlib.suppress(psutil.Error):
                p.kill()  # psutil checks the pid was not reused since we saw it
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)

    def survivors(self) -> list[str]:
        """Processes seen under it that still run (zombies count as dead)."""
        left = []
        for p in self.seen.values():
            with contextlib.suppress(psutil.Error):
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    left.append(f"{p.pid} {p.name()}")
        return left

    def tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return self.log_path.read_text(errors="replace")[-chars:]


@dataclass(frozen=True)
class Workers:
    """``GET /api/workers``: who holds which camera."""

    alive: dict[str, list[str]]  # live worker id -> its cameras
    dead: dict[str, list[str]]  # workers listed as not alive -> cameras still shown
    unassigned: list[str]

    @classmethod
    def parse(cls, body: dict[str, Any]) -> Workers:
        alive: dict[str, list[str]] = {}
        dead: dict[str, list[str]] = {}
        for w in body["workers"]:
            (alive if w["alive"] else dead)[str(w["id"])] = sorted(map(str, w["cameras"]))
        return cls(alive, dead, sorted(map(str, body["unassigned"])))

    def owners(self) -> dict[str, str]:
        """camera -> the live worker holding it."""
        return {cam: wid for wid, cams in self.alive.items() for cam in cams}


class Cluster:
    def __init__(self, tmp_path: Path, config: Path, port: int, env: dict[str, str]) -> None:
        if not CLI.is_file():
            pytest.fail(
                f"{CLI} is missing: install the project into this venv (pip install -e '.[dev]')",
                pytrace=False,
            )
        self.tmp_path = tmp_path
        self.config = config
        self.base = f"http://127.0.0.1:{port}"
        self.env = {**os.environ, "COMMUNE_VISION_ADMIN_PASSWORD": ADMIN_PASSWORD, **env}
        self.procs: dict[str, Proc] = {}
        self._killed: set[str] = set()  # killed on purpose: their exit is no failure
        self.headers: dict[str, str] = {}
        # More logs to show on failure (e.g. the RTSP server's): name -> reader.
        self.extra_logs: dict[str, Callable[[], str]] = {}

    # -- processes -----------------------------------------------------------
    def _launch(self, name: str, *args: str) -> Proc:
        log_path = self.tmp_path / f"{name}.log"
        with open(log_path, "wb") as log:  # the child keeps its own descriptor
            popen = subprocess.Popen(
                [str(CLI), *args, "--config", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,  # its own process group: killpg takes it all
            )
        proc = Proc(name, popen, log_path)
        self.procs[name] = proc
        return proc

    def start_api(self) -> Proc:
        """``commune-vision api``; returns once ``/healthz`` answers and we are signed in."""
        proc = self._launch("api", "api")
        self.wait(
            lambda: httpx.get(f"{self.base}/healthz", timeout=5).status_code == 200,
            STARTUP_TIMEOUT_S,
            "the API's /healthz to answer 200",
        )
        self.headers = auth_headers(self.base, "admin", ADMIN_PASSWORD)
        return proc

    def start_worker(self, worker_id: str) -> Proc:
        return self._launch(f"worker-{worker_id}", "worker", "--worker-id", worker_id)

    def stop_all(self) -> None:
        # Workers first: the API outliving them keeps nothing waiting on it.
        for proc in sorted(self.procs.values(), key=lambda p: p.name == "api"):
            proc.stop()

    def kill(self, name: str) -> None:
        """SIGKILL one process group (a node dying); waits see that as intended."""
        self._killed.add(name)
        self.procs[name].kill()

    def assert_running(self) -> None:
        """Fail at once, with the logs, when a process died that nobody killed."""
        for name, proc in self.procs.items():
            if name not in self._killed and not proc.alive():
                self.fail(f"{name} exited with {proc.popen.returncode}")

    # -- failures with the logs -----------------------------------------------
    def logs(self) -> str:
        parts = [f"----- {p.name} ({p.log_path}) -----\n{p.tail()}" for p in self.procs.values()]
        for name, read in self.extra_logs.items():
            parts.append(f"----- {name} -----\n{read()[-LOG_TAIL_CHARS:]}")
        return "\n".join(parts)

    def fail(self, message: str) -> NoReturn:
        pytest.fail(f"{message}\n\n{self.logs()}")

    def check(self, condition: object, message: str) -> None:
        if not condition:
            self.fail(message)

    def wait(self, predicate: Callable[[], object], timeout_s: float, what: str) -> float:
        """Poll every ``POLL_S``; seconds until ``predicate`` held, or fail with the logs.

        An HTTP error counts as "not yet": the API may be busy on a loaded box. A
        process that crashed meanwhile fails the wait at once."""
        start = time.monotonic()
        while time.monotonic() - start < timeout_s:
            self.assert_running()
            try:
                if predicate():
                    return time.monotonic() - start
            except httpx.HTTPError:
                pass
            time.sleep(POLL_S)
        self.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")

    # -- API -------------------------------------------------------------------
    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(f"{self.base}{path}", params=params, headers=self.headers, timeout=30)

    def workers(self) -> Workers:
        r = self.get("/api/workers")
        self.check(r.status_code == 200, f"GET /api/workers: {r.status_code} {r.text}")
        return Workers.parse(r.json())

    def health(self, camera_id: str) -> dict[str, Any] | None:
        r = self.get(f"/api/cameras/{camera_id}/health")
        return cast(dict[str, Any], r.json()) if r.status_code == 200 else None

    def online_since(self, camera_id: str, since_ts: float) -> bool:
        """Online, with a frame captured after ``since_ts``: an entry a dead or former
        holder left behind is older and does not count."""
        h = self.health(camera_id)
        return (
            h is not None
            and h["state"] == "online"
            and h["last_frame_ts"] is not None
            and h["last_frame_ts"] > since_ts
        )

    def incidents(self, **params: Any) -> list[dict[str, Any]]:
        """Every incident matching ``params``: all pages of ``GET /api/incidents``."""
        items: list[dict[str, Any]] = []
        query: dict[str, Any] = {"limit": 500, **params}
        while True:
            r = self.get("/api/incidents", **query)
            self.check(r.status_code == 200, f"GET /api/incidents: {r.status_code} {r.text}")
            page = r.json()
            items += page["items"]
            if not page["next_cursor"]:
                return items
            query["cursor"] = page["next_cursor"]


def announced_incidents(client: redis.Redis, until_ms: int | None = None) -> dict[str, str]:
    """incident id -> camera of every alert on the incident stream (up to ``until_ms``,
    the stream's own clock: entry ids start with the server's milliseconds)."""
    end = "+" if until_ms is None else str(until_ms)
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(INCIDENT_STREAM, "-", end))
    out: dict[str, str] = {}
    for _entry_id, fields in entries:
        incident = json.loads(fields[b"data"])
        out[str(incident["id"])] = str(incident["camera_id"])
    return out


def duplicate_alerts(client: redis.Redis) -> dict[str, int]:
    """incident id -> times it was announced ``opened``, where more than once."""
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(INCIDENT_STREAM))
    opened = Counter(
        str(json.loads(f[b"data"])["id"]) for _, f in entries if f[b"kind"] == b"opened"
    )
    return {i: n for i, n in opened.items() if n > 1}


def system_events(client: redis.Redis, kind: str) -> list[dict[str, Any]]:
    """The payloads of every ``kind`` event on the system event stream."""
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(EVENT_STREAM))
    return [json.loads(f[b"data"]) for _, f in entries if f[b"kind"] == kind.encode()]


def write_config(
    path: Path,
    *,
    cameras_yaml: str,
    port: int,
    redis_url: str,
    database_url: str,
    data_dir: Path,
    lease_ttl_s: float = 8.0,
    heartbeat_s: float = 1.0,
) -> Path:
    """The one config file every process reads (as one ConfigMap in a deployment)."""
    path.write_text(
        f"""
cameras:
{cameras_yaml}
detector: {{max_batch: 4}}
storage: {{data_dir: {data_dir}, database_url: "{database_url}"}}
server: {{port: {port}}}
redis_url: "{redis_url}"
cluster: {{lease_ttl_s: {lease_ttl_s}, heartbeat_s: {heartbeat_s}}}
"""
    )
    return path
