"""Queues between the stages that survive a stage killed with SIGKILL.

``multiprocessing.Queue`` guards its pipe with two locks shared by every process
that uses it: the reader holds ``_rlock`` for the whole of ``get(timeout=…)``
(that is, nearly always, in a consumer that polls), and a producer's feeder thread
holds ``_wlock`` while it writes. A stage killed while holding one never releases
it, and its restarted self (and every other user) then waits forever: after a
``kill -9`` of the detector, the new detector never received another frame and no
incident was raised again (tests/reliability/test_process_faults.py).

Here every queue has exactly one producer process and one consumer process, so
neither lock is needed and none is taken. The store, which has several
producers, reads one queue per producer through ``FanIn``. What a killed
producer had not yet written is lost with it; what is in the pipe is read by the
consumer, or by its restarted self.

What is left: a message is one pipe write, atomic up to 4 KiB (frame references,
detections). A larger one (an incident with its snapshot) could be cut short only
if its producer is killed in the middle of a write blocked on a full pipe, that
is, while the store is also behind.
"""

from __future__ import annotations

import multiprocessing.queues
import queue
import threading
import time
from multiprocessing.connection import wait
from multiprocessing.context import SpawnContext
from typing import Any

# The write lock's place in ``multiprocessing.queues.Queue.__getstate__``'s tuple.
_WLOCK = 5


class StageQueue(multiprocessing.queues.Queue):  # type: ignore[type-arg]
    """A bounded queue for one producer process and one consumer process, lock-free
    across processes: killing either end never wedges the other or its successor.

    The producer may put from several threads (its one feeder thread writes), but
    only one thread of the consumer may ``get``.
    """

    def __init__(self, maxsize: int, *, ctx: SpawnContext) -> None:
        super().__init__(maxsize, ctx=ctx)
        # One producer process, whose feeder thread is the only writer: the write
        # lock it takes is its own, never one shared with another process.
        self._wlock = threading.Lock()

    def __getstate__(self) -> Any:
        base: Any = super().__getstate__()
        state = list(base)
        state[_WLOCK] = None  # each process makes its own
        return tuple(state)

    def __setstate__(self, state: Any) -> None:
        super().__setstate__(state)
        self._wlock = threading.Lock()

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        q: Any = self  # the base class's private attributes are untyped
        if q._closed:
            raise ValueError(f"queue {self!r} is closed")
        if not block:
            timeout = 0.0
        if timeout is not None and not q._poll(max(0.0, timeout)):
            raise queue.Empty
        # No _rlock: this process is the only reader.
        res = q._recv_bytes()
        q._sem.release()
        return multiprocessing.queues._ForkingPickler.loads(res)  # type: ignore[attr-defined]

    def reader_connection(self) -> Any:
        """What ``multiprocessing.connection.wait`` watches for this queue's messages."""
        q: Any = self
        return q._reader


class FanIn:
    """One consumer reading several ``StageQueue``s (one per producer), fairly.

    Offers the consumer side of a queue (``get``, ``get_nowait``, ``qsize``,
    ``empty``), so a stage written against one queue reads several unchanged.
    """

    def __init__(self, *queues: StageQueue) -> None:
        if not queues:
            raise ValueError("FanIn needs at least one queue")
        self._queues = queues
        self._next = 0

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            n = len(self._queues)
            for i in range(n):
                q = self._queues[(self._next + i) % n]
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    continue
                self._next = (self._next + i + 1) % n  # the next read starts after it
                return item
            if not block:
                raise queue.Empty
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise queue.Empty
            wait([q.reader_connection() for q in self._queues], remaining)

    def get_nowait(self) -> Any:
        return self.get(block=False)

    def qsize(self) -> int:
        return sum(q.qsize() for q in self._queues)

    def empty(self) -> bool:
        return all(q.empty() for q in self._queues)
