"""Evidence packages: one zip per incident that shows whether anything in it changed.

A package holds ``incident.json``, ``history.json``, the media (``clips/<id>.mp4``,
``snapshots/<id>.jpg``) and ``manifest.json``, which lists every other member with
its SHA-256 and size. With an installation key it also holds ``manifest.sig``, the
HMAC-SHA256 of the exact manifest bytes: hashes alone catch an edited file, the
signature also catches someone who edits a file and rewrites the manifest to match.

Packaging itself is pure (no HTTP, no footage cutting): the API gathers the files,
this module writes and checks the zip. The one database write here is the evidence
lock, a user action (like a config edit) that the API makes, not the pipeline.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import time
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

FORMAT = "commune-vision-evidence/1"
INCIDENT_NAME = "incident.json"
HISTORY_NAME = "history.json"
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
RESERVED_NAMES = frozenset({INCIDENT_NAME, HISTORY_NAME, MANIFEST_NAME, SIGNATURE_NAME})
KEY_BYTES = 32
SIGNATURE_ALGORITHM = "HMAC-SHA256"

_CHUNK_BYTES = 1 << 20
# A manifest lists a handful of files; anything far bigger is not ours (or a zip bomb).
_MAX_MANIFEST_BYTES = 16 << 20
# Already-compressed media gains nothing from deflate and costs CPU on every export.
_STORED_SUFFIXES = frozenset({".mp4", ".jpg", ".jpeg", ".png", ".zip"})


class EvidenceKeyError(ValueError):
    """The key file is unreadable or not a key this module wrote."""


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    name: str
    sha256: str
    bytes: int


@dataclass(frozen=True, slots=True)
class PackageInfo:
    path: Path
    bytes: int  # size of the zip
    sha256: str  # of the whole zip, for a chain-of-custody log
    files: tuple[ManifestEntry, ...]
    signed: bool


@dataclass(slots=True)
class VerifyResult:
    """What a check found. ``readable`` is False when the file is not a usable zip."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    readable: bool = True
    files: list[ManifestEntry] = field(default_factory=list)
    incident_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.readable and not self.problems


def tool_version() -> str:
    try:
        return metadata.version("commune-vision")
    except metadata.PackageNotFoundError:
        return "unknown"


def _json_bytes(value: Any) -> bytes:
    # Sorted and indented: the same content always gives the same bytes (and hash).
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _check_member_name(name: str) -> None:
    parts = PurePosixPath(name).parts
    if (
        not name
        or name in RESERVED_NAMES
        or name.startswith("/")
        or "\\" in name
        or name.endswith("/")
        or any(p in ("", ".", "..") for p in parts)
        or "//" in name
    ):
        raise ValueError(f"bad package member name {name!r}")


def _zip_info(name: str, created_ts: float) -> zipfile.ZipInfo:
    # Zip timestamps cannot predate 1980.
    date_time = time.gmtime(max(created_ts, 315532800.0))[:6]
    info = zipfile.ZipInfo(name, date_time=date_time)
    stored = PurePosixPath(name).suffix.lower() in _STORED_SUFFIXES
    info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def _add_bytes(zf: zipfile.ZipFile, name: str, data: bytes, created_ts: float) -> ManifestEntry:
    zf.writestr(_zip_info(name, created_ts), data)
    return ManifestEntry(name, hashlib.sha256(data).hexdigest(), len(data))


def _add_file(zf: zipfile.ZipFile, name: str, path: Path, created_ts: float) -> ManifestEntry:
    """Stream a file in, hashing exactly the bytes written (not a second read)."""
    digest = hashlib.sha256()
    size = 0
    force_zip64 = path.stat().st_size >= zipfile.ZIP64_LIMIT // 2
    with (
        path.open("rb") as src,
        zf.open(_zip_info(name, created_ts), "w", force_zip64=force_zip64) as dst,
    ):
        while chunk := src.read(_CHUNK_BYTES):
            digest.update(chunk)
            dst.write(chunk)
            size += len(chunk)
    return ManifestEntry(name, digest.hexdigest(), size)


def sign_manifest(manifest: bytes, key: bytes) -> str:
    return hmac.new(key, manifest, hashlib.sha256).hexdigest()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def build_package(
    out_path: Path,
    incident: Mapping[str, Any],
    files: Mapping[str, Path | bytes],
    history: Sequence[Mapping[str, Any]],
    key: bytes | None = None,
    *,
    notes: Sequence[str] = (),
    created_ts: float | None = None,
) -> PackageInfo:
    """Write the package for ``incident`` (needs ``id`` and ``camera_id``) to ``out_path``.

    ``files`` maps member names (``clips/<id>.mp4``) to a file or its bytes. ``notes``
    go into the manifest for the reader, e.g. why a clip is absent. The zip is written
    under a hidden temporary name and renamed, so ``out_path`` is whole or absent.
    """
    try:
        incident_id, camera_id = str(incident["id"]), str(incident["camera_id"])
    except KeyError as exc:
        raise ValueError(f"incident has no {exc.args[0]!r}") from exc
    for name in files:
        _check_member_name(name)
    created = time.time() if created_ts is None else created_ts
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            entries = [
                _add_bytes(zf, INCIDENT_NAME, _json_bytes(dict(incident)), created),
                _add_bytes(zf, HISTORY_NAME, _json_bytes([dict(h) for h in history]), created),
            ]
            for name, source in files.items():
                if isinstance(source, bytes):
                    entries.append(_add_bytes(zf, name, source, created))
                else:
                    entries.append(_add_file(zf, name, source, created))
            manifest = _json_bytes(
                {
                    "format": FORMAT,
                    "created_ts": created,
                    "created_utc": datetime.fromtimestamp(created, UTC).isoformat(),
                    "tool": "commune-vision",
                    "tool_version": tool_version(),
                    "incident_id": incident_id,
                    "camera_id": camera_id,
                    "hash_algorithm": "sha256",
                    "signature": SIGNATURE_ALGORITHM if key is not None else None,
                    "notes": list(notes),
                    "files": [
                        {"name": e.name, "sha256": e.sha256, "bytes": e.bytes} for e in entries
                    ],
                }
            )
            zf.writestr(_zip_info(MANIFEST_NAME, created), manifest)
            if key is not None:
                signature = sign_manifest(manifest, key) + "\n"
                zf.writestr(_zip_info(SIGNATURE_NAME, created), signature.encode())
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        tmp.replace(out_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return PackageInfo(
        path=out_path,
        bytes=out_path.stat().st_size,
        sha256=_sha256_file(out_path),
        files=tuple(entries),
        signed=key is not None,
    )


# Everything reading a damaged zip member can raise: bad CRC, bad deflate stream,
# truncated data, an unsupported compression method or an encrypted member.
_READ_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
    RuntimeError,
)


def _hash_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with zf.open(info) as fh:
        while chunk := fh.read(_CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _read_small(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    with zf.open(info) as fh:
        data = fh.read(_MAX_MANIFEST_BYTES + 1)
    if len(data) > _MAX_MANIFEST_BYTES:
        raise ValueError(f"larger than {_MAX_MANIFEST_BYTES} bytes")
    return data


def _parse_entries(manifest: Any, result: VerifyResult) -> list[ManifestEntry] | None:
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        result.problems.append(f"{MANIFEST_NAME}: not a manifest (no file list)")
        return None
    entries: list[ManifestEntry] = []
    for i, item in enumerate(manifest["files"]):
        ok = (
            isinstance(item, dict)
            and isinstance(item.get("name"), str)
            and isinstance(item.get("sha256"), str)
            and isinstance(item.get("bytes"), int)
        )
        if not ok:
            result.problems.append(f"{MANIFEST_NAME}: file entry {i} is malformed")
            continue
        entries.append(ManifestEntry(item["name"], item["sha256"], item["bytes"]))
    return entries


def _check_signature(
    zf: zipfile.ZipFile,
    infos: Mapping[str, zipfile.ZipInfo],
    manifest_bytes: bytes,
    claims_signed: bool,
    key: bytes | None,
    result: VerifyResult,
) -> None:
    info = infos.get(SIGNATURE_NAME)
    if info is None:
        if key is not None:
            result.problems.append(
                f"{SIGNATURE_NAME}: missing, but a key was given (the package is unsigned)"
            )
        elif claims_signed:
            result.problems.append(
                f"{SIGNATURE_NAME}: missing, but the manifest says the package was signed"
            )
        else:
            result.notes.append("unsigned: only file hashes were checked")
        return
    if key is None:
        result.notes.append(f"signed, but no key given: {SIGNATURE_NAME} was not checked")
        return
    try:
        stored = _read_small(zf, info).decode("ascii").strip()
    except (*_READ_ERRORS, UnicodeDecodeError) as exc:
        result.problems.append(f"{SIGNATURE_NAME}: unreadable ({exc})")
        return
    if not hmac.compare_digest(stored, sign_manifest(manifest_bytes, key)):
        result.problems.append(
            f"{SIGNATURE_NAME}: signature does not match {MANIFEST_NAME} "
            "(the manifest was rewritten, or this is not the installation's key)"
        )
    else:
        result.notes.append(f"signature valid ({SIGNATURE_ALGORITHM})")


def _check_zip(zf: zipfile.ZipFile, key: bytes | None, result: VerifyResult) -> None:
    infos: dict[str, zipfile.ZipInfo] = {}
    for info in zf.infolist():
        if info.filename in infos:
            # zipfile reads the last of two same-named members: a place to hide an edit.
            result.problems.append(f"{info.filename}: appears more than once in the zip")
        infos[info.filename] = info
    manifest_info = infos.get(MANIFEST_NAME)
    if manifest_info is None:
        result.problems.append(f"{MANIFEST_NAME}: missing, nothing can be checked")
        return
    try:
        manifest_bytes = _read_small(zf, manifest_info)
        manifest = json.loads(manifest_bytes)
    except (*_READ_ERRORS, UnicodeDecodeError) as exc:
        result.problems.append(f"{MANIFEST_NAME}: unreadable ({exc})")
        return
    entries = _parse_entries(manifest, result)
    if entries is None:
        return
    result.files = entries
    incident_id = manifest.get("incident_id")
    result.incident_id = incident_id if isinstance(incident_id, str) else None
    notes = manifest.get("notes")
    if isinstance(notes, list):
        result.notes.extend(f"manifest note: {n}" for n in notes if isinstance(n, str))
    listed: set[str] = set()
    for entry in entries:
        if entry.name in listed:
            result.problems.append(f"{entry.name}: listed twice in the manifest")
        listed.add(entry.name)
        member = infos.get(entry.name)
        if member is None:
            result.problems.append(f"{entry.name}: listed in the manifest but missing")
            continue
        try:
            sha256, size = _hash_member(zf, member)
        except _READ_ERRORS as exc:
            result.problems.append(f"{entry.name}: unreadable, damaged in the zip ({exc})")
            continue
        if size != entry.bytes:
            result.problems.append(
                f"{entry.name}: size changed ({size} bytes, manifest says {entry.bytes})"
            )
        if sha256 != entry.sha256:
            result.problems.append(f"{entry.name}: content changed (SHA-256 does not match)")
    for required in (INCIDENT_NAME, HISTORY_NAME):
        if required not in listed:
            result.problems.append(f"{required}: missing from the manifest")
    for name in sorted(set(infos) - listed - {MANIFEST_NAME, SIGNATURE_NAME}):
        result.problems.append(f"{name}: not listed in the manifest (added later?)")
    claims_signed = manifest.get("signature") is not None
    _check_signature(zf, infos, manifest_bytes, claims_signed, key, result)


def verify_package(path: Path, key: bytes | None = None) -> VerifyResult:
    """Check a package; never raises for a damaged or foreign file, reports it instead."""
    result = VerifyResult()
    try:
        with zipfile.ZipFile(path) as zf:
            _check_zip(zf, key, result)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        result.readable = False
        result.problems.append(f"{path.name}: not a readable zip ({exc})")
    return result


def read_key(path: Path) -> bytes:
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise EvidenceKeyError(f"cannot read evidence key {path}: {exc}") from exc
    if len(key) != KEY_BYTES:
        raise EvidenceKeyError(
            f"{path} is not an evidence key ({len(key)} bytes, expected {KEY_BYTES})"
        )
    return key


def load_or_create_key(path: Path) -> bytes:
    """The installation's signing key: read ``path``, or create it (32 random bytes, 0600).

    Creation writes a private temporary file and hard-links it into place, which fails
    if another process got there first: then both use that process's key, and nobody
    ever reads a half-written one.
    """
    if path.exists():
        return read_key(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)  # left by a crashed process that had our pid
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(os.urandom(KEY_BYTES))
            fh.flush()
            os.fsync(fh.fileno())
        # If another process created it first, both use theirs.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return read_key(path)
