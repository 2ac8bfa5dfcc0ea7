"""Versioned live camera configuration in the database.

Rules for which wins, so neither the file nor the API silently loses an edit:
- the newest version is what runs;
- a YAML file becomes a new version only when its content changed since it
  was last imported (an unchanged file does not undo API edits).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.config import CameraConfig, format_loc
from core.errors import ConfigError
from core.storage.audit import ChangesFor, record
from core.storage.models import CameraConfigVersion

_CAMERAS = TypeAdapter(list[CameraConfig])


@dataclass(frozen=True, slots=True)
class CamerasVersion:
    id: int
    created_ts: float
    author: str
    comment: str
    cameras: list[CameraConfig]


def validate_cameras(data: object, source: str = "cameras") -> list[CameraConfig]:
    """Validate a list of camera dicts; errors carry key paths like the YAML check."""
    try:
        cameras = _CAMERAS.validate_python(data)
    except ValidationError as exc:
        errors = [
            f"cameras{format_loc(tuple(e['loc']))}: {str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors()
        ]
        raise ConfigError(source, errors) from exc
    ids = [c.id for c in cameras]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ConfigError(
            source, [f"cameras: camera ids must be unique; repeated: {', '.join(repeated)}"]
        )
    return cameras


def _dump(cameras: Sequence[CameraConfig]) -> list[dict[str, object]]:
    return [c.model_dump(mode="json") for c in cameras]


def file_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class ConfigStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def latest(self) -> CamerasVersion | None:
        with Session(self._engine) as session:
            row = session.scalars(
                select(CameraConfigVersion).order_by(CameraConfigVersion.id.desc()).limit(1)
            ).first()
            return self._to_version(row) if row is not None else None

    def get(self, version_id: int) -> CamerasVersion | None:
        with Session(self._engine) as session:
            row = session.get(CameraConfigVersion, version_id)
            return self._to_version(row) if row is not None else None

    def history(self, limit: int = 50) -> list[CamerasVersion]:
        with Session(self._engine) as session:
            rows = session.scalars(
                select(CameraConfigVersion).order_by(CameraConfigVersion.id.desc()).limit(limit)
            )
            return [self._to_version(r) for r in rows]

    def save(
        self,
        cameras: Sequence[CameraConfig],
        author: str,
        comment: str,
        source_hash: str | None = None,
        audit: ChangesFor | None = None,
    ) -> int:
        """Store a new version; ``audit`` (given the new id) says what to record in the
        audit log, in the same transaction, so no version exists without its record."""
        now = time.time()
        row = CameraConfigVersion(
            created_ts=now,
            author=author,
            comment=comment,
            source_hash=source_hash,
            cameras=_dump(cameras),
        )
        with Session(self._engine) as session, session.begin():
            session.add(row)
            session.flush()
            for change in audit(int(row.id)) if audit is not None else ():
                record(session, change, now)
            return int(row.id)

    def sync_from_file(self, cameras: Sequence[CameraConfig], text: str, path: str) -> int | None:
        """Import the file's cameras as a new version if the file changed; returns the id."""
        digest = file_hash(text)
        with Session(self._engine) as session:
            last_import = session.scalars(
                select(CameraConfigVersion.source_hash)
                .where(CameraConfigVersion.source_hash.is_not(None))
                .order_by(CameraConfigVersion.id.desc())
                .limit(1)
            ).first()
        latest = self.latest()
        if last_import == digest and latest is not None:
            return None
        if latest is not None and latest.cameras == list(cameras):
            return None
        return self.save(
            cameras, author=f"file:{path}", comment="imported from file", source_hash=digest
        )

    @staticmethod
    def _to_version(row: CameraConfigVersion) -> CamerasVersion:
        return CamerasVersion(
            id=row.id,
            created_ts=row.created_ts,
            author=row.author,
            comment=row.comment,
            cameras=validate_cameras(row.cameras, source=f"config version {row.id}"),
        )
