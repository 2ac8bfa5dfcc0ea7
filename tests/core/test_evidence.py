"""Evidence packages from real media: intact ones verify, every kind of tampering shows."""

from __future__ import annotations

import hashlib
import json
import stat
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import pytest

from core.evidence import (
    KEY_BYTES,
    MANIFEST_NAME,
    SIGNATURE_NAME,
    EvidenceKeyError,
    build_package,
    load_or_create_key,
    read_key,
    sign_manifest,
    verify_package,
)
from tests.conftest import VideoFinder

INCIDENT_ID = "0192a3b4c5d6e7f8a9b0c1d2"
CLIP = f"clips/{INCIDENT_ID}.mp4"
SNAPSHOT = f"snapshots/{INCIDENT_ID}.jpg"
KEY = bytes(range(KEY_BYTES))


def _incident() -> dict[str, Any]:
    return {
        "id": INCIDENT_ID,
        "camera_id": "street-1",
        "rule": "no-parking",
        "type": "parking",
        "start_ts": 1_700_000_000.0,
        "evidence_locked": True,
    }


def _snapshot_jpeg(clip: Path) -> bytes:
    """A real JPEG: the clip's first frame, encoded as the pipeline's snapshots are."""
    capture = cv2.VideoCapture(str(clip))
    ok, frame = capture.read()
    capture.release()
    assert ok
    ok, buf = cv2.imencode(".jpg", frame)
    assert ok
    return bytes(buf.tobytes())


@pytest.fixture()
def clip(video: VideoFinder) -> Path:
    return video("street_parking_ipcam_day.mp4")


def _build(tmp_path: Path, clip: Path, key: bytes | None = KEY) -> Path:
    out = tmp_path / "pkg" / "evidence.zip"
    build_package(
        out,
        _incident(),
        {CLIP: clip, SNAPSHOT: _snapshot_jpeg(clip)},
        [{"ts": 1_700_000_001.0, "action": "created"}],
        key,
    )
    return out


def _rewrite(
    src: Path,
    dst: Path,
    replace: Mapping[str, bytes] | None = None,
    drop: Sequence[str] = (),
    add: Mapping[str, bytes] | None = None,
) -> Path:
    """Copy a zip member by member, as someone editing a package would."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            if info.filename in drop:
                continue
            zout.writestr(info, (replace or {}).get(info.filename, zin.read(info)))
        for name, data in (add or {}).items():
            zout.writestr(name, data)
    return dst


def _flip_one_byte(data: bytes) -> bytes:
    changed = bytearray(data)
    changed[len(changed) // 2] ^= 0x01
    return bytes(changed)


def _member(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as zf:
        return zf.read(name)


def test_intact_package_verifies_and_lists_every_file(tmp_path: Path, clip: Path) -> None:
    out = tmp_path / "evidence.zip"
    snapshot = _snapshot_jpeg(clip)
    info = build_package(
        out,
        _incident(),
        {CLIP: clip, SNAPSHOT: snapshot},
        [{"ts": 1_700_000_001.0, "action": "created"}],
        KEY,
        notes=["test note"],
        created_ts=1_700_000_100.0,
    )
    assert info.signed and info.bytes == out.stat().st_size
    assert info.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    assert [p.name for p in tmp_path.iterdir()] == ["evidence.zip"]  # no temp file left

    manifest = json.loads(_member(out, MANIFEST_NAME))
    listed = {f["name"]: f for f in manifest["files"]}
    assert set(listed) == {"incident.json", "history.json", CLIP, SNAPSHOT}
    assert listed[CLIP]["sha256"] == hashlib.sha256(clip.read_bytes()).hexdigest()
    assert listed[CLIP]["bytes"] == clip.stat().st_size
    assert listed[SNAPSHOT]["sha256"] == hashlib.sha256(snapshot).hexdigest()
    assert manifest["incident_id"] == INCIDENT_ID and manifest["camera_id"] == "street-1"
    assert manifest["created_utc"] == "2023-11-14T22:15:00+00:00"
    assert manifest["tool"] == "commune-vision" and manifest["tool_version"]
    assert manifest["notes"] == ["test note"]
    assert _member(out, CLIP) == clip.read_bytes()  # the media is byte-for-byte the source
    assert json.loads(_member(out, "incident.json")) == _incident()
    assert _member(out, SIGNATURE_NAME).decode().strip() == sign_manifest(
        _member(out, MANIFEST_NAME), KEY
    )

    result = verify_package(out, KEY)
    assert result.ok, result.problems
    assert result.incident_id == INCIDENT_ID and len(result.files) == 4
    assert "signature valid (HMAC-SHA256)" in result.notes
    assert "manifest note: test note" in result.notes


def test_signed_package_without_key_and_unsigned_package_are_noted(
    tmp_path: Path, clip: Path
) -> None:
    signed = verify_package(_build(tmp_path / "a", clip, KEY))
    assert signed.ok and any("not checked" in n for n in signed.notes)
    unsigned = verify_package(_build(tmp_path / "b", clip, None))
    assert unsigned.ok and any(n.startswith("unsigned") for n in unsigned.notes)
    # A key given for an unsigned package: the signature it expects is missing.
    expected_sig = verify_package(_build(tmp_path / "c", clip, None), KEY)
    assert not expected_sig.ok
    assert expected_sig.problems == [
        f"{SIGNATURE_NAME}: missing, but a key was given (the package is unsigned)"
    ]


@pytest.mark.parametrize("member", [CLIP, SNAPSHOT, "incident.json", "history.json"])
def test_one_changed_byte_fails_naming_the_file(tmp_path: Path, clip: Path, member: str) -> None:
    out = _build(tmp_path, clip)
    tampered = _rewrite(
        out, tmp_path / "tampered.zip", replace={member: _flip_one_byte(_member(out, member))}
    )
    result = verify_package(tampered, KEY)
    assert not result.ok and result.readable
    assert result.problems == [f"{member}: content changed (SHA-256 does not match)"]


def test_changed_size_is_reported(tmp_path: Path, clip: Path) -> None:
    out = _build(tmp_path, clip)
    tampered = _rewrite(
        out, tmp_path / "tampered.zip", replace={SNAPSHOT: _member(out, SNAPSHOT)[:-10]}
    )
    problems = verify_package(tampered, KEY).problems
    assert any(p.startswith(f"{SNAPSHOT}: size changed") for p in problems)
    assert f"{SNAPSHOT}: content changed (SHA-256 does not match)" in problems


def test_extra_file_fails(tmp_path: Path, clip: Path) -> None:
    out = _build(tmp_path, clip)
    tampered = _rewrite(out, tmp_path / "extra.zip", add={"clips/other.mp4": b"not evidence"})
    result = verify_package(tampered, KEY)
    assert not result.ok
    assert result.problems == ["clips/other.mp4: not listed in the manifest (added later?)"]


def test_duplicate_member_name_fails(tmp_path: Path, clip: Path) -> None:
    """zipfile reads the last of two same-named members: a second copy must not hide."""
    out = _build(tmp_path, clip)
    with pytest.warns(UserWarning, match="Duplicate name"):
        tampered = _rewrite(out, tmp_path / "dup.zip", add={SNAPSHOT: b"a different picture"})
    problems = verify_package(tampered, KEY).problems
    assert f"{SNAPSHOT}: appears more than once in the zip" in problems


@pytest.mark.parametrize("member", [CLIP, "history.json"])
def test_deleted_member_fails(tmp_path: Path, clip: Path, member: str) -> None:
    out = _build(tmp_path, clip)
    result = verify_package(_rewrite(out, tmp_path / "less.zip", drop=[member]), KEY)
    assert not result.ok
    assert result.problems == [f"{member}: listed in the manifest but missing"]


def test_deleted_manifest_fails(tmp_path: Path, clip: Path) -> None:
    out = _build(tmp_path, clip)
    result = verify_package(_rewrite(out, tmp_path / "x.zip", drop=[MANIFEST_NAME]), KEY)
    assert not result.ok and result.problems == [
        f"{MANIFEST_NAME}: missing, nothing can be checked"
    ]


def _edit_and_rewrite_manifest(out: Path, dst: Path, sign_with: bytes | None = None) -> Path:
    """Change the snapshot AND fix its hash in the manifest, as a careful forger would."""
    forged = _flip_one_byte(_member(out, SNAPSHOT))
    manifest = json.loads(_member(out, MANIFEST_NAME))
    for entry in manifest["files"]:
        if entry["name"] == SNAPSHOT:
            entry["sha256"] = hashlib.sha256(forged).hexdigest()
    manifest_bytes = json.dumps(manifest, indent=2).encode()
    replace = {SNAPSHOT: forged, MANIFEST_NAME: manifest_bytes}
    if sign_with is not None:
        replace[SIGNATURE_NAME] = sign_manifest(manifest_bytes, sign_with).encode()
    return _rewrite(out, dst, replace=replace)


def test_rewritten_manifest_passes_hashes_but_fails_the_signature(
    tmp_path: Path, clip: Path
) -> None:
    out = _build(tmp_path, clip)
    forged = _edit_and_rewrite_manifest(out, tmp_path / "forged.zip")
    # Without the key only the hashes can be checked, and the forger made them match:
    # that is what the signature is for.
    without_key = verify_package(forged)
    assert without_key.ok and any("not checked" in n for n in without_key.notes)
    with_key = verify_package(forged, KEY)
    assert not with_key.ok
    assert with_key.problems == [
        f"{SIGNATURE_NAME}: signature does not match {MANIFEST_NAME} "
        "(the manifest was rewritten, or this is not the installation's key)"
    ]
    # Re-signing needs the installation's key: a guessed key does not do.
    resigned = _edit_and_rewrite_manifest(out, tmp_path / "resigned.zip", sign_with=b"guess" * 7)
    assert not verify_package(resigned, KEY).ok


def test_stripped_signature_fails(tmp_path: Path, clip: Path) -> None:
    out = _build(tmp_path, clip)
    stripped = _rewrite(out, tmp_path / "stripped.zip", drop=[SIGNATURE_NAME])
    with_key = verify_package(stripped, KEY)
    assert not with_key.ok and "missing, but a key was given" in with_key.problems[0]
    # Even without a key: the manifest says it was signed.
    without_key = verify_package(stripped)
    assert not without_key.ok and "manifest says the package was signed" in without_key.problems[0]


def test_wrong_key_fails(tmp_path: Path, clip: Path) -> None:
    result = verify_package(_build(tmp_path, clip), b"\x01" * KEY_BYTES)
    assert not result.ok and result.problems[0].startswith(f"{SIGNATURE_NAME}: signature does not")


def test_unparseable_manifest_is_a_problem(tmp_path: Path, clip: Path) -> None:
    out = _build(tmp_path, clip)
    bad = _rewrite(out, tmp_path / "bad.zip", replace={MANIFEST_NAME: b"{not json"})
    result = verify_package(bad, KEY)
    assert not result.ok and result.readable
    assert result.problems[0].startswith(f"{MANIFEST_NAME}: unreadable")


def test_damaged_and_foreign_files_are_reported_not_raised(tmp_path: Path, clip: Path) -> None:
    out = _build(tmp_path, clip)
    data = out.read_bytes()

    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(data[: len(data) // 2])
    not_zip = tmp_path / "notes.zip"
    not_zip.write_text("this is not a zip\n")
    empty = tmp_path / "empty.zip"
    empty.write_bytes(b"")
    for path in (truncated, not_zip, empty, tmp_path / "absent.zip", tmp_path):
        result = verify_package(path, KEY)
        assert not result.ok and not result.readable, path
        assert len(result.problems) == 1 and "not a readable zip" in result.problems[0]

    # One flipped byte in the raw zip (inside the stored clip): the zip still opens,
    # the member's CRC no longer matches, and the problem names the member.
    with zipfile.ZipFile(out) as zf:
        clip_info = zf.getinfo(CLIP)
    raw = bytearray(data)
    raw[clip_info.header_offset + 200] ^= 0x01
    flipped = tmp_path / "flipped.zip"
    flipped.write_bytes(bytes(raw))
    result = verify_package(flipped, KEY)
    assert result.readable and not result.ok
    assert len(result.problems) == 1 and result.problems[0].startswith(f"{CLIP}: ")


def test_bad_member_names_are_refused(tmp_path: Path, clip: Path) -> None:
    out = tmp_path / "evidence.zip"
    for name in ("../escape.mp4", "/abs.mp4", MANIFEST_NAME, "incident.json", "a//b", "a\\b"):
        with pytest.raises(ValueError, match="bad package member name"):
            build_package(out, _incident(), {name: b"x"}, [])
    with pytest.raises(ValueError, match="camera_id"):
        build_package(out, {"id": INCIDENT_ID}, {}, [])
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_failed_build_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "evidence.zip"
    with pytest.raises(FileNotFoundError):
        build_package(out, _incident(), {CLIP: tmp_path / "missing.mp4"}, [])
    assert list(tmp_path.iterdir()) == []


def test_key_is_created_once_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "data" / "evidence.key"
    key = load_or_create_key(path)
    assert len(key) == KEY_BYTES and path.read_bytes() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path) == key == read_key(path)
    assert [p.name for p in path.parent.iterdir()] == ["evidence.key"]  # no temp file left
    assert load_or_create_key(tmp_path / "other.key") != key

    path.write_bytes(b"short")
    with pytest.raises(EvidenceKeyError, match="not an evidence key"):
        load_or_create_key(path)
    with pytest.raises(EvidenceKeyError, match="cannot read"):
        read_key(tmp_path / "absent.key")
