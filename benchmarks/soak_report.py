"""The soak's analysis, files and plot (``benchmarks.soak`` samples, this judges).

Growth is judged after a warm-up of max(5 min, 10 %) of the run (at most half):
the mean of the first 10 % after it against the mean of the last 10 %, per process
and in total, with a least-squares slope (whole and last half: a slope that falls
towards zero is a plateau, not a leak).  Targets: total RSS growth ≤ 5 %; fds and
threads flat (last-window mean within max(2, 5 %) of the first-window mean).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

RSS_TARGET_PCT = 5.0
# Per process and sample; MB figures are summed over a stage's pids.
KEYS = ("rss_mb", "uss_mb", "anon_mb", "shmem_mb", "fds", "threads")


def warmup_s(duration_s: float) -> float:
    return min(max(300.0, 0.1 * duration_s), 0.5 * duration_s)


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def _slope_per_h(points: list[tuple[float, float]]) -> float:
    if len(points) < 2:
        return 0.0
    mt = mean([t for t, _ in points])
    mv = mean([v for _, v in points])
    var = sum((t - mt) ** 2 for t, _ in points)
    return 3600 * sum((t - mt) * (v - mv) for t, v in points) / var if var else 0.0


def analyse(samples: list[dict[str, Any]], duration_s: float) -> dict[str, Any]:
    """Growth after the warm-up: first 10 % after it against the last 10 % of the run."""
    warm = warmup_s(duration_s)
    window = max(0.1 * duration_s, 1.0)
    end_t = samples[-1]["t_s"]
    after = [s for s in samples if s["t_s"] >= warm]
    first = [s for s in after if s["t_s"] < warm + window] or after[:1]
    last = [s for s in after if s["t_s"] > end_t - window] or after[-1:]
    names = sorted({n for s in after for n in s["procs"]})

    def series(name: str, key: str, rows: list[dict[str, Any]]) -> list[float]:
        # .get: results saved before a key existed are analysed again with --redo.
        if name == "total":
            return [sum(p.get(key, 0.0) for p in s["procs"].values()) for s in rows]
        return [s["procs"][name].get(key, 0.0) for s in rows if name in s["procs"]]

    per: dict[str, dict[str, Any]] = {}
    for name in [*names, "total"]:
        r0, r1 = mean(series(name, "rss_mb", first)), mean(series(name, "rss_mb", last))
        u0, u1 = mean(series(name, "uss_mb", first)), mean(series(name, "uss_mb", last))
        a0, a1 = mean(series(name, "anon_mb", first)), mean(series(name, "anon_mb", last))
        fds, thr = series(name, "fds", after), series(name, "threads", after)
        flat: dict[str, bool] = {}
        for key in ("fds", "threads"):
            a, b = mean(series(name, key, first)), mean(series(name, key, last))
            flat[key] = b - a <= max(2.0, 0.05 * a)
        points = [(s["t_s"], series(name, "rss_mb", [s])) for s in after]
        rss_t = [(t, v[0]) for t, v in points if v]
        half = (warm + end_t) / 2
        per[name] = {
            "rss_mb_warm": round(r0, 1),
            "rss_mb_end": round(r1, 1),
            "rss_growth_pct": round(100 * (r1 - r0) / r0, 2) if r0 else None,
            "rss_slope_mb_per_h": round(_slope_per_h(rss_t), 2),
            # Much less in the last half than overall: growing to a plateau, not a leak.
            "rss_slope_last_half_mb_per_h": round(
                _slope_per_h([(t, v) for t, v in rss_t if t >= half]), 2
            ),
            # Private pages only: RSS also counts the shared frame rings, which a
            # stage maps whole but touches bit by bit (it grows to a plateau).
            "uss_mb_warm": round(u0, 1),
            "uss_mb_end": round(u1, 1),
            "uss_growth_pct": round(100 * (u1 - u0) / u0, 2) if u0 else None,
            "anon_mb_warm": round(a0, 1),
            "anon_mb_end": round(a1, 1),
            "anon_growth_pct": round(100 * (a1 - a0) / a0, 2) if a0 else None,
            "shmem_mb_end": round(mean(series(name, "shmem_mb", last)), 1),
            "fds_min_max": [min(fds, default=0), max(fds, default=0)],
            "threads_min_max": [min(thr, default=0), max(thr, default=0)],
            "fds_flat": flat["fds"],
            "threads_flat": flat["threads"],
        }
    w0, w1 = samples[0]["work"], samples[-1]["work"]
    work = {k: w1.get(k, 0) - w0.get(k, 0) for k in ("incidents", "segments_written", "alerts")}
    work |= {
        "recordings_mb_max": max((s["work"].get("recordings_mb", 0) for s in samples), default=0),
        "cameras_online_min_after_warmup": min(
            (s["work"].get("online", 0) for s in after), default=0
        ),
        "camera_reconnects": w1.get("reconnects", 0),
        "frames_dropped": w1.get("dropped", 0),
    }
    # A stage over the target by a few MB is noise; over it by more is a finding, a
    # leak if its private heap (RssAnon) grows too, else shared frame-ring pages.
    growing = {
        n: "heap"
        if (v["anon_growth_pct"] or 0) > RSS_TARGET_PCT
        else ("shared pages" if v["anon_mb_end"] else "unknown (no RssAnon sampled)")
        for n, v in per.items()
        if n != "total"
        and (v["rss_growth_pct"] or 0) > RSS_TARGET_PCT
        and v["rss_mb_end"] - v["rss_mb_warm"] > 5
    }
    return {
        "warmup_s": warm,
        "window_s": window,
        "per_process": per,
        "work": work,
        "verdict": {
            "rss_total_ok": (per["total"]["rss_growth_pct"] or 0) <= RSS_TARGET_PCT,
            "rss_growing_processes": growing,
            "fds_flat": all(v["fds_flat"] for v in per.values()),
            "threads_flat": all(v["threads_flat"] for v in per.values()),
        },
    }


def plot(result: dict[str, Any], samples: list[dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only
    import matplotlib.pyplot as plt

    names = sorted({n for s in samples for n in s["procs"]})
    t = [s["t_s"] / 60 for s in samples]
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5), sharex=True)
    for ax, key, title in (
        (axes[0][0], "rss_mb", "RSS per process, MB"),
        (axes[1][0], "fds", "open fds per process"),
        (axes[1][1], "threads", "threads per process"),
    ):
        for name in names:
            ys = [s["procs"][name][key] if name in s["procs"] else float("nan") for s in samples]
            ax.plot(t, ys, label=name, linewidth=1.2)
        ax.set_title(title)
        ax.set_ylim(bottom=0)
    # The total on its own axis: on the stages' scale it would flatten their curves.
    total_ax = axes[0][0].twinx()
    total = [sum(p["rss_mb"] for p in s["procs"].values()) for s in samples]
    total_ax.plot(t, total, "k-", linewidth=2, label="total RSS (right axis)")
    uss = [sum(p["uss_mb"] for p in s["procs"].values()) for s in samples]
    total_ax.plot(t, uss, "k--", linewidth=1.5, label="total USS (right axis)")
    anon = [sum(p.get("anon_mb", 0.0) for p in s["procs"].values()) for s in samples]
    if any(anon):  # the heap, without shared frame-ring pages: where a leak would show
        total_ax.plot(t, anon, "k:", linewidth=1.5, label="total RssAnon (right axis)")
    total_ax.set_ylim(0, max(total) * 1.1)
    total_ax.set_ylabel("total RSS, MB")
    axes[0][0].legend(fontsize=7, ncol=2, loc="lower left")
    total_ax.legend(fontsize=7, loc="lower right")
    work = axes[0][1]
    for key, lab in (("incidents", "incidents"), ("segments_written", "segments written")):
        w0 = samples[0]["work"].get(key, 0)
        work.plot(t, [s["work"].get(key, 0) - w0 for s in samples], label=lab)
    work.plot(
        t, [s["work"].get("recordings_mb", 0) for s in samples], label="recordings on disk, MB"
    )
    work.set_title("work done (cumulative) and disk")
    work.legend(fontsize=8)
    for ax in axes.flat:
        ax.axvspan(0, result["analysis"]["warmup_s"] / 60, color="grey", alpha=0.15)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("minutes (shaded: warm-up)")
    tot = result["analysis"]["per_process"]["total"]
    fig.suptitle(
        f"Soak: {result['cameras']} cameras, {result['minutes']:g} min · total RSS "
        f"{tot['rss_mb_warm']:.0f} → {tot['rss_mb_end']:.0f} MB "
        f"({tot['rss_growth_pct']:+.1f} %) · load avg {result['load_avg_mean']:.1f} "
        f"on {os.cpu_count()} cores · {result['date']} {result['commit']}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def write_csv(path: Path, samples: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["t_s", "process", "pids", *KEYS])
        for s in samples:
            for name, p in sorted(s["procs"].items()):
                pids = " ".join(map(str, p["pids"]))
                w.writerow([s["t_s"], name, pids, *(round(p.get(k, 0), 2) for k in KEYS)])
    keys = sorted({k for s in samples for k in s["work"]})
    with path.with_name(path.stem + "-work.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["t_s", "load1", *keys])
        for s in samples:
            w.writerow([s["t_s"], s["load1"], *(s["work"].get(k, "") for k in keys)])


def report(result: dict[str, Any], stem: Path) -> None:
    """Analyse the samples, write JSON, CSVs and PNG next to ``stem``, print a summary."""
    samples = result.pop("samples")
    if len(samples) < 2:
        raise SystemExit("fewer than two samples: nothing to analyse")
    a = result["analysis"] = analyse(samples, samples[-1]["t_s"])
    a["verdict"]["no_restarts"] = not result["restarts"] and result["service_exit_code"] is None
    result["samples"] = samples  # last in the file: the summary reads first
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1))
    write_csv(stem.with_suffix(".csv"), samples)
    plot(result, samples, stem.with_suffix(".png"))
    print(
        "process          RSS warm RSS end growth  MB/h (2nd half) USS end anon warm→end  fds thr"
    )
    for name, v in a["per_process"].items():
        print(
            f"{name:16} {v['rss_mb_warm']:8.1f} {v['rss_mb_end']:7.1f} "
            f"{v['rss_growth_pct'] or 0:5.1f}% {v['rss_slope_mb_per_h']:5.1f} "
            f"({v['rss_slope_last_half_mb_per_h']:5.1f}) "
            f"{v['uss_mb_end']:7.1f} {v['anon_mb_warm']:6.1f}→{v['anon_mb_end']:<6.1f} "
            f"{v['fds_min_max']} {v['threads_min_max']}"
        )
    print(json.dumps({"work": a["work"], "verdict": a["verdict"], "restarts": result["restarts"]}))
    print(f"load avg mean {result['load_avg_mean']}, max {result['load_avg_max']}")
    print(f"wrote {stem}.json, .csv, -work.csv, .png")
