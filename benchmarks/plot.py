"""Plot a ``benchmarks.streams`` result: fps per stream against camera count, ours
and the naive Ultralytics baseline, with the 10 fps target and the 5 fps floor.

    .venv-bench/bin/python -m benchmarks.plot benchmarks/results/streams-….json OUT.png

Runs in ``.venv-bench`` (matplotlib is installed there, beside Ultralytics, so the
service's venv gains nothing for a picture); it imports nothing of the project.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt


def plot(result: dict[str, Any], out: Path) -> None:
    fps = float(result["config"]["detect_fps"])
    levels = result["levels"]
    base = result["baseline"]
    fig, (ax, lat) = plt.subplots(1, 2, figsize=(12, 4.8))

    n = [lv["cameras"] for lv in levels]
    ax.plot(n, [lv["service"]["analysed_fps"]["mean"] for lv in levels], "o-", label="ours, mean")
    ax.plot(
        n, [lv["service"]["analysed_fps"]["min"] for lv in levels], "v--", label="ours, slowest"
    )
    if base:
        bn = [b["cameras"] for b in base]
        ax.plot(bn, [b["tracked_fps"]["mean"] for b in base], "s-", label="naive Ultralytics, mean")
        ax.plot(
            bn, [b["tracked_fps"]["min"] for b in base], "^--", label="naive Ultralytics, slowest"
        )
    ax.axhline(fps, color="green", linestyle=":", label=f"target {fps:g} fps")
    if fps > 5:
        ax.axhline(5.0, color="orange", linestyle=":", label="floor 5 fps")
    ax.axvline(29, color="grey", linewidth=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted({*n, *(b["cameras"] for b in base)}))
    ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.set_xlabel("cameras (real-time RTSP)")
    ax.set_ylabel("frames analysed per second, per stream")
    ax.set_ylim(bottom=0)
    ax.set_title("Detect fps per stream")
    ax.legend(fontsize=8)

    p50 = [lv["service"]["frame_to_ws_alert_s"]["p50"] for lv in levels]
    p95 = [lv["service"]["frame_to_ws_alert_s"]["p95"] for lv in levels]
    lat.plot(n, [v if v is not None else float("nan") for v in p50], "o-", label="alert p50")
    lat.plot(n, [v if v is not None else float("nan") for v in p95], "v-", label="alert p95")
    lat.axhline(1.0, color="green", linestyle=":", label="target p95 1 s")
    cores = lat.twinx()
    cores.plot(
        n, [lv["service"]["cores_total"] for lv in levels], "s--", color="grey", label="cores"
    )
    cores.set_ylabel("CPU cores (service tree)")
    cores.set_ylim(bottom=0)
    lat.set_xscale("log", base=2)
    lat.set_xticks(n)
    lat.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    lat.set_xlabel("cameras")
    lat.set_ylabel("frame → WebSocket alert, s")
    lat.set_ylim(0, max(1.2, *(v for v in p95 if v is not None)) * 1.05)
    lat.set_title("Alert latency and CPU")
    lat.legend(loc="upper left", fontsize=8)
    cores.legend(loc="upper right", fontsize=8)

    m = result["machine"]
    cfg = result["config"]
    # Cores other programs took during the windows: figures from a busy machine
    # must say so on the picture itself.
    other = max((lv["service"]["other_cores"] for lv in levels), default=0.0)
    busy = f" · other load up to {other:.1f} cores (contended)" if other > 0.2 else ""
    fig.suptitle(
        f"commune-vision {result['commit']} · {m['cores']}× {m['cpu']} · {cfg['backend']} "
        f"{cfg['model']} {cfg['input_hw'][0]}×{cfg['input_hw'][1]} b{cfg['max_batch']} "
        f"{cfg['device']} · {result['date']}{busy}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m benchmarks.plot RESULT.json OUT.png")
    plot(json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2]))


if __name__ == "__main__":
    main()
