"""`commune-vision evidence verify`, run as the installed command on real packages."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from core.evidence import build_package, load_or_create_key
from tests.conftest import VideoFinder

INCIDENT_ID = "0192a3b4c5d6e7f8a9b0c1d2"
CLIP = f"clips/{INCIDENT_ID}.mp4"
COMMAND = Path(sys.executable).with_name("commune-vision")


def _verify(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(COMMAND), "evidence", "verify", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture()
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "media" / "evidence.key"
    load_or_create_key(path)
    return path


@pytest.fixture()
def package(tmp_path: Path, key_file: Path, video: VideoFinder) -> Path:
    out = tmp_path / "incident-evidence.zip"
    build_package(
        out,
        {"id": INCIDENT_ID, "camera_id": "street-1", "type": "parking"},
        {CLIP: video("street_parking_ipcam_day.mp4")},
        [{"ts": 1_700_000_000.0, "action": "created"}],
        key_file.read_bytes(),
    )
    return out


def _with_one_byte_changed(package: Path, member: str, dst: Path) -> Path:
    with zipfile.ZipFile(package) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = bytearray(zin.read(info))
            if info.filename == member:
                data[len(data) // 2] ^= 0x01
            zout.writestr(info, bytes(data))
    return dst


def test_intact_package_exits_0(package: Path, key_file: Path) -> None:
    assert COMMAND.is_file(), f"{COMMAND} is not installed (pip install -e .)"
    done = _verify(package, "--key-file", key_file)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{package}: OK (3 files, incident {INCIDENT_ID})" in done.stdout
    assert "note: signature valid (HMAC-SHA256)" in done.stdout
    # Without the key the hashes are still checked, and the output says what was not.
    no_key = _verify(package)
    assert no_key.returncode == 0 and "was not checked" in no_key.stdout


def test_one_changed_byte_exits_1_naming_the_file(
    package: Path, key_file: Path, tmp_path: Path
) -> None:
    tampered = _with_one_byte_changed(package, CLIP, tmp_path / "tampered.zip")
    done = _verify(tampered, "--key-file", key_file)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"CHANGED {CLIP}: content changed (SHA-256 does not match)" in done.stdout
    assert "NOT INTACT (1 problem(s))" in done.stdout


def test_wrong_key_exits_1(package: Path, tmp_path: Path) -> None:
    other_key = tmp_path / "other.key"
    load_or_create_key(other_key)
    done = _verify(package, "--key-file", other_key)
    assert done.returncode == 1 and "CHANGED manifest.sig: signature does not match" in done.stdout


def test_unreadable_file_or_key_exits_2(package: Path, tmp_path: Path) -> None:
    not_zip = tmp_path / "notes.zip"
    not_zip.write_text("not a zip\n")
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(package.read_bytes()[:1000])
    for path in (not_zip, truncated, tmp_path / "absent.zip"):
        done = _verify(path)
        assert done.returncode == 2, (path, done.stdout, done.stderr)
        assert "not a readable zip" in done.stderr
    bad_key = _verify(package, "--key-file", not_zip)
    assert bad_key.returncode == 2 and "is not an evidence key" in bad_key.stderr
