"""Which cameras a worker's ingest runs (commune_vision/ownership.py), on a real Valkey."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from commune_vision.ownership import LeasedCameras
from core.config import CameraConfig, ClusterConfig
from core.leases import LEASE_PREFIX, WORKERS_KEY

CAMERAS = [CameraConfig(id=f"cam{i}", url=f"rtsp://127.0.0.1:1/cam{i}") for i in range(6)]
# Below the config's minimums, to keep the test short (validation is tested elsewhere).
FAST = ClusterConfig.model_construct(heartbeat_s=0.2, lease_ttl_s=1.0)


@pytest.fixture
def clean(valkey_url: str) -> Iterator[None]:
    client = redis.Redis.from_url(valkey_url)
    keys = [WORKERS_KEY, *(f"{LEASE_PREFIX}{c.id}" for c in CAMERAS)]
    client.delete(*keys)
    yield
    client.delete(*keys)
    client.close()


def _ids(cameras: list[CameraConfig]) -> set[str]:
    return {c.id for c in cameras}


def _until(step: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not step():
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.05)


def test_a_joining_worker_gets_half_and_a_leaving_one_hands_over(
    valkey_url: str, clean: None
) -> None:
    a = LeasedCameras(valkey_url, "a", FAST)
    b = LeasedCameras(valkey_url, "b", FAST)
    try:
        assert _ids(a.select(CAMERAS)) == _ids(CAMERAS)  # at once, on the first call
        a.handed_over()

        def split() -> bool:
            # Each loop turn as ingest does it: select, stop the rest, hand them over.
            got_a, got_b = _ids(a.select(CAMERAS)), _ids(b.select(CAMERAS))
            a.handed_over()
            b.handed_over()
            return len(got_a) == len(got_b) == 3 and not got_a & got_b

        _until(split, "3 + 3")
        a.leave()
        _until(lambda: _ids(b.select(CAMERAS)) == _ids(CAMERAS), "b takes all after a leaves")
    finally:
        a.leave()
        b.leave()


def test_a_wedged_ingest_loop_lets_its_cameras_go(
    valkey_url: str, clean: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The renewal thread outlives a slow loop, not a dead one."""
    monkeypatch.setattr(LeasedCameras, "LOOP_STALL_S", 1.5)
    a = LeasedCameras(valkey_url, "a", FAST)
    b = LeasedCameras(valkey_url, "b", FAST)
    try:
        assert _ids(a.select(CAMERAS)) == _ids(CAMERAS)
        time.sleep(1.2)  # longer than the lease TTL: the thread kept renewing
        assert _ids(b.select(CAMERAS)) == set()
        # a's loop stops coming by: past LOOP_STALL_S + TTL, b takes everything.
        _until(lambda: _ids(b.select(CAMERAS)) == _ids(CAMERAS), "b takes a's cameras")
    finally:
        a.leave()
        b.leave()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "redis_url: the nodes of a cluster share one Redis/Valkey"),
        ({"REDIS_URL": "redis://127.0.0.1:1/0"}, "storage.database_url: the nodes of a cluster"),
    ],
)
@pytest.mark.parametrize("role", ["worker", "api"])
def test_cluster_roles_refuse_what_other_nodes_cannot_share(
    role: str, env: dict[str, str], expected: str
) -> None:
    """An embedded Valkey or a SQLite file would silently split the cluster in two."""
    clean_env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    got = subprocess.run(
        [str(Path(sys.executable).with_name("commune-vision")), role],
        env={**clean_env, **env},
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert got.returncode == 2, got.stderr
    assert expected in got.stderr and "docs/deployment.md" in got.stderr
