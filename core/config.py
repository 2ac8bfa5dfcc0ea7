"""The one YAML configuration file, validated by pydantic models.

Every model forbids unknown keys, so a typo is an error with its key path rather
than a silently ignored setting.  ``${VAR}`` and ``${VAR:-default}`` in the YAML
are expanded from the environment before validation.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AliasChoices,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import ConfigError
from core.rule_config import (
    ID_PATTERN,
    RULE_TYPES,
    Calibration,
    IntrusionRule,
    LineConfig,
    RuleConfig,
    StrictModel,
    ZoneConfig,
    reference_errors,
)
from core.types import DomainLabel

__all__ = ["IntrusionRule", "LineConfig", "RuleConfig", "ZoneConfig"]

_ID_PATTERN = ID_PATTERN
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class DetectSettings(StrictModel):
    """How often and at what size frames of a camera go to the detector."""

    fps: float = Field(5.0, gt=0, le=30, description="frames per second sent to the detector")
    width: int = Field(640, ge=64, le=3840, description="frame width for detection, pixels")
    height: int | None = Field(
        None, ge=64, le=2160, description="frame height; default keeps the aspect ratio"
    )
    ring_slots: int = Field(16, ge=4, le=256, description="frames kept in shared memory")


class MotionSettings(StrictModel):
    """The motion gate: frames with nothing moving skip the detector."""

    enabled: bool = True
    threshold: int = Field(25, ge=1, le=255, description="grey-level change that counts")
    min_area: float = Field(
        0.001, gt=0.0, le=1.0, description="smallest moving region, share of image"
    )
    refresh_s: float = Field(
        3.0, gt=0.0, le=600.0, description="detect anyway this often: keeps parked cars tracked"
    )
    hold_s: float = Field(2.0, ge=0.0, le=60.0, description="keep detecting this long after motion")


class RecordSettings(StrictModel):
    """Recording of one camera: packet remux into short segments, never re-encoded."""

    enabled: bool = True
    mode: Literal["continuous", "events"] = Field(
        "continuous",
        description="events: keep only segments near incidents (pre/post roll)",
    )
    segment_s: float = Field(
        10.0, ge=2.0, le=300.0, description="target segment length; cut on the next key frame"
    )
    retain_days: float = Field(7.0, gt=0.0, le=3650.0, description="delete segments older")
    max_gb: float | None = Field(None, gt=0.0, description="size quota of this camera, GB")
    events_hold_s: float = Field(
        300.0,
        ge=0.0,
        le=86400.0,
        description="events mode: how long a segment waits for an incident before deletion",
    )


class ClassFilter(StrictModel):
    """Per-class detection thresholds for one camera (applied before tracking)."""

    min_confidence: float = Field(0.25, ge=0.0, le=1.0)
    min_area: float = Field(
        0.0, ge=0.0, le=1.0, description="smallest box as a share of the image area"
    )


class CameraConfig(StrictModel):
    id: str = Field(pattern=_ID_PATTERN)
    name: str = ""
    url: str = Field(
        min_length=1, description="detect stream: rtsp://…, rtmp://…, http(s)://…, or a file"
    )
    record_url: str | None = Field(
        None, description="main stream to record, when the detect URL is a substream"
    )
    transport: Literal["tcp", "udp"] = Field("tcp", description="RTSP transport")
    stall_timeout_s: float = Field(
        10.0, ge=1.0, le=120.0, description="open/read timeout; no packets this long = stalled"
    )
    loop: bool = Field(True, description="local files: loop at the end, for demos and tests")
    enabled: bool = True
    detect: DetectSettings = DetectSettings()
    motion: MotionSettings = MotionSettings()
    filters: dict[DomainLabel, ClassFilter] = Field(
        default_factory=dict,
        description="per-class thresholds, e.g. {person: {min_confidence: 0.5}}",
    )
    zones: list[ZoneConfig] = Field(default_factory=list)
    lines: list[LineConfig] = Field(default_factory=list)
    calibration: Calibration | None = None
    rules: list[RuleConfig] = Field(default_factory=list)
    pre_roll_s: float = Field(5.0, ge=0.0, le=120.0, description="clip seconds before")
    post_roll_s: float = Field(5.0, ge=0.0, le=120.0, description="clip seconds after")
    record: RecordSettings = RecordSettings()

    @model_validator(mode="after")
    def _references(self) -> CameraConfig:
        errors = []
        for kind, names in (
            ("zone", [z.name for z in self.zones]),
            ("line", [ln.name for ln in self.lines]),
            ("rule", [r.name for r in self.rules]),
        ):
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                errors.append(f"{kind} names must be unique; repeated: {', '.join(repeated)}")
        errors += reference_errors(
            self.rules,
            [z.name for z in self.zones],
            [ln.name for ln in self.lines],
            self.calibration is not None,
        )
        if errors:
            raise ValueError("; ".join(errors))
        return self

    def stream_settings(self) -> tuple[object, ...]:
        """What the reader depends on; other changes (zones, rules, filters) apply
        without reconnecting the camera."""
        return (
            self.url,
            self.record_url,
            self.transport,
            self.stall_timeout_s,
            self.loop,
            self.enabled,
            self.detect,
            self.motion,
            self.record.enabled,
            self.record.segment_s,
        )

    @property
    def is_file(self) -> bool:
        return "://" not in self.url or self.url.startswith("file://")

    @property
    def file_path(self) -> Path:
        return Path(self.url.removeprefix("file://"))


Device = Annotated[str, Field(pattern=r"^(cpu|auto|gpu|cuda(:\d+)?)$")]


class DetectorConfig(StrictModel):
    backend: Literal["openvino", "onnxruntime", "ultralytics"] = "openvino"
    model: str = Field(
        "yolo11n-int8",
        description="a registry name (commune-vision models list) or a path to model files",
    )
    device: Device = "cpu"
    input_hw: tuple[int, int] = Field(
        (640, 640), description="network input (height, width); multiples of 32"
    )
    confidence_threshold: float = Field(0.25, gt=0.0, le=1.0)
    iou_threshold: float = Field(0.45, gt=0.0, le=1.0)
    max_batch: int = Field(8, ge=1, le=64)
    max_wait_ms: float = Field(
        5.0,
        ge=0.0,
        le=1000.0,
        description="how long a batch waits to fill; default 0 on the CPU, 5 otherwise",
    )
    queue_size: int = Field(
        256, ge=1, le=4096, description="frames in flight from ingest to the detector"
    )
    # Two frames, but none kept once it has waited max_frame_age_ms with a newer
    # one behind it. One frame alone (the 12-06 default) lost ≈ 8 % of a camera's
    # frames at 16 cameras (a frame that arrives during a long batch replaced the
    # one waiting); deeper queues without an age limit put the alert p95 at 1.2 s
    # at 29 cameras (2 frames) and 2.9 s (4), as backpressure keeps them full.
    per_camera_queue: int = Field(
        2, ge=1, le=64, description="frames waiting per camera; beyond, the oldest is dropped"
    )
    max_frame_age_ms: float | None = Field(
        250.0,
        gt=0.0,
        le=10000.0,
        description="a waiting frame older than this is dropped once a newer frame of its "
        "camera waits too; null: no age limit",
    )
    per_camera_batch: int = Field(2, ge=1, le=64, description="frames of one camera per batch")
    # Measured 2026-12-06 (docs/performance.md, "Parallel requests, mosaics…"):
    # a 3 × 2 mosaic detects six frames per inference and keeps ≈ 78 % of the
    # confident (≥ 0.5) boxes taller than 32 px that full size finds; 29 cameras
    # got 137 frames/s detected instead of 32. "auto" packs only what full size cannot keep up with.
    mosaic: Literal["off", "auto", "always"] = Field(
        "auto",
        description="pack several cameras' frames into one network input at reduced size: "
        "off, auto (only when the model cannot keep up at full size) or always",
    )
    tile_grid: tuple[int, int] = Field(
        (3, 2),
        description="(rows, cols) of frames in a mosaic input; (3, 2) fits six 16:9 "
        "sub-streams at half width into 640x640",
    )

    @model_validator(mode="before")
    @classmethod
    def _wait_for_device(cls, data: Any) -> Any:
        # On the CPU a batch fills by itself under load (frames queue while the
        # model runs), and under light load waiting only adds latency: measured at
        # 8 cameras, 0 ms gave 11–20 % more detections than 5 ms (2026-12-06, when
        # batches still ran image after image; not re-measured since they run on
        # parallel requests). A GPU gains from fuller batches and keeps the wait.
        if isinstance(data, dict) and "max_wait_ms" not in data:
            device = str(data.get("device", "cpu"))
            return {**data, "max_wait_ms": 0.0 if device == "cpu" else 5.0}
        return data

    @field_validator("tile_grid")
    @classmethod
    def _grid(cls, grid: tuple[int, int]) -> tuple[int, int]:
        if any(v < 1 or v > 4 for v in grid):
            raise ValueError(f"{grid}: rows and cols must be 1 to 4, e.g. [1, 1] or [3, 2]")
        return grid

    @field_validator("input_hw")
    @classmethod
    def _stride(cls, hw: tuple[int, int]) -> tuple[int, int]:
        if any(v % 32 or v < 32 for v in hw):
            raise ValueError(f"{hw}: both sides must be positive multiples of 32")
        return hw


class RetentionConfig(StrictModel):
    """Disk limits over all cameras; per-camera limits are under ``cameras[].record``."""

    max_gb: float | None = Field(None, gt=0.0, description="quota of all recordings, GB")
    min_free_gb: float = Field(
        2.0, ge=0.0, description="below this free space, delete the oldest segments first"
    )
    min_free_percent: float = Field(5.0, ge=0.0, le=90.0, description="the same, in percent")
    interval_s: float = Field(30.0, ge=1.0, le=3600.0, description="how often retention runs")


class StorageConfig(StrictModel):
    data_dir: Path = Path("data")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default sqlite file in data_dir"
    )
    recordings_dir: Path | None = Field(
        None, description="where segments go; default data_dir/recordings"
    )
    retention: RetentionConfig = RetentionConfig()

    @property
    def resolved_recordings_dir(self) -> Path:
        return (self.recordings_dir or self.data_dir / "recordings").resolve()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'commune-vision.db').resolve()}"


class ServerConfig(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)


class ClusterConfig(StrictModel):
    """How ``commune-vision worker`` nodes share the cameras (core/leases.py)."""

    lease_ttl_s: float = Field(
        8.0,
        ge=3.0,
        le=60.0,
        description="a dead worker's cameras move after this; keep it ≥ 3 heartbeats",
    )
    heartbeat_s: float = Field(1.0, ge=0.2, le=10.0, description="how often leases are renewed")

    @model_validator(mode="after")
    def _renewed_in_time(self) -> ClusterConfig:
        if self.lease_ttl_s < 3 * self.heartbeat_s:
            raise ValueError(
                f"cluster.lease_ttl_s ({self.lease_ttl_s}) must be at least 3 × "
                f"cluster.heartbeat_s ({self.heartbeat_s}), or one slow tick loses leases"
            )
        return self


class AppConfig(StrictModel):
    cameras: list[CameraConfig] = Field(default_factory=list)
    detector: DetectorConfig = DetectorConfig()
    storage: StorageConfig = StorageConfig()
    server: ServerConfig = ServerConfig()
    cluster: ClusterConfig = ClusterConfig()
    redis_url: str | None = Field(None, description="external Redis/Valkey; default embedded")
    timezone: str = "Asia/Ho_Chi_Minh"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # 'Asia' is a folder
            raise ValueError(f"unknown time zone {value!r}; use e.g. Asia/Ho_Chi_Minh") from exc
        return value

    @model_validator(mode="after")
    def _unique_cameras(self) -> AppConfig:
        ids = [c.id for c in self.cameras]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"camera ids must be unique; repeated: {', '.join(duplicates)}")
        return self


class EnvOverrides(BaseSettings):
    """Settings the environment may override, so containers need no edited YAML."""

    model_config = SettingsConfigDict(extra="ignore")

    redis_url: str | None = Field(None, validation_alias=AliasChoices("REDIS_URL"))
    database_url: str | None = Field(None, validation_alias=AliasChoices("DATABASE_URL"))
    model: str | None = Field(None, validation_alias=AliasChoices("COMMUNE_VISION_MODEL"))
    device: str | None = Field(None, validation_alias=AliasChoices("COMMUNE_VISION_DEVICE"))
    data_dir: str | None = Field(None, validation_alias=AliasChoices("COMMUNE_VISION_DATA_DIR"))
    host: str | None = Field(None, validation_alias=AliasChoices("COMMUNE_VISION_HOST"))


def format_loc(loc: tuple[int | str, ...]) -> str:
    """('cameras', 2, 'zones', 0, 'points') -> 'cameras[2].zones[0].points'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in RULE_TYPES:  # discriminator tags pydantic inserts into the path
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def _expand_env(text: str, errors: list[str]) -> str:
    def repl(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = os.environ.get(name)
        if value is None:
            if default is None:
                errors.append(
                    f"${{{name}}}: environment variable is not set (or write ${{{name}:-default}})"
                )
                return ""
            return default
        return value

    return _ENV_REF.sub(repl, text)


def _apply_env(data: dict[str, Any], env: EnvOverrides) -> dict[str, Any]:
    if env.redis_url:
        data["redis_url"] = env.redis_url
    storage = dict(data.get("storage") or {})
    if env.database_url:
        storage["database_url"] = env.database_url
    if env.data_dir:
        storage["data_dir"] = env.data_dir
    if storage:
        data["storage"] = storage
    detector = dict(data.get("detector") or {})
    if env.model:
        detector["model"] = env.model
    if env.device:
        detector["device"] = env.device
    if detector:
        data["detector"] = detector
    if env.host:
        data["server"] = {**(data.get("server") or {}), "host": env.host}
    return data


def parse_config(text: str, source: str = "<config>", use_env: bool = True) -> AppConfig:
    """Parse YAML text into an AppConfig, or raise ConfigError listing every problem."""
    errors: list[str] = []
    expanded = _expand_env(text, errors)
    try:
        data = yaml.safe_load(expanded)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(source, [f"{where}not valid YAML ({exc})"]) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, ["top level: expected a mapping of settings"])
    if use_env:
        data = _apply_env(data, EnvOverrides())
    try:
        config = AppConfig.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            where = format_loc(tuple(err["loc"])) or "top level"
            message = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown key (check the spelling; see docs/configuration.md)"
            elif err["type"] == "missing":
                message = "required key is missing"
            errors.append(f"{where}: {message}")
    if errors:
        raise ConfigError(source, errors)
    return config


def load_config(path: Path, use_env: bool = True) -> AppConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read the file: {exc.strerror}"]) from exc
    return parse_config(text, source=str(path), use_env=use_env)
