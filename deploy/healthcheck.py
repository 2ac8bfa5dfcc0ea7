"""Container healthcheck for every role of the commune-vision image.

``healthcheck.py`` (api, run): ``GET /healthz`` must answer 200. It answers 503 while
Redis/Valkey is down, so the container shows unhealthy exactly when alerts stop flowing.
``COMMUNE_VISION_HEALTHCHECK_URL`` overrides the URL (another ``server.port``).

``healthcheck.py worker``: a worker serves no HTTP, so the check is that a live (not
zombie) ``commune-vision worker`` process is there. Under ``init: true`` (tini as PID
1) the worker can die without the container stopping; this catches that.

Standard library only: it runs once every interval in every container, so it must
start fast and import nothing of the service.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8000/healthz"


def http_ok(url: str, timeout_s: float = 4.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _is_worker(cmdline: bytes) -> bool:
    args = cmdline.split(b"\0")
    # The console script runs as `python /opt/venv/bin/commune-vision worker ...`. The
    # script must be the program itself, not an argument: tini's own command line
    # (`docker-init -- commune-vision worker ...`) outlives a dead worker.
    start = 1 if Path(args[0].decode(errors="replace")).name.startswith("python") else 0
    return (
        len(args) > start + 1
        and args[start].endswith(b"commune-vision")
        and args[start + 1] == b"worker"
    )


def worker_alive(proc: Path = Path("/proc")) -> bool:
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            # The state follows the last ')': the command name itself may hold one.
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # it exited while we looked
        if state != "Z" and _is_worker(cmdline):
            return True
    return False


def main(argv: list[str]) -> int:
    if argv[1:] == ["worker"]:
        return 0 if worker_alive() else 1
    if argv[1:]:
        print(f"usage: {argv[0]} [worker]", file=sys.stderr)
        return 2
    return 0 if http_ok(os.environ.get("COMMUNE_VISION_HEALTHCHECK_URL", DEFAULT_URL)) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
