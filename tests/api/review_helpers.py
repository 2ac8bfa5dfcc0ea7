"""The API on real SQLite and a real Valkey with one logged-in user per role, and
incidents written by the real single writer: shared by the review, feedback and
config-audit API tests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import ApiSettings, create_app
from api.auth import Role
from core.bus import EventBus
from core.storage.db import make_engine
from core.storage.migrate import upgrade
from core.storage.writer import IncidentWriter
from core.types import Incident, IncidentOpened, new_incident_id
from tests.auth_helpers import role_headers

CAMERA = {
    "id": "gate-1",
    "url": "rtsp://admin:s3cr3t-pa55@10.0.0.7:554/Streaming/Channels/102",
    "zones": [
        {"name": "yard", "points": [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]},
        {"name": "road", "points": [[0.0, 0.5], [1.0, 0.5], [1.0, 1.0]]},
    ],
    "rules": [
        {"type": "intrusion", "name": "yard-people", "zone": "yard"},
        {"type": "intrusion", "name": "road-people", "zone": "road", "min_confidence": 0.5},
        {"type": "tamper", "name": "lens"},
    ],
}


@dataclass
class ReviewEnv:
    engine: Engine
    client: TestClient
    writer: IncidentWriter
    headers: dict[Role, dict[str, str]]

    def incident(
        self,
        camera_id: str = "gate-1",
        rule: str = "yard-people",
        zone: str | None = "yard",
        peak: float = 0.8,
        start_ts: float | None = None,
        type_: str = "intrusion",
    ) -> Incident:
        """A new incident through the single writer (row, then alert), as the pipeline would."""
        start = time.time() if start_ts is None else start_ts
        inc = Incident(
            id=new_incident_id(start),
            camera_id=camera_id,
            rule=rule,
            type=type_,
            severity="high",
            labels=["person"],
            track_ids=[3],
            zone=zone,
            start_ts=start,
            end_ts=None,
            peak_score=peak,
            clip_start_ts=start - 5,
            clip_end_ts=None,
        )
        self.writer.handle(IncidentOpened(inc, b""))
        return inc


@contextmanager
def review_env(
    folder: Path, valkey_url: str, database_url: str | None = None
) -> Iterator[ReviewEnv]:
    engine = make_engine(database_url or f"sqlite:///{folder / 'db.sqlite'}")
    upgrade(engine)
    bus = EventBus(valkey_url)
    settings = ApiSettings(
        database_url=str(engine.url), redis_url=valkey_url, media_root=folder / "media"
    )
    try:
        with TestClient(create_app(settings)) as client:
            yield ReviewEnv(
                engine,
                client,
                IncidentWriter(engine, folder / "media", bus),
                role_headers(engine, client),
            )
    finally:
        bus.close()
        engine.dispose()
