"""What-if replay from the command line: two thresholds, the difference reported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


def test_replay_explains_what_is_missing(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(CAMERA.format(min_inside_s=1))
    result = _cli("--config", str(config), "--camera", "campus", "--from", "2026-11-22T17:00")
    assert result.returncode == 2 and "recording" in result.stderr
    result = _cli("--config", str(config), "--video", str(tmp_path / "nope.mp4"))
    assert result.returncode == 2 and "--video" in result.stderr
