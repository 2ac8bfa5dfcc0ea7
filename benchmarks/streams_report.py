"""What ``benchmarks.streams`` writes: the targets, JSON, CSV, the plot, ledger rows."""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, append_ledger_row

BENCH_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
TARGET_CAMERAS = 29
TARGET_EFFICIENCY = 0.90
TARGET_BASELINE_FACTOR = 5.0
TARGET_ALERT_P95_S = 1.0
TARGET_RECORDING_CORES = 0.1


def bare_frames_s(result: dict[str, Any]) -> float:
    """The bare model's ceiling in camera frames/s (a mosaic input holds several)."""
    bare = result["bare_model"]
    return float(bare["img_s"]) * int(bare.get("frames_per_input", 1))


def largest(rows: list[dict[str, Any]], key: str) -> int:
    """The most cameras among the measured ones that kept up (0 if none did)."""
    return max((int(r["cameras"]) for r in rows if r[key]), default=0)


def _newest_recording() -> dict[str, Any] | None:
    """The newest ``benchmarks.recording`` result (``make bench`` runs it just before)."""
    files = sorted((ROOT / "benchmarks" / "results").glob("recording-*.json"))
    if not files:
        return None
    data: dict[str, Any] = json.loads(files[-1].read_text())
    return {
        "cameras": data["cameras"],
        "recording_cores": round(float(data["recording_cores"]), 3),
        "from": files[-1].name,
    }


def targets(result: dict[str, Any]) -> dict[str, Any]:
    levels = result["levels"]
    services = [lv["service"] | {"cameras": lv["cameras"]} for lv in levels]
    fps = float(result["config"]["detect_fps"])
    bare = bare_frames_s(result)
    at29 = next((s for s in services if s["cameras"] == TARGET_CAMERAS), None)
    # Efficiency means something only where the detector had more to do than the
    # model can: frames delivered to it ≥ 95 % of the bare rate.
    saturated = [
        s
        for s in services
        if sum(c["delivered_fps"] for c in s["per_camera"].values()) >= 0.95 * bare
    ]
    best = max(saturated, key=lambda s: s["detected_per_s_total"], default=None)
    peak = max(services, key=lambda s: s["detected_per_s_total"], default=None)
    cores = int(result["machine"]["cores"] or 1)
    baseline = result["baseline"]
    ours_n, ours_floor_n = largest(services, "keeps_target"), largest(services, "keeps_floor")
    base_n, base_floor_n = largest(baseline, "keeps_target"), largest(baseline, "keeps_floor")
    recording = next((lv["recording"] for lv in levels if "recording" in lv), None)
    if recording is None:
        recording = _newest_recording()
    out: dict[str, Any] = {
        "largest_n_at_target_fps": ours_n,
        "largest_n_at_floor_5_fps": ours_floor_n,
        "baseline_largest_n_at_target_fps": base_n,
        "baseline_largest_n_at_floor_5_fps": base_floor_n,
        f"{TARGET_CAMERAS}_cameras_at_{fps:g}_fps": None if at29 is None else at29["keeps_target"],
        f"{TARGET_CAMERAS}_cameras_at_floor_5_fps": None if at29 is None else at29["keeps_floor"],
        "efficiency": None
        if best is None
        else {
            "cameras": best["cameras"],
            "detections_per_s": best["detected_per_s_total"],
            "bare_frames_s": bare,
            "ratio": round(best["detected_per_s_total"] / bare, 3),
            "met": best["detected_per_s_total"] / bare >= TARGET_EFFICIENCY,
        },
        # The bare model has every core; in the service, decode takes a share of
        # them. Per core the detector process got, how close it came to the model.
        "efficiency_per_detector_core": None
        if peak is None or str(result["config"]["device"]).startswith("cuda")
        else _per_core(peak, bare, cores),
        "vs_baseline": {
            "ours": ours_n,
            "baseline": base_n,
            "factor": None if base_n == 0 else round(ours_n / base_n, 2),
            "floor_factor": None if base_floor_n == 0 else round(ours_floor_n / base_floor_n, 2),
            "met": base_n > 0 and ours_n >= TARGET_BASELINE_FACTOR * base_n,
            "baseline_tried_up_to": max((int(b["cameras"]) for b in baseline), default=0),
        },
        "alert_p95_s": None
        if at29 is None
        else {
            "cameras": TARGET_CAMERAS,
            "p95": at29["frame_to_ws_alert_s"]["p95"],
            "met": at29["frame_to_ws_alert_s"]["p95"] is not None
            and at29["frame_to_ws_alert_s"]["p95"] <= TARGET_ALERT_P95_S,
        },
        "recording": None
        if recording is None
        else recording | {"met": recording["recording_cores"] <= TARGET_RECORDING_CORES},
    }
    return out


def _per_core(service: dict[str, Any], bare_frames_s: float, cores: int) -> dict[str, Any]:
    detector_cores = float(service["cores_per_process"].get("cv-detector", 0.0))
    detected = float(service["detected_per_s_total"])
    ratio = 0.0 if detector_cores <= 0 else (detected / detector_cores) / (bare_frames_s / cores)
    return {
        "cameras": service["cameras"],
        "detections_per_s": detected,
        "detector_cores": detector_cores,
        "ratio": round(ratio, 3),
    }


CSV_FIELDS = [
    "kind",
    "cameras",
    "target_fps",
    "decoded_fps_min",
    "decoded_fps_mean",
    "detected_fps_min",
    "detected_fps_p50",
    "detected_fps_mean",
    "analysed_fps_min",
    "analysed_fps_p50",
    "analysed_fps_mean",
    "dropped_fps_total",
    "mosaic_fps_total",
    "detections_per_s",
    "detections_vs_bare",
    "keeps_target",
    "keeps_floor",
    "cores",
    "cores_detector",
    "cores_ingest",
    "rss_mb",
    "pss_mb",
    "incidents",
    "frame_to_incident_p50_s",
    "frame_to_incident_p95_s",
    "frame_to_ws_alert_p50_s",
    "frame_to_ws_alert_p95_s",
    "ffmpeg_decode_cores",
    "rtsp_server_cores",
    "other_cores",
]


def csv_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    fps = result["config"]["detect_fps"]
    bare = bare_frames_s(result)
    rows: list[dict[str, Any]] = []
    for lv in result["levels"]:
        s = lv["service"]
        ffmpeg = lv.get("ffmpeg_decode")
        rows.append(
            {
                "kind": "service",
                "cameras": lv["cameras"],
                "target_fps": fps,
                "decoded_fps_min": s["decoded_fps"]["min"],
                "decoded_fps_mean": s["decoded_fps"]["mean"],
                "detected_fps_min": s["detected_fps"]["min"],
                "detected_fps_p50": s["detected_fps"]["p50"],
                "detected_fps_mean": s["detected_fps"]["mean"],
                "analysed_fps_min": s["analysed_fps"]["min"],
                "analysed_fps_p50": s["analysed_fps"]["p50"],
                "analysed_fps_mean": s["analysed_fps"]["mean"],
                "dropped_fps_total": s["dropped_fps_total"],
                "mosaic_fps_total": s.get("mosaic_fps"),
                "detections_per_s": s["detected_per_s_total"],
                "detections_vs_bare": round(s["detected_per_s_total"] / bare, 3),
                "keeps_target": s["keeps_target"],
                "keeps_floor": s["keeps_floor"],
                "cores": s["cores_total"],
                "cores_detector": s["cores_per_process"].get("cv-detector"),
                "cores_ingest": s["cores_per_process"].get("cv-ingest"),
                "rss_mb": s["rss_mb_total"],
                "pss_mb": s["pss_mb_total"],
                "incidents": s["incidents"],
                "frame_to_incident_p50_s": s["frame_to_incident_s"]["p50"],
                "frame_to_incident_p95_s": s["frame_to_incident_s"]["p95"],
                "frame_to_ws_alert_p50_s": s["frame_to_ws_alert_s"]["p50"],
                "frame_to_ws_alert_p95_s": s["frame_to_ws_alert_s"]["p95"],
                "ffmpeg_decode_cores": None if ffmpeg is None else round(ffmpeg["cores"], 3),
                "rtsp_server_cores": s["rtsp_server_cores"],
                "other_cores": s["other_cores"],
            }
        )
    for b in result["baseline"]:
        rows.append(
            {
                "kind": "naive_ultralytics",
                "cameras": b["cameras"],
                "target_fps": fps,
                "decoded_fps_min": min(c["read_fps"] for c in b["per_camera"]),
                "detected_fps_min": b["tracked_fps"]["min"],
                "detected_fps_p50": b["tracked_fps"]["p50"],
                "detected_fps_mean": b["tracked_fps"]["mean"],
                "keeps_target": b["keeps_target"],
                "keeps_floor": b["keeps_floor"],
                "cores": b["cores"],
                "rss_mb": b["rss_mb"],
            }
        )
    return rows


def ledger(result: dict[str, Any], tg: dict[str, Any]) -> None:
    cfg = result["config"]
    hw = "×".join(map(str, cfg["input_hw"]))
    grid, mode = cfg.get("tile_grid", [1, 1]), cfg.get("mosaic", "off")
    mosaic = "" if mode == "off" else f" mosaic {mode} {grid[0]}×{grid[1]}"
    backend = f"{cfg['backend']} {cfg['model']} {hw}{mosaic} b{cfg['max_batch']} {cfg['device']}"
    bare = bare_frames_s(result)
    per = int(result["bare_model"].get("frames_per_input", 1))
    img_s = result["bare_model"]["img_s"]
    ceiling = f"{img_s} img/s" if per == 1 else f"{img_s} img/s × {per} frames per mosaic"
    for lv in result["levels"]:
        s = lv["service"]
        ff = lv.get("ffmpeg_decode")
        decode = (
            ""
            if ff is None
            else f"; decode: ingest {s['cores_per_process'].get('cv-ingest', 0):.2f} cores "
            f"(with recording), ffmpeg -f null {ff['cores']:.2f}"
        )
        append_ledger_row(
            "streams",
            f"{lv['cameras']} RTSP cams (360p/480p, real time) through the full service, "
            f"detect {cfg['detect_fps']:g} fps target, {backend}",
            f"{s['cores_total']:.2f} cores, PSS {s['pss_mb_total']} MB "
            f"(other load {s['other_cores']:.2f} cores)",
            f"analysed fps/stream min {s['analysed_fps']['min']} mean {s['analysed_fps']['mean']}"
            f" (detected mean {s['detected_fps']['mean']}), dropped {s['dropped_fps_total']}/s"
            f"{_mosaic_share(s)}; "
            f"{s['detected_per_s_total']} det/s ÷ bare {ceiling} = "
            f"{s['detected_per_s_total'] / bare:.2f}{decode}; frame→incident p50/p95 "
            f"{s['frame_to_incident_s']['p50']}/{s['frame_to_incident_s']['p95']} s, "
            f"frame→WS alert {s['frame_to_ws_alert_s']['p50']}/{s['frame_to_ws_alert_s']['p95']}"
            f" s ({s['incidents']} incidents)",
        )
    for b in result["baseline"]:
        append_ledger_row(
            "streams naive baseline",
            f"{b['cameras']} RTSP cams, Ultralytics {b['versions']['ultralytics']} "
            f"YOLO.track(persist=True) per thread, same int8 OpenVINO model, "
            f"{cfg['detect_fps']:g} fps target",
            f"{b['cores']:.2f} cores, RSS {b['rss_mb']:.0f} MB",
            f"tracked fps/stream min {b['tracked_fps']['min']} mean {b['tracked_fps']['mean']}; "
            f"real time: {'yes' if b['keeps_target'] else 'no'}",
        )
    vs = tg["vs_baseline"]
    append_ledger_row(
        "streams targets",
        f"largest N in real time: ours {tg['largest_n_at_target_fps']} at "
        f"{cfg['detect_fps']:g} fps, {tg['largest_n_at_floor_5_fps']} at floor 5; baseline "
        f"{vs['baseline']} / {tg['baseline_largest_n_at_floor_5_fps']}",
        "—",
        "; ".join(f"{k} {_short(v)}" for k, v in tg.items() if isinstance(v, dict | bool)),
    )


def _mosaic_share(service: dict[str, Any]) -> str:
    packed, detected = service.get("mosaic_fps") or 0.0, service["detected_per_s_total"]
    return f", {packed / detected:.0%} of detections in mosaics" if packed and detected else ""


def _short(value: Any) -> str:
    if isinstance(value, dict):
        shown = {k: v for k, v in value.items() if k in ("ratio", "factor", "p95", "met")}
        shown |= {k: v for k, v in value.items() if k == "recording_cores"}
        return json.dumps(shown)
    return str(value)


def finish(result: dict[str, Any], args: argparse.Namespace, results_dir: Path) -> None:
    result["targets"] = tg = targets(result)
    results_dir.mkdir(parents=True, exist_ok=True)
    stem = results_dir / f"streams-{time.strftime('%Y%m%d-%H%M%S')}"
    json_path = stem.with_suffix(".json")
    json_path.write_text(json.dumps(result, indent=2))
    with stem.with_suffix(".csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(csv_rows(result))
    print(json.dumps(tg, indent=2))
    print(f"wrote {json_path} and {stem.with_suffix('.csv')}")
    if not args.no_plot:
        # matplotlib lives in .venv-bench, beside Ultralytics, not in the service's venv.
        png = stem.with_suffix(".png")
        plot = subprocess.run(
            [str(BENCH_PYTHON), "-m", "benchmarks.plot", str(json_path), str(png)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        print(f"wrote {png}" if plot.returncode == 0 else f"plot failed: {plot.stderr[-2000:]}")
    if not args.no_ledger:
        ledger(result, tg)
