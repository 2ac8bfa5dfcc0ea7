"""What-if replay from the command line: two thresholds, the difference reported."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from core.storage.db import make_engine
from core.storage.migrate import upgrade
from core.storage.segments import SegmentIndex
from tests.recording_helpers import record_clip

CAMERA = """
cameras:
  - id: campus
    url: rtsp://camera.invalid/stream
    zones:
      - name: walkway
        points: [[0.0, 0.36], [0.6, 0.34], [1.0, 0.40], [1.0, 0.85], [0.7, 0.68], [0.0, 0.50]]
    rules:
      - {{type: intrusion, name: walkway-people, zone: walkway, min_inside_s: {min_inside_s}}}
"""


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "commune_vision.cli", "replay", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_replay_compares_two_thresholds(tmp_path: Path, video) -> None:  # type: ignore[no-untyped-def]
    strict, lax = tmp_path / "strict.yaml", tmp_path / "lax.yaml"
    strict.write_text(CAMERA.format(min_inside_s=8))
    lax.write_text(CAMERA.format(min_inside_s=0.5))
    out = tmp_path / "replay.json"
    result = _cli(
        "--config",
        str(strict),
        "--baseline",
        str(lax),
        "--max-seconds",
        "30",
        "--video",
        str(video("pets2009_vtest_480x360.mp4")),
        "--json",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert "vs baseline:" in result.stdout
    data = json.loads(out.read_text())
    candidate, baseline, diff = data["candidate"], data["baseline"], data["diff"]
    assert candidate["frames_detected"] > 0
    # Demanding 8 s inside instead of 0.5 s: fewer incidents, a subset of the same people.
    assert 0 < len(candidate["incidents"]) < len(baseline["incidents"])
    assert diff["only_candidate"] == [] and diff["only_baseline"] and diff["both"]
    assert all(i["start_s"] <= 30.5 for i in baseline["incidents"])


def test_replay_of_recorded_footage_by_camera_and_time(tmp_path: Path, video) -> None:  # type: ignore[no-untyped-def]
    """The footage comes from the recordings: the real recorder wrote it, the index finds it."""
    data = tmp_path / "data"
    strict, lax = tmp_path / "strict.yaml", tmp_path / "lax.yaml"
    storage = f"storage: {{data_dir: {data}}}\n"
    strict.write_text(CAMERA.format(min_inside_s=8) + storage)
    lax.write_text(CAMERA.format(min_inside_s=0.5) + storage)
    data.mkdir()
    engine = make_engine(f"sqlite:///{data / 'commune-vision.db'}")
    upgrade(engine)
    t0 = 1_795_000_000.0
    segments = record_clip(
        video("pets2009_vtest_480x360.mp4"),
        data / "recordings",
        "campus",
        t0,
        10.0,
        SegmentIndex(engine),
    )
    engine.dispose()
    assert len(segments) >= 3
    out = tmp_path / "replay.json"
    result = _cli(
        "--config",
        str(strict),
        "--baseline",
        str(lax),
        "--camera",
        "campus",
        "--from",
        str(t0),
        "--to",
        str(t0 + 30),
        "--json",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert "recorded footage: " in result.stdout
    report = json.loads(out.read_text())
    candidate, baseline = report["candidate"], report["baseline"]
    assert 0 < len(candidate["incidents"]) < len(baseline["incidents"])
    # At most one GOP before --from, and no further than --to.
    assert all(i["start_s"] <= 30.5 + 8 for i in baseline["incidents"])

    # Local time (the config's zone, Asia/Ho_Chi_Minh = UTC+7) names the same window.
    local = datetime.fromtimestamp(t0 + 300, ZoneInfo("Asia/Ho_Chi_Minh")).replace(tzinfo=None)
    result = _cli(
        "--config",
        str(strict),
        "--camera",
        "campus",
        "--from",
        local.isoformat(),
        "--to",
        (local + timedelta(seconds=30)).isoformat(),
    )
    assert result.returncode == 2 and "nothing recorded between --from and --to" in result.stderr


def test_replay_explains_what_is_missing(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(CAMERA.format(min_inside_s=1) + f"storage: {{data_dir: {tmp_path}}}\n")
    result = _cli("--config", str(config), "--camera", "campus", "--from", "2026-11-22T17:00")
    assert result.returncode == 2 and "--camera, --from and --to" in result.stderr
    result = _cli(
        "--config",
        str(config),
        "--camera",
        "campus",
        "--from",
        "2026-11-22T17:00",
        "--to",
        "yesterday",
    )
    assert result.returncode == 2 and "--to: 'yesterday' is not a time" in result.stderr
    result = _cli(
        "--config",
        str(config),
        "--camera",
        "campus",
        "--from",
        "2026-11-22T17:00",
        "--to",
        "2026-11-22T16:00",
    )
    assert result.returncode == 2 and "--to must be later than --from" in result.stderr
    result = _cli("--config", str(config), "--video", str(tmp_path / "nope.mp4"))
    assert result.returncode == 2 and "--video" in result.stderr
    config.write_text(
        CAMERA.format(min_inside_s=1) + f"storage: {{data_dir: {tmp_path / 'none'}}}\n"
    )
    result = _cli(
        "--config", str(config), "--camera", "campus", "--from", "1795000000", "--to", "1795000030"
    )
    assert result.returncode == 2 and "cannot read the recordings index" in result.stderr
