"""Hostile input against the real app: path traversal on every route that serves a
file, injection in every incident search filter (SQLite and PostgreSQL), and
oversized or malformed bodies.

Files are planted outside the served folders (a canary beside the media root, and
rows in the index pointing at it): a route that serves one has been escaped.
Traversal requests go over a raw socket to uvicorn, so no client library tidies
``../`` away before the server sees it.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from api.app import ApiSettings, create_app
from api.auth import Role
from core.bus import EventBus
from core.storage.db import make_engine
from core.storage.migrate import upgrade
from core.storage.segments import SegmentIndex
from core.storage.writer import IncidentWriter
from core.types import Incident, IncidentOpened, SegmentClosed, new_incident_id
from tests.auth_helpers import TEST_PASSWORD, auth_headers, create_user
from tests.live_api import serving

CANARY = "canary-5f2b9c: this file lies outside every folder the API serves"
JPEG = b"\xff\xd8\xff\xe0" + b"snapshot" * 16 + b"\xff\xd9"

# Each way of writing "two folders up, then a file": plain, percent-encoded dots and
# slashes, double encoding, backslashes, overlong UTF-8, and absolute paths.
TRAVERSALS = (
    "../../canary.txt",
    "..%2f..%2fcanary.txt",
    "%2e%2e/%2e%2e/canary.txt",
    "%2e%2e%2f%2e%2e%2fcanary.txt",
    "..%252f..%252fcanary.txt",
    "....//....//canary.txt",
    "..\\..\\canary.txt",
    "..%5c..%5ccanary.txt",
    "..%c0%af..%c0%afcanary.txt",
    "%2fetc%2fpasswd",
    "/etc/passwd",
    "../../../../../../etc/passwd",
    "%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
)
# Every route that answers with a file or a stream; {x} takes the payload.
MEDIA_ROUTES = (
    "/api/incidents/{x}/snapshot",
    "/api/incidents/{x}/clip.mp4",
    "/api/incidents/{x}/evidence.zip",
    "/api/cameras/{x}/footage.mp4?since_ts=1000&until_ts=1010",
    "/api/cameras/{x}/footage.m3u8?since_ts=1000&until_ts=1010",
    "/api/cameras/{x}/snapshot.jpg",
    "/api/cameras/{x}/live.mjpeg",
    "/api/recordings/segments/{x}.ts",
    "/api/recordings/segments/{x}.mp4",
    "/console/{x}",
    "/console/pages/{x}",
)


@dataclass
class Env:
    base_url: str
    headers: dict[str, str]
    folder: Path
    incident_id: str
    escaping_incident_id: str
    escaping_segment_id: int


def _incident(start: float) -> Incident:
    return Incident(
        id=new_incident_id(start),
        camera_id="gate-1",
        rule="yard-people",
        type="intrusion",
        severity="high",
        labels=["person"],
        track_ids=[1],
        zone="yard",
        start_ts=start,
        end_ts=None,
        peak_score=0.9,
        clip_start_ts=start - 5,
        clip_end_ts=None,
    )


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, valkey_url: str) -> Iterator[Env]:
    folder = tmp_path_factory.mktemp("traversal")
    (folder / "canary.txt").write_text(CANARY)
    media = folder / "media"
    engine = make_engine(f"sqlite:///{folder / 'db.sqlite'}")
    upgrade(engine)
    bus = EventBus(valkey_url)
    writer = IncidentWriter(engine, media, bus)
    good, bad = _incident(time.time() - 60), _incident(time.time() - 30)
    writer.handle(IncidentOpened(good, JPEG))
    writer.handle(IncidentOpened(bad, JPEG))
    bus.close()
    # A tampered index: rows whose paths leave their roots must never be served.
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE incidents SET snapshot_path = :p WHERE id = :id"),
            {"p": "../canary.txt", "id": bad.id},
        )
    segments = SegmentIndex(engine)
    segments.add(SegmentClosed("gate-1", "../../canary.txt", bad.start_ts - 5, bad.start_ts, 70))
    (segment,) = segments.overlapping("gate-1", bad.start_ts - 5, bad.start_ts)
    create_user(engine, "sec-admin", TEST_PASSWORD, Role.ADMIN)
    settings = ApiSettings(database_url=str(engine.url), redis_url=valkey_url, media_root=media)
    try:
        with serving(create_app(settings)) as base_url:
            headers = auth_headers(base_url, "sec-admin", TEST_PASSWORD)
            yield Env(base_url, headers, folder, good.id, bad.id, segment.id)
    finally:
        engine.dispose()


def _raw_get(env: Env, path: str) -> tuple[int, bytes]:
    """GET ``path`` byte for byte as written (http.client neither normalizes nor
    re-encodes it); streams (MJPEG) are cut after their first 64 KiB."""
    host, port = env.base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        for name, value in env.headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read(65536)
    finally:
        conn.close()


def test_tampered_index_rows_are_not_served(env: Env) -> None:
    # The sanity half: the same route serves a file that is where it should be.
    status, body = _raw_get(env, f"/api/incidents/{env.incident_id}/snapshot")
    assert status == 200 and body == JPEG
    status, body = _raw_get(env, f"/api/incidents/{env.escaping_incident_id}/snapshot")
    assert status == 404 and CANARY.encode() not in body
    for suffix in ("ts", "mp4"):
        status, body = _raw_get(env, f"/api/recordings/segments/{env.escaping_segment_id}.{suffix}")
        assert status == 404 and CANARY.encode() not in body, (suffix, body[:200])
    status, body = _raw_get(env, f"/api/incidents/{env.escaping_incident_id}/evidence.zip")
    assert status == 200 and CANARY.encode() not in body  # packaged without the snapshot


def test_traversal_payloads_never_escape_any_media_route(env: Env) -> None:
    assert _raw_get(env, "/console/app.js")[0] == 200  # the console route does serve files
    wrong: list[str] = []
    calls = 0
    for route in MEDIA_ROUTES:
        for payload in TRAVERSALS:
            path = route.replace("{x}", payload.replace("\\", "%5c"))
            status, body = _raw_get(env, path)
            calls += 1
            leaked = CANARY.encode() in body or b"root:x:0:0" in body
            if leaked or status not in (400, 404, 422):
                wrong.append(f"{path}: {status} {body[:120]!r}")
    assert calls == len(MEDIA_ROUTES) * len(TRAVERSALS)
    assert not wrong, f"{len(wrong)} of {calls} traversal requests:\n" + "\n".join(wrong)


# -- injection in the incident search ---------------------------------------------

NOTES = {0: "Giảm 50% tốc độ", 1: "plate 59-X1 under_score", 2: "O'Brien said no"}
INJECTIONS = (
    "' OR '1'='1",
    "x' OR 1=1 --",
    '" OR ""="',
    "'; DROP TABLE incidents; --",
    "gate-1' UNION SELECT * FROM users --",
    "%",
    "_",
    "\\",
    "*",
    "'",
    "Đã liên hệ công an xã",
    "\u202egnp.exe",
    "😀🚓",
    "𝕏" * 64,
    "a" * 5000,
)
TEXT_FILTERS = ("camera_id", "type", "label", "zone", "assignee", "q", "status", "sort")
OTHER_FILTERS = ("cursor", "min_score", "since_ts", "until_ts", "evidence_locked", "limit")


@dataclass
class Search:
    client: httpx.Client  # signed in as a viewer
    ids: list[str]  # ids[i] carries NOTES[i]


@pytest.fixture()
def search(db_url: str, tmp_path: Path, valkey_url: str) -> Iterator[Search]:
    """Three incidents with notes, on SQLite and on PostgreSQL."""
    engine = make_engine(db_url)
    upgrade(engine)
    bus = EventBus(valkey_url)
    writer = IncidentWriter(engine, tmp_path / "media", bus)
    ids = []
    for i in range(3):
        incident = _incident(1_790_000_000.0 + i)
        writer.handle(IncidentOpened(incident, b""))
        ids.append(incident.id)
    bus.close()
    create_user(engine, "searcher", TEST_PASSWORD, Role.VIEWER)
    settings = ApiSettings(
        database_url=str(engine.url), redis_url=valkey_url, media_root=tmp_path / "media"
    )
    try:
        with serving(create_app(settings)) as base_url:
            viewer = auth_headers(base_url, "searcher", TEST_PASSWORD)
            create_user(engine, "noter", TEST_PASSWORD, Role.POLICE)
            police = auth_headers(base_url, "noter", TEST_PASSWORD)
            with httpx.Client(base_url=base_url, timeout=30) as client:
                for i, note in NOTES.items():
                    path = f"/api/incidents/{ids[i]}/notes"
                    r = client.post(path, json={"text": note}, headers=police)
                    assert r.status_code == 201, r.text
                client.headers.update(viewer)
                yield Search(client, ids)
    finally:
        engine.dispose()


def test_injection_in_every_search_filter_is_4xx_or_an_honest_empty_page(search: Search) -> None:
    client = search.client
    assert len(client.get("/api/incidents").json()["items"]) == 3
    wrong: list[str] = []
    for name in TEXT_FILTERS + OTHER_FILTERS:
        for payload in INJECTIONS:
            r = client.get("/api/incidents", params={name: payload})
            if r.status_code == 422:
                continue
            items = r.json().get("items") if r.status_code == 200 else None
            # No incident has a camera, label, assignee … named like a payload, and
            # only notes holding it literally may match ``q``.
            want = [] if name != "q" else _literal_note_matches(payload, search.ids)
            got = None if items is None else sorted(i["id"] for i in items)
            if r.status_code != 200 or got != want:
                wrong.append(f"{name}={payload[:40]!r}: {r.status_code} {got} (want {want})")
    assert not wrong, "\n".join(wrong)


def _literal_note_matches(payload: str, ids: list[str]) -> list[str]:
    folded = payload.casefold()
    return sorted(ids[i] for i, note in NOTES.items() if folded in note.casefold())


def test_sql_wildcards_in_q_are_literal(search: Search) -> None:
    client = search.client
    for q, count in (("%", 1), ("_", 1), ("50%", 1), ("'", 1), ("o'brien", 1), ("%%", 0)):
        r = client.get("/api/incidents", params={"q": q})
        assert r.status_code == 200 and len(r.json()["items"]) == count, (q, r.text)


def test_nul_in_a_filter_or_id_is_a_422_naming_it(search: Search) -> None:
    client = search.client
    for name in TEXT_FILTERS:
        r = client.get("/api/incidents", params={name: "gate\x001"})
        assert r.status_code == 422, (name, r.text)
        assert r.json()["detail"][0]["loc"] == ["query", name]
    r = client.get("/api/incidents/abc%00def")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path"]


# -- oversized and malformed bodies -------------------------------------------------

BODY_ROUTES = (
    "/api/users",
    "/api/users/api-keys",
    "/api/webhooks",
    "/api/cameras",
    "/api/cameras/test",
    "/api/auth/login",
)


def _post(
    env: Env, path: str, body: bytes, content_type: str = "application/json"
) -> httpx.Response:
    headers = {**env.headers, "Content-Type": content_type}
    return httpx.post(f"{env.base_url}{path}", content=body, headers=headers, timeout=60)


def test_oversized_bodies_are_413_before_being_read(env: Env) -> None:
    huge = json.dumps({"name": "x" * (2 * 1024 * 1024)}).encode()
    for path in BODY_ROUTES:
        r = _post(env, path, huge)
        assert r.status_code == 413 and "1024 KiB" in r.json()["detail"], (path, r.text[:200])

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"name": "'
        for _ in range(40):
            yield b"y" * 65536
        yield b'"}'

    r = httpx.post(
        f"{env.base_url}/api/users/api-keys",
        content=chunks(),
        headers={**env.headers, "Content-Type": "application/json"},
        timeout=60,
    )
    assert r.status_code == 413, r.text[:200]


def test_malformed_bodies_are_4xx_naming_the_problem(env: Env) -> None:
    cases: list[tuple[bytes, str, int, str]] = [
        (b'{"name": "\xff\xfe"}', "application/json", 400, "UTF-8"),
        (b"[" * 50_000 + b"]" * 50_000, "application/json", 400, "nested too deeply"),
        (b'{"name": ', "application/json", 422, "JSON decode error"),
        (b'{"name": "x"}', "text/plain", 422, "Content-Type: application/json"),
        (b"name=x", "application/x-www-form-urlencoded", 422, "Content-Type: application/json"),
    ]
    for path in BODY_ROUTES:
        for body, content_type, status, words in cases:
            r = _post(env, path, body, content_type)
            assert r.status_code == status and words in r.text, (path, body[:20], r.text[:300])


def test_wrong_types_name_each_field_and_never_echo_values(env: Env) -> None:
    secret = "do-not-echo-this-passphrase"
    bodies = {
        "/api/users": ({"username": 5, "password": secret, "role": "king"}, {"username", "role"}),
        "/api/users/api-keys": ({"name": ["x"], "role": 7}, {"name", "role"}),
        "/api/webhooks": ({"name": "n", "url": f"http://u:{secret}@h/", "secret": 1}, {"secret"}),
        "/api/cameras": ({"id": "cam", "url": f"rtsp://u:{secret}@h/", "detect": 3}, {"detect"}),
        "/api/cameras/test": (
            {"url": f"ftp://u:{secret}@h/", "timeout_s": "x"},
            {"url", "timeout_s"},
        ),
        "/api/auth/login": ({"password": secret}, {"username"}),
    }
    for path, (body, fields) in bodies.items():
        r = _post(env, path, json.dumps(body).encode())
        assert r.status_code == 422, (path, r.text)
        named = {str(e["loc"][1]) for e in r.json()["detail"] if len(e["loc"]) > 1}
        assert fields <= named, (path, named, r.text)
        assert secret not in r.text, (path, r.text)
