"""Footage routes on real recorder output, real SQLite, a real Valkey and real ffprobe."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from api.app import ApiSettings, create_app
from core.bus import EventBus
from core.storage.db import make_engine
from core.storage.migrate import upgrade
from core.storage.models import SegmentRow
from core.storage.segments import SegmentIndex
from core.storage.writer import IncidentWriter
from core.types import (
    Incident,
    IncidentOpened,
    IncidentUpdated,
    SegmentClosed,
    new_incident_id,
)
from tests.auth_helpers import sign_in
from tests.conftest import VideoFinder
from tests.pg import DB_KINDS, db_url_for
from tests.recording_helpers import decode_errors, ffprobe, record_clip, source_keyframes_s

T0 = 1_700_000_000.0
GAP_S = 20.0
CAMERA = "gate-1"
MAX_GOP_S = 3.5  # street_parking_ipcam_day: key frames 2-3.3 s apart


@dataclass(frozen=True)
class Recording:
    first: list[SegmentClosed]  # the first run
    second: list[SegmentClosed]  # the second, after the camera was offline GAP_S
    keyframes_ts: list[float]

    @property
    def segments(self) -> list[SegmentClosed]:
        return self.first + self.second


@pytest.fixture(scope="module")
def media_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module", params=DB_KINDS)
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    # Every test here runs on SQLite and on a real PostgreSQL.
    engine = make_engine(db_url_for(request, tmp_path_factory.mktemp("db")))
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def recording(video: VideoFinder, engine: Engine, media_root: Path) -> Recording:
    clip = video("street_parking_ipcam_day.mp4")
    index = SegmentIndex(engine)
    root = media_root / "recordings"  # the API's default recordings directory
    first = record_clip(clip, root, CAMERA, T0, index=index)
    second_t0 = first[-1].end_ts + GAP_S
    second = record_clip(clip, root, CAMERA, second_t0, index=index)
    keyframes = source_keyframes_s(clip)
    return Recording(
        first, second, [T0 + k for k in keyframes] + [second_t0 + k for k in keyframes]
    )


@pytest.fixture(scope="module")
def writer(engine: Engine, media_root: Path, valkey_url: str) -> Iterator[IncidentWriter]:
    bus = EventBus(valkey_url)
    yield IncidentWriter(engine, media_root, bus)
    bus.close()


@pytest.fixture(scope="module")
def client(engine: Engine, media_root: Path, valkey_url: str) -> Iterator[TestClient]:
    settings = ApiSettings(
        database_url=str(engine.url), redis_url=valkey_url, media_root=media_root
    )
    with TestClient(create_app(settings)) as c:
        sign_in(engine, c)
        yield c


def _incident(start_ts: float, end_ts: float | None, camera_id: str = CAMERA) -> Incident:
    return Incident(
        id=new_incident_id(start_ts),
        camera_id=camera_id,
        rule="walkway-intrusion",
        type="intrusion",
        severity="high",
        labels=["person"],
        track_ids=[7],
        zone="walkway",
        start_ts=start_ts,
        end_ts=end_ts,
        peak_score=0.8,
        clip_start_ts=start_ts - 5,
        clip_end_ts=None,
    )


def _open(writer: IncidentWriter, start_ts: float, camera_id: str = CAMERA) -> Incident:
    incident = _incident(start_ts, None, camera_id)
    writer.handle(IncidentOpened(incident, b""))
    return incident


def _close(writer: IncidentWriter, incident: Incident, end_ts: float, post_s: float) -> None:
    writer.handle(IncidentUpdated(incident.id, end_ts, 0.9, [7], True, end_ts + post_s))


def _save(tmp_path: Path, name: str, body: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(body)
    return path


def _duration_s(path: Path) -> float:
    return float(ffprobe(path, "-show_entries", "format=duration")["format"]["duration"])


def test_timeline_shows_recorded_ranges_gaps_and_incidents(
    client: TestClient, recording: Recording, writer: IncidentWriter
) -> None:
    first, second = recording.first, recording.second
    inside = _open(writer, T0 + 31.5)
    before = _open(writer, T0 - 3600)
    elsewhere = _open(writer, T0 + 31.5, camera_id="market")
    since_ts, until_ts = T0, second[-1].end_ts + 10

    got = client.get(
        f"/api/cameras/{CAMERA}/timeline", params={"since_ts": since_ts, "until_ts": until_ts}
    )
    assert got.status_code == 200, got.text
    body = got.json()
    ranges = [(r["start_ts"], r["end_ts"]) for r in body["ranges"]]
    assert ranges == [
        (pytest.approx(first[0].start_ts), pytest.approx(first[-1].end_ts)),
        (pytest.approx(second[0].start_ts), pytest.approx(second[-1].end_ts)),
    ]
    gaps = [(g["start_ts"], g["end_ts"]) for g in body["gaps"]]
    assert gaps == [
        (pytest.approx(since_ts), pytest.approx(first[0].start_ts)),  # first key frame
        (pytest.approx(first[-1].end_ts), pytest.approx(second[0].start_ts)),  # offline
        (pytest.approx(second[-1].end_ts), pytest.approx(until_ts)),
    ]
    assert body["segments"] == len(recording.segments)
    assert body["bytes"] == sum(s.bytes for s in recording.segments)
    assert body["recorded_s"] == pytest.approx(sum(b - a for a, b in ranges))
    ids = [i["id"] for i in body["incidents"]]
    assert inside.id in ids and before.id not in ids and elsewhere.id not in ids
    assert body["incidents"][ids.index(inside.id)] == {
        "id": inside.id,
        "type": "intrusion",
        "severity": "high",
        "start_ts": pytest.approx(T0 + 31.5),
        "end_ts": None,
    }

    # A window inside one range: clipped to the window, no gaps.
    part = client.get(
        f"/api/cameras/{CAMERA}/timeline", params={"since_ts": T0 + 10, "until_ts": T0 + 20}
    ).json()
    assert part["ranges"] == [{"start_ts": T0 + 10, "end_ts": T0 + 20}]
    assert part["gaps"] == [] and part["recorded_s"] == pytest.approx(10)


def test_footage_mp4_plays_has_the_window_and_serves_ranges(
    client: TestClient, recording: Recording, media_root: Path, tmp_path: Path
) -> None:
    since_ts, until_ts = T0 + 10, T0 + 40
    params = {"since_ts": since_ts, "until_ts": until_ts}
    url = f"/api/cameras/{CAMERA}/footage.mp4"
    got = client.get(url, params=params)
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "video/mp4"
    disposition = got.headers["content-disposition"]
    assert disposition.startswith("inline;")
    assert "gate-1_20231114T221330Z_20231114T221400Z.mp4" in disposition

    path = _save(tmp_path, "footage.mp4", got.content)
    assert decode_errors(path) == ""
    start_ts = max(k for k in recording.keyframes_ts if k <= since_ts)
    assert _duration_s(path) == pytest.approx(until_ts - start_ts, abs=0.25)
    assert until_ts - start_ts <= until_ts - since_ts + MAX_GOP_S

    ranged = client.get(url, params=params, headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206
    assert ranged.headers["content-range"] == f"bytes 0-99/{len(got.content)}"
    assert ranged.content == got.content[:100]
    # One cut serves every request for the same footage; download=true is an attachment.
    cached = sorted((media_root / "exports" / "clips").glob("*.mp4"))
    again = client.get(url, params={**params, "download": "true"})
    assert again.content == got.content
    assert again.headers["content-disposition"].startswith("attachment;")
    assert sorted((media_root / "exports" / "clips").glob("*.mp4")) == cached


def test_hls_playlist_lists_the_window_and_its_ts_segments_play(
    client: TestClient, recording: Recording, tmp_path: Path
) -> None:
    first, second = recording.first, recording.second
    since_ts, until_ts = first[-3].start_ts + 1, second[2].end_ts - 1
    got = client.get(
        f"/api/cameras/{CAMERA}/footage.m3u8", params={"since_ts": since_ts, "until_ts": until_ts}
    )
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    lines = got.text.splitlines()
    assert lines[:2] == ["#EXTM3U", "#EXT-X-VERSION:3"]
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in lines and lines[-1] == "#EXT-X-ENDLIST"

    expected = first[-3:] + second[:3]
    durations = [float(x.split(":")[1].rstrip(",")) for x in lines if x.startswith("#EXTINF:")]
    assert len(durations) == len(expected)
    assert sum(durations) == pytest.approx(sum(s.end_ts - s.start_ts for s in expected), abs=0.01)
    target = int(next(x for x in lines if x.startswith("#EXT-X-TARGETDURATION:")).split(":")[1])
    assert target == math.ceil(max(durations))
    assert sum(x.startswith("#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:") for x in lines) == 6
    # The camera was offline between the runs: exactly there, and only there.
    assert lines.count("#EXT-X-DISCONTINUITY") == 1
    gap_at = lines.index("#EXT-X-DISCONTINUITY")
    assert sum(x.startswith("#EXTINF:") for x in lines[:gap_at]) == 3

    uris = [x for x in lines if x and not x.startswith("#")]
    assert all(u.startswith("/api/recordings/segments/") and u.endswith(".ts") for u in uris)
    for n, (uri, duration_s) in enumerate(zip(uris, durations, strict=True)):
        ts = client.get(uri)
        assert ts.status_code == 200 and ts.headers["content-type"] == "video/mp2t"
        path = _save(tmp_path, f"{n}.ts", ts.content)
        fmt = ffprobe(path, "-show_entries", "format=format_name,duration")["format"]
        assert fmt["format_name"] == "mpegts"
        assert float(fmt["duration"]) == pytest.approx(duration_s, abs=0.15)
    assert decode_errors(tmp_path / "0.ts") == ""


def test_segment_mp4_is_served_as_recorded(
    client: TestClient, recording: Recording, media_root: Path
) -> None:
    timeline = client.get(
        f"/api/cameras/{CAMERA}/footage.m3u8", params={"since_ts": T0, "until_ts": T0 + 5}
    )
    segment_id = next(x for x in timeline.text.splitlines() if x.endswith(".ts")).split("/")[-1]
    url = f"/api/recordings/segments/{segment_id.removesuffix('.ts')}.mp4"
    got = client.get(url)
    assert got.status_code == 200 and got.headers["content-type"] == "video/mp4"
    on_disk = (media_root / "recordings" / recording.first[0].path).read_bytes()
    assert got.content == on_disk
    ranged = client.get(url, headers={"Range": "bytes=100-199"})
    assert ranged.status_code == 206 and ranged.content == on_disk[100:200]


def test_incident_clip_is_pre_event_post_and_cached(
    client: TestClient, recording: Recording, writer: IncidentWriter, tmp_path: Path
) -> None:
    incident = _open(writer, T0 + 30)  # clip from T0 + 25
    _close(writer, incident, T0 + 36, post_s=5.0)  # clip to T0 + 41
    url = f"/api/incidents/{incident.id}/clip.mp4"
    got = client.get(url)
    assert got.status_code == 200, got.text
    assert got.headers["cache-control"] == "private, max-age=3600"
    path = _save(tmp_path, "incident.mp4", got.content)
    assert decode_errors(path) == ""
    start_ts = max(k for k in recording.keyframes_ts if k <= T0 + 25)
    assert _duration_s(path) == pytest.approx(T0 + 41 - start_ts, abs=0.25)
    assert 16 <= _duration_s(path) <= 16 + MAX_GOP_S
    assert client.get(url).content == got.content  # served from the cache

    # A longer post-roll changes the window, and so the clip.
    _close(writer, incident, T0 + 36, post_s=10.0)
    longer = _save(tmp_path, "longer.mp4", client.get(url).content)
    assert _duration_s(longer) == pytest.approx(T0 + 46 - start_ts, abs=0.25)


def test_open_incident_clip_is_the_footage_so_far(
    client: TestClient, recording: Recording, writer: IncidentWriter, tmp_path: Path
) -> None:
    last = recording.second[-1]
    incident = _open(writer, last.start_ts - 1)  # clip from 6 s before the last segment
    got = client.get(f"/api/incidents/{incident.id}/clip.mp4")
    assert got.status_code == 200, got.text
    assert got.headers["cache-control"] == "no-store"
    path = _save(tmp_path, "open.mp4", got.content)
    assert decode_errors(path) == ""
    start_ts = max(k for k in recording.keyframes_ts if k <= last.start_ts - 6)
    assert _duration_s(path) == pytest.approx(last.end_ts - start_ts, abs=0.25)


def test_incident_clip_refusals(client: TestClient, writer: IncidentWriter) -> None:
    unknown = client.get("/api/incidents/ffff0000/clip.mp4")
    assert unknown.status_code == 404 and "'ffff0000' not found" in unknown.json()["detail"]

    gone = _open(writer, T0 - 7200)
    _close(writer, gone, T0 - 7190, post_s=5.0)
    missing = client.get(f"/api/incidents/{gone.id}/clip.mp4")
    assert missing.status_code == 404
    assert "not recorded or already deleted" in missing.json()["detail"]

    # Closed a moment ago: its post-roll is still being recorded.
    now = time.time()
    recent = _open(writer, now - 10)
    _close(writer, recent, now, post_s=30.0)
    early = client.get(f"/api/incidents/{recent.id}/clip.mp4")
    assert early.status_code == 425
    assert 25 <= int(early.headers["retry-after"]) <= 31
    assert "post-roll" in early.json()["detail"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"since_ts": T0 + 20, "until_ts": T0 + 10}, "until_ts must be later than since_ts"),
        ({"since_ts": T0, "until_ts": T0 + 90_000}, "at most 86400 s"),
        ({"until_ts": T0 + 10}, "since_ts"),
        ({"since_ts": T0, "until_ts": "nan"}, "until_ts"),
    ],
)
@pytest.mark.parametrize("route", ["footage.mp4", "footage.m3u8"])
def test_bad_windows_are_422_naming_the_parameter(
    client: TestClient, route: str, params: dict[str, float | str], expected: str
) -> None:
    got = client.get(f"/api/cameras/{CAMERA}/{route}", params=params)
    assert got.status_code == 422
    assert expected in str(got.json()["detail"])


def test_missing_footage_and_segments_are_404(client: TestClient, recording: Recording) -> None:
    window = {"since_ts": T0 - 500, "until_ts": T0 - 400}
    for route in ("footage.mp4", "footage.m3u8"):
        got = client.get(f"/api/cameras/{CAMERA}/{route}", params=window)
        assert got.status_code == 404
        assert "no footage of camera 'gate-1' recorded between" in got.json()["detail"]
    for suffix in ("ts", "mp4"):
        got = client.get(f"/api/recordings/segments/999999.{suffix}")
        assert got.status_code == 404 and got.json()["detail"] == "segment 999999 not found"
    assert client.get("/api/recordings/segments/abc.ts").status_code == 422


def test_segment_paths_outside_the_root_are_refused(
    client: TestClient, engine: Engine, recording: Recording
) -> None:
    with Session(engine) as session, session.begin():
        rows = [
            SegmentRow(
                camera_id="evil", path=path, start_ts=T0 + n * 10, end_ts=T0 + n * 10 + 9, bytes=9
            )
            for n, path in enumerate(["../../etc/passwd", "/etc/passwd"])
        ]
        session.add_all(rows)
        session.flush()
        ids = [r.id for r in rows]
    for segment_id in ids:
        for suffix in ("mp4", "ts"):
            got = client.get(f"/api/recordings/segments/{segment_id}.{suffix}")
            assert got.status_code == 404
            assert got.json()["detail"] == f"segment {segment_id} is missing on disk"
    window = {"since_ts": T0, "until_ts": T0 + 30}
    for route in ("footage.mp4", "footage.m3u8"):
        got = client.get(f"/api/cameras/evil/{route}", params=window)
        assert got.status_code == 404 and "no footage of camera 'evil'" in got.json()["detail"]


def test_footage_indexed_but_not_on_this_node_names_where_it_should_be(
    client: TestClient, engine: Engine, media_root: Path
) -> None:
    """A worker whose recordings folder is not shared with the API (docs/deployment.md):
    the index knows the segment, this node has no file. The answer says where it was
    expected and what to do, instead of "not recorded"."""
    path = "remote-cam/2026-01-01/00/00-00-00.000.mp4"
    with Session(engine) as session, session.begin():
        row = SegmentRow(camera_id="remote-cam", path=path, start_ts=T0, end_ts=T0 + 10, bytes=9)
        session.add(row)
        session.flush()
        segment_id = row.id
    got = client.get(
        "/api/cameras/remote-cam/footage.mp4", params={"since_ts": T0, "until_ts": T0 + 5}
    )
    assert got.status_code == 404
    detail = got.json()["detail"]
    assert path in detail and str((media_root / "recordings").resolve()) in detail
    assert "docs/deployment.md" in detail
    got = client.get(f"/api/recordings/segments/{segment_id}.mp4")
    assert got.status_code == 404 and path in got.json()["detail"]
