"""Which pipeline worker serves which camera: leases in Redis, renewed by heartbeats.

A district runs one API and several ``commune-vision worker`` nodes against one Redis
and one PostgreSQL. Each worker, once a second:

1. heartbeats into ``cv:workers`` (a sorted set: worker id → expiry in ms), which
   also drops workers whose heartbeat ran out;
2. renews its camera leases (``cv:lease:<camera>`` → worker id, with a TTL);
3. computes the same balanced plan every worker computes from the same snapshot
   (``plan``): live holders keep their cameras up to their quota, the rest go where
   there is room;
4. gives away what the plan moves elsewhere (after its reader has stopped, so two
   workers never record one camera at once) and claims, with SET NX, what the plan
   gives it and nobody holds.

A worker that dies stops renewing: its heartbeat and leases expire after ``ttl_s``
and the survivors claim its cameras on their next tick. Leases are the only shared
state; queues, the outbox and the frame rings stay inside each node.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import redis

WORKERS_KEY = "cv:workers"
LEASE_PREFIX = "cv:lease:"

# Renew only a lease we still hold: one that expired and was claimed by another
# worker must not be taken back by a late renewal.
_RENEW = """
local lost = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
  else
    table.insert(lost, key)
  end
end
return lost
"""
_RELEASE = """
local n = 0
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    n = n + redis.call('DEL', key)
  end
end
return n
"""


def lease_key(camera_id: str) -> str:
    return f"{LEASE_PREFIX}{camera_id}"


def plan(
    camera_ids: Iterable[str], workers: Iterable[str], holders: Mapping[str, str | None]
) -> dict[str, str]:
    """camera id → worker: balanced (floor or ceil of cameras/workers each) and moving
    as few cameras as it can. Deterministic, so every worker computes the same plan."""
    live = sorted(set(workers))
    cameras = sorted(set(camera_ids))
    if not live:
        return {}
    base, extra = divmod(len(cameras), len(live))
    held = {w: sum(1 for c in cameras if holders.get(c) == w) for w in live}
    # The larger quotas go to the workers holding most already: fewer moves.
    by_holding = sorted(live, key=lambda w: (-held[w], w))
    quota = {w: base + (1 if i < extra else 0) for i, w in enumerate(by_holding)}
    load = dict.fromkeys(live, 0)
    out: dict[str, str] = {}
    for camera in cameras:
        holder = holders.get(camera)
        if holder in quota and load[holder] < quota[holder]:
            out[camera] = holder
            load[holder] += 1
    for camera in cameras:
        if camera not in out:
            target = min(live, key=lambda w: (load[w] - quota[w], w))
            out[camera] = target
            load[target] += 1
    return out


@dataclass
class WorkerView:
    """A worker as the API shows it."""

    id: str
    alive: bool
    expires_ts: float
    cameras: list[str] = field(default_factory=list)


def summarize_workers(
    heartbeats: Iterable[tuple[object, float]], holders: dict[str, str], now_ts: float
) -> list[WorkerView]:
    """Workers (``cv:workers`` members with their expiry in ms) and the cameras each
    holds (camera → worker, from the leases), sorted by id: what the API shows."""
    views = {
        as_text(member): WorkerView(as_text(member), score / 1000 > now_ts, score / 1000)
        for member, score in heartbeats
    }
    for camera, holder in sorted(holders.items()):
        # A lease outliving its holder's heartbeat (it just died) still shows who had it.
        views.setdefault(holder, WorkerView(holder, False, 0.0)).cameras.append(camera)
    return sorted(views.values(), key=lambda v: v.id)


def as_text(value: object) -> str:
    """A Redis reply (bytes unless decoded) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class Tick:
    """What one heartbeat decided: serve ``serve``; stop, then ``release``, ``give_away``."""

    serve: set[str]
    give_away: set[str]
    workers: list[str]


class CameraLeases:
    """This worker's side of the protocol (see the module docstring)."""

    def __init__(
        self,
        client: redis.Redis,
        worker_id: str,
        ttl_s: float = 8.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self.worker_id = worker_id
        self._ttl_ms = int(ttl_s * 1000)
        self._clock = clock
        self.held: set[str] = set()
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def heartbeat(self) -> list[str]:
        """Announce this worker alive; returns every live worker (this one included)."""
        now_ms = int(self._clock() * 1000)
        pipe = self._client.pipeline()
        pipe.zadd(WORKERS_KEY, {self.worker_id: now_ms + self._ttl_ms})
        pipe.zremrangebyscore(WORKERS_KEY, "-inf", now_ms)
        pipe.zrange(WORKERS_KEY, 0, -1)
        members = pipe.execute()[-1]
        return sorted(as_text(m) for m in members)

    def tick(self, camera_ids: Iterable[str]) -> Tick:
        """Heartbeat, renew, plan and claim; the caller stops ``give_away`` then
        calls ``release`` with it."""
        wanted = sorted(set(camera_ids))
        workers = self.heartbeat()
        if self.held:
            lost = self._renew(
                keys=[lease_key(c) for c in sorted(self.held)],
                args=[self.worker_id, self._ttl_ms],
            )
            for key in lost:
                self.held.discard(as_text(key).removeprefix(LEASE_PREFIX))
        holders_raw = self._client.mget([lease_key(c) for c in wanted]) if wanted else []
        holders = {
            c: (as_text(h) if h is not None else None)
            for c, h in zip(wanted, holders_raw, strict=True)
        }
        mine = {c for c, w in plan(wanted, workers, holders).items() if w == self.worker_id}
        for camera in sorted(mine - self.held):
            # Held by a live worker: wait until it gives it away (next ticks).
            if holders.get(camera) is None and self._client.set(
                lease_key(camera), self.worker_id, nx=True, px=self._ttl_ms
            ):
                self.held.add(camera)
        # Cameras removed from the config are given away too: nobody serves them.
        give_away = self.held - mine
        return Tick(serve=self.held & mine, give_away=give_away, workers=workers)

    def release(self, camera_ids: Iterable[str]) -> None:
        ids = sorted(set(camera_ids) & self.held)
        if ids:
            self._release(keys=[lease_key(c) for c in ids], args=[self.worker_id])
        self.held.difference_update(ids)

    def leave(self) -> None:
        """A clean stop: hand every camera over now instead of after the TTL."""
        self.release(list(self.held))
        self._client.zrem(WORKERS_KEY, self.worker_id)


class SingletonLease:
    """A job only one worker may run at a time (retention over the shared folder).

    ``hold()`` takes the lease if free, renews it if ours; the holder calls it at
    least once per ``ttl_s / 3`` so a live holder keeps it and a dead one's expires.
    """

    def __init__(self, redis_url: str, job: str, worker_id: str, ttl_s: float) -> None:
        self._client = redis.Redis.from_url(
            redis_url, socket_timeout=2.0, socket_connect_timeout=2.0
        )
        self._key = f"cv:leader:{job}"
        self._worker_id = worker_id
        self._ttl_ms = int(ttl_s * 1000)
        self._renew = self._client.register_script(_RENEW)

    def hold(self) -> bool:
        if self._client.set(self._key, self._worker_id, nx=True, px=self._ttl_ms):
            return True
        return not self._renew(keys=[self._key], args=[self._worker_id, self._ttl_ms])
