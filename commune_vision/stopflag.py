"""A stop flag shared by the supervisor and its children, safe against killed processes.

``multiprocessing.Event`` is a condition variable: ``set()`` waits for every
sleeper to wake, so a child killed inside ``wait()`` hangs the supervisor on
shutdown (seen here).  A lock-free shared byte, polled, cannot deadlock.
"""

from __future__ import annotations

import signal
import time
from multiprocessing.context import SpawnContext
from types import FrameType
from typing import Any

POLL_S = 0.1


class StopFlag:
    def __init__(self, ctx: SpawnContext) -> None:
        self._shared: Any = ctx.RawValue("b", 0)
        self._local = False

    def set(self) -> None:
        self._shared.value = 1
        self._local = True

    def is_set(self) -> bool:
        return self._local or bool(self._shared.value)

    def wait(self, timeout_s: float | None = None) -> bool:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(
                POLL_S if deadline is None else min(POLL_S, max(0.0, deadline - time.monotonic()))
            )
        return True

    def stop_on_sigterm(self) -> None:
        """In a child: SIGTERM stops this process gracefully, not the others."""

        def handler(_signum: int, _frame: FrameType | None) -> None:
            self._local = True

        signal.signal(signal.SIGTERM, handler)
