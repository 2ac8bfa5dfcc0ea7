"""Evidence lock and evidence export through the API, on real recordings, SQLite and Valkey."""

from __future__ import annotations

import hashlib
import json
import re
import stat
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import ApiSettings, create_app
from core.bus import EventBus
from core.evidence import read_key, verify_package
from core.storage.db import make_engine
from core.storage.migrate import upgrade
from core.storage.segments import SegmentIndex
from core.storage.writer import IncidentWriter
from core.types import Incident, IncidentOpened, IncidentUpdated, new_incident_id
from tests.auth_helpers import sign_in
from tests.conftest import VideoFinder
from tests.recording_helpers import record_clip

CAMERA = "street-1"
CLIP_START_S = 20.0  # into the recording
CLIP_END_S = 32.0
# The longest key-frame interval of street_parking_ipcam_day.mp4 is 2.64 s: a clip
# starts on the key frame at or before the window start, so it may be one GOP longer.
GOP_S = 2.7


def _jpeg() -> bytes:
    image = np.zeros((90, 160, 3), np.uint8)
    cv2.rectangle(image, (10, 10), (60, 80), (0, 0, 255), 2)
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    return bytes(buf.tobytes())


def _incident(camera_id: str, clip_start_ts: float) -> Incident:
    start = clip_start_ts + 5
    return Incident(
        id=new_incident_id(start),
        camera_id=camera_id,
        rule="no-parking",
        type="parking",
        severity="medium",
        labels=["car"],
        track_ids=[7],
        zone="kerb",
        start_ts=start,
        end_ts=None,
        peak_score=0.7,
        clip_start_ts=clip_start_ts,
        clip_end_ts=None,
    )


@pytest.fixture()
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)  # every test here runs on SQLite and on PostgreSQL
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture()
def media(tmp_path: Path) -> Path:
    return tmp_path / "media"


@pytest.fixture()
def writer(engine: Engine, media: Path, valkey_url: str) -> Iterator[IncidentWriter]:
    bus = EventBus(valkey_url)
    yield IncidentWriter(engine, media, bus)
    bus.close()


@pytest.fixture()
def client(engine: Engine, media: Path, valkey_url: str) -> Iterator[TestClient]:
    settings = ApiSettings(database_url=str(engine.url), redis_url=valkey_url, media_root=media)
    with TestClient(create_app(settings)) as c:
        sign_in(engine, c)
        yield c


@pytest.fixture()
def recorded_t0(writer: IncidentWriter, media: Path, video: VideoFinder) -> float:
    """The 75 s street clip recorded as camera street-1 from 100 s ago, indexed by the writer."""
    t0 = time.time() - 100
    closed = record_clip(video("street_parking_ipcam_day.mp4"), media / "recordings", CAMERA, t0)
    assert len(closed) > 10
    for event in closed:
        writer.handle(event)
    return t0


def _closed_incident(writer: IncidentWriter, camera_id: str, t0: float) -> Incident:
    inc = _incident(camera_id, t0 + CLIP_START_S)
    writer.handle(IncidentOpened(inc, _jpeg()))
    end_ts = t0 + CLIP_END_S - 5
    writer.handle(IncidentUpdated(inc.id, end_ts, 0.9, [7], True, t0 + CLIP_END_S))
    return inc


def _download(client: TestClient, incident_id: str, dest: Path) -> Path:
    resp = client.get(f"/api/incidents/{incident_id}/evidence.zip")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/zip"
    filename = f"incident-{incident_id}-evidence.zip"
    assert f'filename="{filename}"' in resp.headers["content-disposition"]
    dest.write_bytes(resp.content)
    assert resp.headers["x-evidence-sha256"] == hashlib.sha256(resp.content).hexdigest()
    return dest


def _packets(clip: Path) -> int:
    count = ["-count_packets", "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0"]
    probe = subprocess.run(
        ["ffprobe", "-v", "error", *count, str(clip)],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(probe.stdout)


def test_lock_and_unlock_round_trip(
    writer: IncidentWriter, engine: Engine, client: TestClient
) -> None:
    inc = _closed_incident(writer, CAMERA, time.time() - 100)
    index = SegmentIndex(engine)
    window = (inc.clip_start_ts, inc.clip_start_ts + 1)
    assert client.get(f"/api/incidents/{inc.id}").json()["evidence_locked"] is False

    for _ in range(2):  # idempotent
        locked = client.put(f"/api/incidents/{inc.id}/evidence-lock")
        assert locked.status_code == 200 and locked.json()["evidence_locked"] is True
        assert locked.json()["id"] == inc.id
    assert client.get(f"/api/incidents/{inc.id}").json()["evidence_locked"] is True
    # What retention asks: the locked incident's clip window is kept whatever the policy.
    [(kept_start, kept_end)] = index.kept_windows(CAMERA, *window, locked_only=True)
    assert kept_start == pytest.approx(inc.clip_start_ts)
    assert kept_end == pytest.approx(inc.clip_start_ts - CLIP_START_S + CLIP_END_S)

    unlocked = client.delete(f"/api/incidents/{inc.id}/evidence-lock")
    assert unlocked.status_code == 200 and unlocked.json()["evidence_locked"] is False
    assert client.get(f"/api/incidents/{inc.id}").json()["evidence_locked"] is False
    assert index.kept_windows(CAMERA, *window, locked_only=True) == []


def test_evidence_package_holds_a_playable_clip_and_verifies(
    writer: IncidentWriter,
    client: TestClient,
    media: Path,
    recorded_t0: float,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The export works in a temp folder; point it here to see it is cleaned up.
    work_root = tmp_path / "work"
    work_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(work_root))
    inc = _closed_incident(writer, CAMERA, recorded_t0)
    assert client.put(f"/api/incidents/{inc.id}/evidence-lock").status_code == 200
    package = _download(client, inc.id, tmp_path / "evidence.zip")

    assert list(work_root.iterdir()) == []  # the clip and zip were removed after sending
    key_file = media / "evidence.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    result = verify_package(package, read_key(key_file))
    assert result.ok, result.problems
    assert "signature valid (HMAC-SHA256)" in result.notes
    clip_name, snapshot_name = f"clips/{inc.id}.mp4", f"snapshots/{inc.id}.jpg"
    assert {f.name for f in result.files} == {
        "incident.json",
        "history.json",
        clip_name,
        snapshot_name,
    }

    with zipfile.ZipFile(package) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        incident_json = json.loads(zf.read("incident.json"))
        history = json.loads(zf.read("history.json"))
        assert zf.read(snapshot_name) == _jpeg()
        clip = tmp_path / "clip.mp4"
        clip.write_bytes(zf.read(clip_name))
    assert manifest["incident_id"] == inc.id and manifest["camera_id"] == CAMERA
    assert any(n.startswith("clip covers") for n in manifest["notes"])
    assert incident_json["id"] == inc.id and incident_json["evidence_locked"] is True
    assert incident_json["clip_end_ts"] == pytest.approx(recorded_t0 + CLIP_END_S)
    assert history[0] == {"ts": pytest.approx(inc.created_ts), "action": "created"}
    assert history[-1]["action"] == "exported" and history[-1]["evidence_locked"] is True

    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", clip],
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
    duration_s = float(probe.stdout)
    window_s = CLIP_END_S - CLIP_START_S
    assert window_s - 0.2 <= duration_s <= window_s + GOP_S, duration_s
    # Every frame decodes (framemd5 decodes each one): the clip starts on a key frame
    # and plays on its own.
    decode = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", clip, "-f", "framemd5", "-"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert decode.returncode == 0 and decode.stderr == "", decode.stderr
    frames = [line for line in decode.stdout.splitlines() if not line.startswith("#")]
    assert len(frames) == _packets(clip) > 0

    # The installation key is made once: a second export is signed with the same key.
    key_before = key_file.read_bytes()
    again = _download(client, inc.id, tmp_path / "again.zip")
    assert key_file.read_bytes() == key_before and verify_package(again, key_before).ok


def test_without_footage_the_package_is_exported_with_a_note(
    writer: IncidentWriter, client: TestClient, media: Path, recorded_t0: float, tmp_path: Path
) -> None:
    # The recordings are of street-1; this incident's camera recorded nothing.
    inc = _closed_incident(writer, "school-gate", recorded_t0)
    package = _download(client, inc.id, tmp_path / "evidence.zip")
    result = verify_package(package, read_key(media / "evidence.key"))
    assert result.ok, result.problems
    assert {f.name for f in result.files} == {
        "incident.json",
        "history.json",
        f"snapshots/{inc.id}.jpg",
    }
    notes = json.loads(zipfile.ZipFile(package).read("manifest.json"))["notes"]
    assert any(
        re.match(r"no clip: no recorded footage of camera 'school-gate' is left", n) for n in notes
    ), notes


def test_unknown_incident_is_404(client: TestClient) -> None:
    for method, path in (
        ("PUT", "/api/incidents/ffff/evidence-lock"),
        ("DELETE", "/api/incidents/ffff/evidence-lock"),
        ("GET", "/api/incidents/ffff/evidence.zip"),
    ):
        resp = client.request(method, path)
        assert resp.status_code == 404, (method, path)
        assert resp.json()["detail"] == "incident 'ffff' not found"


def test_damaged_key_refuses_export(
    writer: IncidentWriter, client: TestClient, media: Path
) -> None:
    """A new key would silently orphan every package signed before: refuse instead."""
    inc = _incident(CAMERA, time.time() - 60)
    writer.handle(IncidentOpened(inc, b""))  # no snapshot either
    media.mkdir(parents=True, exist_ok=True)
    (media / "evidence.key").write_bytes(b"truncated")
    resp = client.get(f"/api/incidents/{inc.id}/evidence.zip")
    assert resp.status_code == 500
    assert "evidence key is unusable" in resp.json()["detail"]
    assert (media / "evidence.key").read_bytes() == b"truncated"
