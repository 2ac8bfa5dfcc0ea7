"""Camera leases between workers (core/leases.py) on a real Valkey."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest
import redis

from core.leases import LEASE_PREFIX, WORKERS_KEY, CameraLeases, SingletonLease, plan

CAMERAS = [f"cam{i}" for i in range(8)]


@pytest.fixture
def client(valkey_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(valkey_url)
    # The session's Valkey is shared: start from no workers and no leases.
    c.delete(WORKERS_KEY, *[f"{LEASE_PREFIX}{cam}" for cam in CAMERAS], "cv:leader:retention")
    yield c
    c.delete(WORKERS_KEY, *[f"{LEASE_PREFIX}{cam}" for cam in CAMERAS], "cv:leader:retention")
    c.close()


def test_plan_is_balanced_whatever_the_holders() -> None:
    for n_workers, n_cameras in itertools.product(range(1, 5), range(0, 12)):
        workers = [f"w{i}" for i in range(n_workers)]
        cameras = [f"c{i}" for i in range(n_cameras)]
        assignment = plan(cameras, workers, {c: "w0" for c in cameras})
        loads = [list(assignment.values()).count(w) for w in workers]
        assert sorted(assignment) == sorted(cameras)
        assert max(loads) - min(loads) <= 1, (n_workers, n_cameras, loads)


def test_plan_moves_only_what_balance_needs() -> None:
    before = plan(CAMERAS, ["a"], {})
    assert set(before.values()) == {"a"}
    after = plan(CAMERAS, ["a", "b"], before)  # b joins
    moved = [c for c in CAMERAS if after[c] != before[c]]
    assert len(moved) == 4 and all(after[c] == "b" for c in moved)
    # b dies: its cameras go back to a; a keeps the ones it had.
    again = plan(CAMERAS, ["a"], {c: w for c, w in after.items() if w == "a"})
    assert set(again.values()) == {"a"}
    # A holder that is not live counts as nobody.
    assert set(plan(CAMERAS, ["b"], before).values()) == {"b"}
    assert plan(CAMERAS, [], before) == {}


def _serve(worker: CameraLeases) -> set[str]:
    """One heartbeat as the ingest loop does it: hand over, then report what runs."""
    tick = worker.tick(CAMERAS)
    worker.release(tick.give_away)
    return tick.serve


def test_join_rebalance_then_death_moves_cameras(client: redis.Redis) -> None:
    a = CameraLeases(client, "a", ttl_s=1.0)
    b = CameraLeases(client, "b", ttl_s=1.0)
    assert _serve(a) == set(CAMERAS)
    # b joins: it waits while a holds them; a hands over half; b claims them.
    assert _serve(b) == set()
    served_a = _serve(a)
    assert len(served_a) == 4
    served_b = _serve(b)
    assert served_b == set(CAMERAS) - served_a
    assert {client.get(f"{LEASE_PREFIX}{c}") for c in served_b} == {b"b"}
    # a dies (stops renewing): once its heartbeat and leases expire, b takes all.
    deadline = time.monotonic() + 5
    while _serve(b) != set(CAMERAS):
        assert time.monotonic() < deadline, "b never took over a's cameras"
        time.sleep(0.1)
    # a comes back late: its renewal must not take back what b now holds.
    tick = a.tick(CAMERAS)
    assert tick.serve == set()
    assert a.held == set()


def test_leave_hands_over_at_once(client: redis.Redis) -> None:
    a = CameraLeases(client, "a", ttl_s=30.0)
    b = CameraLeases(client, "b", ttl_s=30.0)
    _serve(a)
    _serve(b)
    _serve(a)
    _serve(b)
    a.leave()
    assert _serve(b) == set(CAMERAS)  # no wait for a 30 s TTL
    assert client.zscore(WORKERS_KEY, "a") is None


def test_removed_cameras_are_given_away(client: redis.Redis) -> None:
    a = CameraLeases(client, "a", ttl_s=30.0)
    _serve(a)
    tick = a.tick(CAMERAS[:3])
    assert tick.give_away == set(CAMERAS[3:])
    a.release(tick.give_away)
    assert client.get(f"{LEASE_PREFIX}{CAMERAS[5]}") is None


def test_singleton_lease_has_one_holder(valkey_url: str, client: redis.Redis) -> None:
    first = SingletonLease(valkey_url, "retention", "a", ttl_s=0.5)
    second = SingletonLease(valkey_url, "retention", "b", ttl_s=0.5)
    assert first.hold()
    assert not second.hold()
    assert first.hold()  # renewed
    time.sleep(0.7)  # a stopped renewing
    assert second.hold()
    assert not first.hold()
