"""The real service (``commune-vision run``) as a subprocess, for fault tests.

Small on purpose; other reliability modules import it, so keep these names stable:

    svc = start_service(tmp_path, cameras_yaml, env={"REDIS_URL": url})
    svc.health("gate")                  # GET /api/cameras/gate/health (None if unknown)
    svc.incidents(camera_id="gate")     # every page of GET /api/incidents
    svc.metric("cv_camera_reconnects_total", camera="gate")
    svc.stage_pids()["cv-detector"]     # pids of the named child processes
    wait_for(lambda: ..., 30, "what we wait for")   # seconds it took, or pytest.fail
    svc.kill()                          # in a fixture's teardown

The service creates an admin on its first start (``COMMUNE_VISION_ADMIN_PASSWORD``,
as a Docker user would) and ``headers`` is that admin, logged in through the API.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.auth_helpers import auth_headers

STARTUP_TIMEOUT_S = 120  # a contended 2-core box loads the model slowly
ADMIN_PASSWORD = "reliability admin password"
STAGES = ("cv-store", "cv-api", "cv-webhooks", "cv-analytics", "cv-detector", "cv-ingest")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], object], timeout_s: float, what: str) -> float:
    """Poll ``predicate`` every 0.25 s; seconds until it was true, or fail naming ``what``.

    An HTTP error counts as "not yet": the API may itself be restarting.
    """
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        try:
            if predicate():
                return time.monotonic() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")


@dataclass
class Service:
    proc: subprocess.Popen[bytes]
    base: str
    port: int
    log_path: Path
    data_dir: Path
    headers: dict[str, str] = field(default_factory=dict)

    # -- API ----------------------------------------------------------------
    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(f"{self.base}{path}", params=params, headers=self.headers, timeout=30)

    def health(self, camera_id: str) -> dict[str, Any] | None:
        """The camera's health as the API serves it; None if it has none."""
        r = self.get(f"/api/cameras/{camera_id}/health")
        if r.status_code != 200:
            return None
        body: dict[str, Any] = r.json()
        return body

    def state(self, camera_id: str) -> str | None:
        health = self.health(camera_id)
        return None if health is None else str(health["state"])

    def incidents(self, **params: Any) -> list[dict[str, Any]]:
        """Every incident matching ``params`` (all pages of ``GET /api/incidents``)."""
        items: list[dict[str, Any]] = []
        query: dict[str, Any] = {"limit": 500, **params}
        while True:
            r = self.get("/api/incidents", **query)
            assert r.status_code == 200, r.text
            page = r.json()
            items += page["items"]
            if not page["next_cursor"]:
                return items
            query["cursor"] = page["next_cursor"]

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """``/metrics`` as {(sample name, sorted labels): value}."""
        r = httpx.get(f"{self.base}/metrics", timeout=30)
        assert r.status_code == 200, r.text
        out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for family in text_string_to_metric_families(r.text):
            for s in family.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out

    def metric(self, name: str, **labels: str) -> float | None:
        """One sample of ``/metrics`` by its full name (``…_total`` for counters)."""
        return self.metrics().get((name, tuple(sorted(labels.items()))))

    # -- processes -----------------------------------------------------------
    def stage_pids(self) -> dict[str, int]:
        """The supervisor's children by stage name (their OS process name)."""
        pids: dict[str, int] = {}
        for child in psutil.Process(self.proc.pid).children(recursive=False):
            try:
                name = child.name()
            except psutil.Error:
                continue
            if name in STAGES and child.status() != psutil.STATUS_ZOMBIE:
                pids[name] = child.pid
        return pids

    def log(self, tail: int = 6000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:]

    def stop(self, sig: signal.Signals = signal.SIGINT, timeout_s: float = 60) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout_s)

    def kill(self) -> None:
        """Teardown: SIGKILL the supervisor and everything under it."""
        if self.proc.poll() is None:
            try:
                children = psutil.Process(self.proc.pid).children(recursive=True)
            except psutil.Error:
                children = []
            for child in children:
                with contextlib.suppress(psutil.Error):
                    child.kill()
            self.proc.kill()
            self.proc.wait(timeout=30)


def start_service(
    tmp_path: Path,
    cameras_yaml: str,
    env: dict[str, str] | None = None,
    extra_yaml: str = "",
    detector_yaml: str = "{max_batch: 2}",
    storage_yaml: str = "",
) -> Service:
    """``commune-vision run`` on a fresh data folder under ``tmp_path``; returns once
    ``/healthz`` answers and the admin is logged in.

    ``cameras_yaml`` is the list under ``cameras:`` (indented two spaces);
    ``extra_yaml`` adds top-level settings (not ``storage``/``server``/``detector``);
    ``storage_yaml`` adds keys inside ``storage`` (e.g. ``retention: {interval_s: 1}``).
    The model is found through ``COMMUNE_VISION_ASSETS`` (the ``assets`` fixture sets it).
    """
    port = free_port()
    data_dir = tmp_path / "data"
    config = tmp_path / "service.yaml"
    config.write_text(
        f"""
cameras:
{cameras_yaml}
detector: {detector_yaml}
storage: {{data_dir: {data_dir}{", " + storage_yaml if storage_yaml else ""}}}
server: {{port: {port}}}
{extra_yaml}
"""
    )
    log_path = tmp_path / "service.log"
    log_file = open(log_path, "wb")  # noqa: SIM115 - the child writes it for its lifetime
    proc = subprocess.Popen(
        [sys.executable, "-m", "commune_vision.cli", "run", "--config", str(config)],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env={**os.environ, "COMMUNE_VISION_ADMIN_PASSWORD": ADMIN_PASSWORD, **(env or {})},
    )
    log_file.close()  # the child holds its own descriptor
    service = Service(proc, f"http://127.0.0.1:{port}", port, log_path, data_dir)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"service exited with {proc.returncode}:\n{service.log()}")
        try:
            if httpx.get(f"{service.base}/healthz", timeout=2).status_code == 200:
                service.headers = auth_headers(service.base, "admin", ADMIN_PASSWORD)
                return service
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    service.kill()
    pytest.fail(f"service not healthy after {STARTUP_TIMEOUT_S} s:\n{service.log()}")


def anyone_camera_yaml(url: str, record_yaml: str) -> str:
    """One camera, ``campus``, where anyone anywhere in the picture is an intrusion:
    the pedestrians of the campus clip open incidents steadily."""
    return f"""
  - id: campus
    url: {url}
    detect: {{fps: 4}}
    record: {record_yaml}
    zones:
      - name: everywhere
        points: [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
    rules:
      - {{type: intrusion, name: anyone, zone: everywhere, classes: [person]}}
"""
