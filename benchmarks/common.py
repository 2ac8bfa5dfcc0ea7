"""What every benchmark shares: machine facts, result files, the ledger."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LEDGER = ROOT / "docs" / "performance.md"
RESULTS = ROOT / "benchmarks" / "results"


def assets_dir() -> Path:
    path = Path(os.environ.get("COMMUNE_VISION_ASSETS", ROOT.parent / "shared" / "assets"))
    if not (path / "videos").is_dir():
        raise SystemExit(f"test assets not found at {path}; set COMMUNE_VISION_ASSETS")
    os.environ["COMMUNE_VISION_ASSETS"] = str(path.resolve())
    return path.resolve()


def commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    return {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "commit": commit(),
        "machine": {"cores": os.cpu_count(), "cpu": cpu_model()},
    }


def write_result(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2))
    return out


def append_ledger_row(benchmark: str, load: str, cpu: str, reference: str) -> None:
    row = (
        f"| {time.strftime('%Y-%m-%d %H:%M')} | {commit()} | {os.cpu_count()}× {cpu_model()} | "
        f"{benchmark} | {load} | {cpu} | {reference} |\n"
    )
    with LEDGER.open("a", encoding="utf-8") as fh:
        fh.write(row)


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0–100, linear interpolation); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def tree_processes(root_pid: int) -> list[Any]:
    """A process and all its descendants (``psutil.Process``); empty once it is gone."""
    import psutil

    try:
        root = psutil.Process(root_pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def process_tree(root_pid: int) -> dict[int, tuple[str, float, int]]:
    """CPU seconds (user + system) and RSS bytes of a process and all its descendants,
    by pid, with each one's OS name (the service's stages name themselves cv-*)."""
    import psutil

    out: dict[int, tuple[str, float, int]] = {}
    for proc in tree_processes(root_pid):
        try:
            with proc.oneshot():
                times = proc.cpu_times()
                out[proc.pid] = (proc.name(), times.user + times.system, proc.memory_info().rss)
        except psutil.NoSuchProcess:
            continue
    return out


def tree_cores(
    before: dict[int, tuple[str, float, int]],
    after: dict[int, tuple[str, float, int]],
    wall_s: float,
) -> dict[str, float]:
    """Cores used per process name between two ``process_tree`` samples (processes of
    the same name are summed; one that started in between counts from zero)."""
    cores: dict[str, float] = {}
    for pid, (name, cpu_s, _rss) in after.items():
        used = cpu_s - before.get(pid, (name, 0.0, 0))[1]
        cores[name] = cores.get(name, 0.0) + used / wall_s
    return {name: round(value, 3) for name, value in sorted(cores.items())}
