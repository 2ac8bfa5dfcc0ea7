"""What-if replay through the API, on real parts: footage recorded by the real recorder
from the campus clip and indexed in a real SQLite, the real replay runner of the
composition root (OpenVINO detector, ByteTrack, rules) injected into the real app,
jobs run on the API's worker thread.

Candidate and live config differ in one threshold (how long a person must be inside
the walkway), so the difference is the rules alone: the candidate's incidents are a
subset of the live config's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import ApiSettings, create_app
from api.auth import Role
from commune_vision.replay_runner import RecordedReplay
from core.config import AppConfig, CameraConfig
from core.storage.config_store import ConfigStore
from core.storage.db import make_engine
from core.storage.migrate import upgrade
from core.storage.segments import SegmentIndex
from tests.auth_helpers import TEST_PASSWORD, auth_headers, create_user, sign_in
from tests.conftest import VideoFinder
from tests.recording_helpers import record_clip

T0 = 1_795_000_000.0  # wall time of the clip's first frame in the recordings
JOB_TIMEOUT_S = 180.0  # 30 s of footage takes a few seconds; a loaded box far more
WALKWAY = [[0.0, 0.36], [0.6, 0.34], [1.0, 0.40], [1.0, 0.85], [0.7, 0.68], [0.0, 0.50]]


def campus(min_inside_s: float = 0.5) -> CameraConfig:
    return CameraConfig.model_validate(
        {
            "id": "campus",
            "url": "rtsp://user:pw@10.0.0.9/stream",
            "detect": {"fps": 5},
            "zones": [{"name": "walkway", "points": WALKWAY}],
            "rules": [
                {
                    "type": "intrusion",
                    "name": "walkway-people",
                    "zone": "walkway",
                    "min_inside_s": min_inside_s,
                }
            ],
        }
    )


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, video: VideoFinder) -> Path:
    """A data folder with the campus clip recorded as 10 s segments from T0 (once: the
    tests only read it)."""
    data = tmp_path_factory.mktemp("replay-api")
    engine = make_engine(f"sqlite:///{data / 'commune-vision.db'}")
    upgrade(engine)
    segments = record_clip(
        video("pets2009_vtest_480x360.mp4"), data / "recordings", "campus", T0, 10.0
    )
    index = SegmentIndex(engine)
    for segment in segments:
        index.add(segment)
    ConfigStore(engine).save([campus()], "test", "seed")
    create_user(engine, "chief", TEST_PASSWORD, Role.ADMIN)
    engine.dispose()
    assert len(segments) >= 5, segments  # 80 s of clip, cut on its key frames
    return data


@pytest.fixture()
def engine(recorded: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{recorded / 'commune-vision.db'}")
    yield engine
    engine.dispose()


def make_app(data: Path, valkey_url: str, with_runner: bool = True) -> FastAPI:
    config = AppConfig.model_validate({"storage": {"data_dir": str(data)}})
    return create_app(
        ApiSettings(
            database_url=config.storage.resolved_database_url,
            redis_url=valkey_url,
            media_root=data,
        ),
        RecordedReplay(config) if with_runner else None,
    )


@pytest.fixture()
def client(recorded: Path, valkey_url: str) -> Iterator[TestClient]:
    with TestClient(make_app(recorded, valkey_url)) as client:
        client.headers.update(auth_headers(client, "chief", TEST_PASSWORD))
        yield client


def wait_done(client: TestClient, job_id: str, timeout_s: float = JOB_TIMEOUT_S) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    seen: set[str] = set()
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/api/replays/{job_id}").json()
        seen.add(job["status"])
        if job["status"] in ("done", "failed", "cancelled"):
            job["seen"] = seen
            return job
        time.sleep(0.2)
    raise AssertionError(f"replay {job_id} not finished after {timeout_s} s (seen {seen})")


def body(since_s: float, until_s: float, **candidate: Any) -> dict[str, Any]:
    return {
        "camera_id": "campus",
        "since_ts": T0 + since_s,
        "until_ts": T0 + until_s,
        "candidate": candidate,
    }


def test_replay_compares_candidate_with_the_live_config(client: TestClient) -> None:
    stricter = campus(min_inside_s=8.0).model_dump(mode="json")["rules"]
    started = client.post("/api/replays", json=body(0, 30, rules=stricter))
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["status"] in ("queued", "running") and job["requested_by"] == "user:chief"
    assert job["result"] is None

    done = wait_done(client, job["id"])
    assert done["status"] == "done", done["error"]
    assert done["progress"] == 1.0 and done["error"] is None
    result = done["result"]
    # The footage: recorded segments from T0, cut on key frames around the window.
    assert T0 - 10 <= result["footage_start_ts"] <= T0 + 0.5
    assert T0 + 29 <= result["footage_end_ts"] <= T0 + 41
    assert result["segments"] >= 2  # segments end on the clip's key frames (~16 s)
    assert result["frames_decoded"] >= 140 and result["frames_detected"] > 0
    current, candidate = result["current"], result["candidate"]
    # 8 s inside instead of 0.5 s: fewer incidents, all of them among the live ones.
    n_current = current["by_rule"]["walkway-people"]
    n_candidate = candidate["by_rule"].get("walkway-people", 0)
    assert 0 < n_candidate < n_current, (n_candidate, n_current)
    assert current["by_type"] == {"intrusion": n_current}
    assert result["only_candidate"] == 0 and result["both"] == n_candidate
    assert result["only_current"] == n_current - n_candidate
    assert {i["match"] for i in candidate["incidents"]} == {"both"}
    assert (
        sum(i["match"] == "only_current" for i in current["incidents"]) == (result["only_current"])
    )
    # Wall-clock times inside the footage: the console links each to footage.mp4 there.
    for incident in current["incidents"] + candidate["incidents"]:
        assert result["footage_start_ts"] <= incident["start_ts"] <= result["footage_end_ts"]
        assert incident["zone"] == "walkway" and incident["labels"] == ["person"]

    listed = client.get("/api/replays").json()
    assert listed[0]["id"] == job["id"] and listed[0]["status"] == "done"
    assert listed[0]["result"] is None  # the list stays small; GET one for the result


def test_one_replay_at_a_time_and_a_running_one_can_be_cancelled(client: TestClient) -> None:
    first = client.post("/api/replays", json=body(0, 70))
    assert first.status_code == 202, first.text
    first_id = first.json()["id"]
    busy = client.post("/api/replays", json=body(0, 10))
    assert busy.status_code == 409
    assert (
        first_id in busy.json()["detail"] and "one replay runs at a time" in busy.json()["detail"]
    )

    cancelled = client.delete(f"/api/replays/{first_id}")
    assert cancelled.status_code == 200
    stopped = wait_done(client, first_id)
    assert stopped["status"] == "cancelled" and stopped["result"] is None
    assert "cancelled" in stopped["error"] and stopped["progress"] < 1.0

    # The slot is free again; a finished job stays as it was when "cancelled" again.
    second = client.post("/api/replays", json=body(0, 10))
    assert second.status_code == 202, second.text
    assert wait_done(client, second.json()["id"])["status"] == "done"
    again = client.delete(f"/api/replays/{second.json()['id']}")
    assert again.status_code == 200 and again.json()["status"] == "done"
    assert client.get("/api/replays/nope").status_code == 404
    assert client.delete("/api/replays/nope").status_code == 404


def _field_error(response: Any) -> tuple[list[Any], str]:
    assert response.status_code == 422, response.text
    first = response.json()["detail"][0]
    return first["loc"], first["msg"]


def test_requests_are_checked_before_a_job_starts(client: TestClient) -> None:
    loc, msg = _field_error(client.post("/api/replays", json=body(30, 10)))
    assert loc == ["body", "until_ts"] and "later than since_ts" in msg
    loc, msg = _field_error(client.post("/api/replays", json=body(0, 7200)))
    assert loc == ["body", "until_ts"] and "at most 60 minutes" in msg
    loc, msg = _field_error(client.post("/api/replays", json=body(-86400, -86300)))
    assert loc == ["body", "since_ts"] and "nothing of camera 'campus' is recorded" in msg
    loc, msg = _field_error(
        client.post(
            "/api/replays",
            json=body(0, 10, filters={"person": {"min_confidence": 2}}),
        )
    )
    assert loc == ["body", "candidate", "filters", "person", "min_confidence"]
    # A rule naming a zone the candidate does not have: checked on the whole camera.
    dangling = [{"type": "intrusion", "name": "yard", "zone": "yard"}]
    loc, msg = _field_error(client.post("/api/replays", json=body(0, 10, rules=dangling)))
    assert loc[:2] == ["body", "candidate"] and "yard" in msg
    loc, _ = _field_error(client.post("/api/replays", json=body(0, 10, url="rtsp://x")))
    assert loc == ["body", "candidate", "url"]  # stream settings are not a candidate's
    unknown = client.post("/api/replays", json={**body(0, 10), "camera_id": "nope"})
    assert unknown.status_code == 404 and "not configured" in unknown.json()["detail"]
    assert client.get("/api/replays").json() == []  # none of these made a job


def test_replay_fails_with_a_message_when_the_footage_vanished(
    recorded: Path, valkey_url: str, engine: Engine
) -> None:
    """The index still lists a segment whose file retention (or a person) deleted."""
    with TestClient(make_app(recorded, valkey_url)) as client:
        sign_in(engine, client, Role.ADMIN, "vanished-admin")
        segment = SegmentIndex(engine).overlapping("campus", T0 + 75, T0 + 79)[-1]
        path = recorded / "recordings" / segment.path
        saved = path.read_bytes()
        path.unlink()
        try:
            job = client.post("/api/replays", json=body(75, 79))
            assert job.status_code == 202, job.text
            failed = wait_done(client, job.json()["id"])
        finally:
            path.write_bytes(saved)
    assert failed["status"] == "failed" and failed["result"] is None
    assert "retention may have deleted it" in failed["error"], failed


def test_roles_and_an_api_without_a_runner(recorded: Path, valkey_url: str, engine: Engine) -> None:
    with TestClient(make_app(recorded, valkey_url, with_runner=False)) as client:
        police = sign_in(engine, client, Role.POLICE, "replay-police")
        assert client.post("/api/replays", json=body(0, 10), headers=police).status_code == 403
        assert client.get("/api/replays", headers=police).status_code == 403
        admin = auth_headers(client, "chief", TEST_PASSWORD)
        unavailable = client.post("/api/replays", json=body(0, 10), headers=admin)
        assert unavailable.status_code == 503
        assert "commune-vision run" in unavailable.json()["detail"]
