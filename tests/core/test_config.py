"""Config validation: every error carries its key path. Table-driven."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.config import IntrusionRule, parse_config
from core.errors import ConfigError

GOOD = """
cameras:
  - id: gate-1
    url: rtsp://user:secret@10.0.0.5/stream1
    zones:
      - name: yard
        points: [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]
    rules:
      - {type: intrusion, name: yard-people, zone: yard, classes: [person]}
"""


def test_good_config_parses() -> None:
    config = parse_config(GOOD, use_env=False)
    rule = config.cameras[0].rules[0]
    assert isinstance(rule, IntrusionRule) and rule.zone == "yard"
    assert config.detector.model == "yolo11n-int8"


BAD_CASES = [
    (
        "polygon too small",
        """
cameras:
  - {id: a, url: x.mp4}
  - {id: b, url: y.mp4}
  - id: c
    url: z.mp4
    zones: [{name: z, points: [[0, 0], [1, 1]]}]
""",
        "cameras[2].zones[0].points: polygon needs ≥ 3 points",
    ),
    (
        "unknown key",
        "cameras: [{id: a, url: x.mp4, fsp: 5}]",
        "cameras[0].fsp: unknown key",
    ),
    (
        "missing url",
        "cameras: [{id: a}]",
        "cameras[0].url: required key is missing",
    ),
    (
        "rule references a missing zone",
        """
cameras:
  - id: a
    url: x.mp4
    rules: [{type: intrusion, name: r, zone: nowhere}]
""",
        "rules[0].zone: unknown zone 'nowhere'",
    ),
    (
        "unknown class",
        """
cameras:
  - id: a
    url: x.mp4
    zones: [{name: z, points: [[0, 0], [1, 0], [1, 1]]}]
    rules: [{type: intrusion, name: r, zone: z, classes: [dragon]}]
""",
        "cameras[0].rules[0].classes[0]:",
    ),
    (
        "point outside the image",
        "cameras: [{id: a, url: x.mp4, zones: [{name: z, points: [[0, 0], [2, 0], [1, 1]]}]}]",
        "cameras[0].zones[0].points: point (2.0, 0.0) is outside 0..1",
    ),
    (
        "bad detect fps",
        "cameras: [{id: a, url: x.mp4, detect: {fps: 0}}]",
        "cameras[0].detect.fps:",
    ),
    ("duplicate camera ids", "cameras: [{id: a, url: x}, {id: a, url: y}]", "repeated: a"),
    ("input size not /32", "detector: {input_hw: [640, 500]}", "detector.input_hw:"),
    ("bad device", "detector: {device: tpu}", "detector.device:"),
    (
        "line with one point",
        "cameras: [{id: a, url: x, lines: [{name: l, points: [[0, 0]]}]}]",
        "cameras[0].lines[0].points: a line needs exactly 2 points",
    ),
    (
        "line rule on an unknown line",
        "cameras: [{id: a, url: x, rules: [{type: line_crossing, name: r, line: gate}]}]",
        "rules[0].line: unknown line 'gate'",
    ),
    (
        "speeding without calibration",
        """
cameras:
  - id: a
    url: x
    zones: [{name: z, points: [[0, 0], [1, 0], [1, 1]]}]
    rules: [{type: speeding, name: s, zone: z, limit_kmh: 50}]
""",
        "speeding needs the camera's `calibration`",
    ),
    (
        "bad schedule time",
        """
cameras:
  - id: a
    url: x
    zones: [{name: z, points: [[0, 0], [1, 0], [1, 1]]}]
    rules: [{type: intrusion, name: r, zone: z, schedule: [{start: "25:00", end: "05:00"}]}]
""",
        "cameras[0].rules[0].schedule[0].start: '25:00' is not a time of day",
    ),
    ("unknown time zone", "timezone: Mars/Olympus", "timezone: unknown time zone"),
    (
        "lease shorter than 3 heartbeats",
        "cluster: {heartbeat_s: 2, lease_ttl_s: 5}",
        "cluster.lease_ttl_s (5.0) must be at least 3 × cluster.heartbeat_s (2.0)",
    ),
    ("yaml syntax", "cameras: [", "not valid YAML"),
    ("not a mapping", "- 1\n- 2", "expected a mapping"),
]


@pytest.mark.parametrize(
    ("text", "expected"), [(t, e) for _, t, e in BAD_CASES], ids=[n for n, _, _ in BAD_CASES]
)
def test_bad_config_names_the_key(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, use_env=False)
    assert any(expected in line for line in info.value.errors), info.value.errors


def test_all_errors_reported_at_once() -> None:
    text = "cameras: [{id: A!, url: x}, {id: b}]\ndetector: {max_batch: 0}"
    with pytest.raises(ConfigError) as info:
        parse_config(text, use_env=False)
    paths = {line.split(":")[0] for line in info.value.errors}
    assert {"cameras[0].id", "cameras[1].url", "detector.max_batch"} <= paths


def test_env_expansion_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIPS", "/data/clips")
    monkeypatch.setenv("REDIS_URL", "redis://10.1.1.1:6379/0")
    monkeypatch.setenv("COMMUNE_VISION_MODEL", "/models/custom_openvino_model")
    config = parse_config("cameras: [{id: a, url: '${CLIPS}/a.mp4'}]")
    assert config.cameras[0].url == "/data/clips/a.mp4"
    assert config.redis_url == "redis://10.1.1.1:6379/0"
    assert config.detector.model == "/models/custom_openvino_model"


def test_unset_env_without_default_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_NOT_SET", raising=False)
    with pytest.raises(ConfigError) as info:
        parse_config("cameras: [{id: a, url: '${NOPE_NOT_SET}/a.mp4'}]")
    assert any("NOPE_NOT_SET" in e for e in info.value.errors)


def _config_check(path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "commune_vision.cli", "config", "check", path],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_config_check_exits_non_zero_with_key_paths(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_CASES[0][1])
    result = _config_check(str(bad))
    assert result.returncode == 2
    assert "cameras[2].zones[0].points: polygon needs ≥ 3 points" in result.stderr


def test_cli_config_check_accepts_demo_config(assets: Path) -> None:
    from commune_vision.cli import demo_config_path

    result = _config_check(str(demo_config_path()))
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_cli_reports_missing_clip_and_model(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"cameras: [{{id: a, url: {tmp_path}/none.mp4}}]\ndetector: {{model: {tmp_path}/nomodel}}\n"
    )
    result = _config_check(str(cfg))
    assert result.returncode == 2
    assert "cameras[0].url: video file not found" in result.stderr
    assert "detector.model:" in result.stderr and "yolo export" in result.stderr
