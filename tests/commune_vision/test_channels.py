"""The stage queues survive an end killed with SIGKILL, where ``multiprocessing.Queue``
wedges: real spawned processes, really killed."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import signal
import time
from typing import Any

import pytest

from commune_vision.channels import FanIn, StageQueue

CTX = mp.get_context("spawn")


def _consume_forever(q: Any) -> None:
    while True:  # a consumer that polls, as the detector and analytics do
        with contextlib.suppress(queue.Empty):
            q.get(timeout=0.2)


def _produce(q: Any, first: int, n: int) -> None:
    for i in range(first, first + n):
        q.put(i)
    time.sleep(0.5)  # let the feeder thread write them


def _flood(q: Any) -> None:
    for i in range(5000):  # more than the pipe holds: the feeder blocks mid-stream
        q.put(i)
    time.sleep(60)


def _kill(proc: Any) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()


def _read(q: Any, n: int, timeout_s: float = 5.0) -> list[int]:
    got: list[int] = []
    try:
        while len(got) < n:
            got.append(q.get(timeout=timeout_s))
    except queue.Empty:
        pass
    return got


@pytest.mark.parametrize("make", ["mp.Queue", "StageQueue"])
def test_killed_consumer(make: str) -> None:
    q: Any = CTX.Queue(100) if make == "mp.Queue" else StageQueue(100, ctx=CTX)
    consumer = CTX.Process(target=_consume_forever, args=(q,))
    consumer.start()
    time.sleep(2.0)  # it sits in get(timeout=0.2), holding the read lock if there is one
    _kill(consumer)
    producer = CTX.Process(target=_produce, args=(q, 0, 5))
    producer.start()
    producer.join()
    got = _read(q, 5, timeout_s=2.0)
    if make == "mp.Queue":
        assert got == []  # the hazard: the dead consumer's lock is never released
    else:
        assert got == [0, 1, 2, 3, 4]


def test_killed_producer_blocked_while_writing_does_not_wedge_its_successor() -> None:
    q = StageQueue(10_000, ctx=CTX)
    flood = CTX.Process(target=_flood, args=(q,))
    flood.start()
    time.sleep(2.0)  # pipe full, feeder blocked inside a write
    _kill(flood)
    successor = CTX.Process(target=_produce, args=(q, 100_000, 3))
    successor.start()
    got = _read(q, 10_000, timeout_s=3.0)
    successor.join()
    assert got[-3:] == [100_000, 100_001, 100_002]
    assert got[:-3] == list(range(len(got) - 3))  # what was written arrives whole, in order


def test_fan_in_reads_every_producer_fairly() -> None:
    a, b = StageQueue(10, ctx=CTX), StageQueue(10, ctx=CTX)
    producers = [
        CTX.Process(target=_produce, args=(a, 0, 3)),
        CTX.Process(target=_produce, args=(b, 10, 3)),
    ]
    for p in producers:
        p.start()
    for p in producers:
        p.join()
    fan_in = FanIn(a, b)
    assert fan_in.qsize() == 6
    assert [fan_in.get(timeout=1) for _ in range(6)] == [0, 10, 1, 11, 2, 12]
    assert fan_in.empty()
    started = time.monotonic()
    with pytest.raises(queue.Empty):
        fan_in.get(timeout=0.3)
    assert time.monotonic() - started >= 0.25
