"""The ``commune-vision`` command."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from commune_vision.users_cli import users_app
from core.config import AppConfig, load_config
from core.errors import ConfigError

app = typer.Typer(help="Video analytics for commune operations centers.", no_args_is_help=True)
config_app = typer.Typer(help="Validate configuration files.", no_args_is_help=True)
models_app = typer.Typer(help="Models the detector can use.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
evidence_app = typer.Typer(help="Evidence packages exported for the police.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(models_app, name="models")
app.add_typer(db_app, name="db")
app.add_typer(evidence_app, name="evidence")
app.add_typer(users_app, name="users")

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML config; default: the embedded demo config"),
]


def demo_config_path() -> Path:
    return Path(__file__).with_name("configs") / "demo.yaml"


def _load_or_exit(path: Path, check_sources: bool = True) -> AppConfig:
    from commune_vision.preflight import preflight_errors

    try:
        config = load_config(path)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    errors = preflight_errors(config, check_sources)
    if errors:
        typer.echo(str(ConfigError(str(path), errors)), err=True)
        raise typer.Exit(2)
    return config


@config_app.command("check")
def config_check(path: Annotated[Path, typer.Argument(help="the YAML file to check")]) -> None:
    """Print every error with its key path; exit 2 if there is any."""
    config = _load_or_exit(path)
    typer.echo(
        f"{path}: OK ({len(config.cameras)} camera(s), "
        f"{sum(len(c.rules) for c in config.cameras)} rule(s))"
    )


@models_app.command("list")
def models_list() -> None:
    """Known model names and whether their files are found."""
    from models.registry import MODELS, ModelNotFoundError, resolve_model

    for entry in MODELS.values():
        try:
            where = str(resolve_model(entry.name))
        except ModelNotFoundError:
            where = "NOT FOUND (see `commune-vision models check NAME`)"
        typer.echo(
            f"{entry.name:24} {entry.backend:12} {entry.input_hw[0]}x{entry.input_hw[1]}  {where}"
        )


@models_app.command("check")
def models_check(name: Annotated[str, typer.Argument(help="model name or path")]) -> None:
    """Load a model and run one inference."""
    from models.registry import MODELS, ModelNotFoundError, resolve_model
    from vision.detector.backend import DetectorError, create_backend

    entry = MODELS.get(name)
    backend = entry.backend if entry else ("onnxruntime" if name.endswith(".onnx") else "openvino")
    input_hw = entry.input_hw if entry else (640, 640)
    try:
        path = resolve_model(name)
        create_backend(backend, path, "cpu", input_hw, 1)
    except (ModelNotFoundError, DetectorError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"{name}: OK ({backend}, {input_hw[0]}x{input_hw[1]}, {path})")


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Create or migrate the database schema."""
    from core.storage.db import make_engine
    from core.storage.migrate import upgrade

    cfg = load_config(config or demo_config_path())
    engine = make_engine(cfg.storage.resolved_database_url)
    upgrade(engine)
    typer.echo(f"schema up to date: {engine.url.render_as_string(hide_password=True)}")


@evidence_app.command("verify")
def evidence_verify(
    package: Annotated[Path, typer.Argument(help="the evidence package (.zip)")],
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--key-file",
            help="the installation's key (evidence.key in the media root): also checks "
            "the signature, which catches a rewritten manifest",
        ),
    ] = None,
) -> None:
    """Check an evidence package: exit 0 if intact, 1 if anything changed, 2 if unreadable."""
    from core.evidence import EvidenceKeyError, read_key, verify_package

    key = None
    if key_file is not None:
        try:
            key = read_key(key_file)
        except EvidenceKeyError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from exc
    result = verify_package(package, key)
    if not result.readable:
        for problem in result.problems:
            typer.echo(problem, err=True)
        raise typer.Exit(2)
    for note in result.notes:
        typer.echo(f"note: {note}")
    if result.problems:
        for problem in result.problems:
            typer.echo(f"CHANGED {problem}")
        typer.echo(f"{package}: NOT INTACT ({len(result.problems)} problem(s))")
        raise typer.Exit(1)
    typer.echo(f"{package}: OK ({len(result.files)} files, incident {result.incident_id})")


@config_app.command("reload")
def config_reload(config: ConfigOption = None) -> None:
    """Ask the running service to re-read its config file (same as SIGHUP)."""
    import os
    import signal

    path = config or demo_config_path()
    cfg = _load_or_exit(path)
    pid_file = cfg.storage.data_dir / "commune-vision.pid"
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError) as exc:
        typer.echo(f"no running service found ({pid_file}: {exc})", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"reload requested (pid {pid}); the pipeline applies camera changes within seconds")


@app.command()
def replay(
    config: Annotated[Path, typer.Option("--config", "-c", help="candidate config (YAML)")],
    video: Annotated[Path | None, typer.Option(help="a video file to replay")] = None,
    camera: Annotated[str | None, typer.Option(help="camera id whose rules to use")] = None,
    baseline: Annotated[
        Path | None, typer.Option(help="config to compare with (e.g. the one running now)")
    ] = None,
    from_: Annotated[str | None, typer.Option("--from", help="recorded footage start")] = None,
    to: Annotated[str | None, typer.Option(help="recorded footage end")] = None,
    max_seconds: Annotated[float | None, typer.Option(help="stop after this much video")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write results as JSON")] = None,
) -> None:
    """What-if: run footage through detection and candidate rules, compare with a baseline.

    The footage is a video file, or what a camera recorded between two times
    (``--camera gate --from 2026-11-22T17:00 --to 2026-11-22T17:30``, local time).
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="replay-") as tmp:
        _replay(config, video, camera, baseline, from_, to, max_seconds, json_out, Path(tmp))


def _recorded_or_exit(
    config: Path, camera: str | None, from_: str | None, to: str | None, scratch: Path
) -> tuple[Path, float]:
    from zoneinfo import ZoneInfo

    from commune_vision.footage import parse_time, recorded_clip
    from streams.clips import FootageMissing

    if camera is None or from_ is None or to is None:
        typer.echo("replay: recorded footage needs all of --camera, --from and --to", err=True)
        raise typer.Exit(2)
    cfg = _load_or_exit(config, check_sources=False)
    tz = ZoneInfo(cfg.timezone)
    try:
        clip = recorded_clip(
            cfg, camera, parse_time(from_, tz, "--from"), parse_time(to, tz, "--to"), scratch
        )
    except (ValueError, FootageMissing) as exc:
        typer.echo(f"replay: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"recorded footage: {clip.duration_s:.1f} s from {len(clip.segment_ids)} segments")
    return clip.path, clip.start_ts


def _replay(
    config: Path,
    video: Path | None,
    camera: str | None,
    baseline: Path | None,
    from_: str | None,
    to: str | None,
    max_seconds: float | None,
    json_out: Path | None,
    scratch: Path,
) -> None:
    from rich.progress import Progress

    from commune_vision.replay import compare, replay_video, write_json

    if from_ or to:
        video, start_ts = _recorded_or_exit(config, camera, from_, to, scratch)
    else:
        start_ts = None
    if video is None:
        typer.echo(
            "replay: give --video FILE, or --camera X --from T1 --to T2 for recorded footage",
            err=True,
        )
        raise typer.Exit(2)
    if not video.is_file():
        typer.echo(f"--video: {video} is not a file", err=True)
        raise typer.Exit(2)
    # The video replaces the cameras' URLs: only rules, zones and the model matter here.
    candidate_cfg = _load_or_exit(config, check_sources=False)
    baseline_cfg = _load_or_exit(baseline, check_sources=False) if baseline else None
    with av_duration(video) as duration_s, Progress() as bar:
        total = min(duration_s, max_seconds or duration_s)
        task = bar.add_task(f"replaying {video.name}", total=total)
        try:
            result, base = replay_video(
                video,
                candidate_cfg,
                camera,
                baseline_cfg,
                max_seconds,
                progress=lambda t: bar.update(task, completed=min(t, total)),
                start_ts=start_ts,  # recorded footage keeps its real times (schedules)
            )
        except ValueError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from exc
        bar.update(task, completed=total)
    typer.echo(
        f"{result.frames_decoded} frames at the detect rate, {result.frames_detected} detected; "
        f"{len(result.incidents)} incident(s)"
    )
    for inc in result.incidents:
        typer.echo(f"  {inc.start_s:7.1f} s  {inc.type:16} {inc.rule:24} {','.join(inc.labels)}")
    for key, n in sorted(result.counts.items()):
        typer.echo(f"  count {key}: {n}")
    if base is not None:
        diff = compare(result, base)
        typer.echo(
            f"vs baseline: {len(diff['both'])} in both, {len(diff['only_candidate'])} only with "
            f"the candidate, {len(diff['only_baseline'])} only with the baseline"
        )
        for inc in diff["only_candidate"]:
            typer.echo(f"  + {inc.start_s:7.1f} s  {inc.type:16} {inc.rule}")
        for inc in diff["only_baseline"]:
            typer.echo(f"  - {inc.start_s:7.1f} s  {inc.type:16} {inc.rule}")
    if json_out is not None:
        write_json(json_out, result, base)
        typer.echo(f"wrote {json_out}")


@contextmanager
def av_duration(video: Path) -> Iterator[float]:
    import av

    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        if stream.duration is not None and stream.time_base is not None:
            seconds = float(stream.duration * stream.time_base)
        else:
            seconds = float(container.duration or 0) / 1_000_000
    yield seconds


def _login_hint() -> str:
    import os

    password = os.environ.get("COMMUNE_VISION_ADMIN_PASSWORD")
    user = os.environ.get("COMMUNE_VISION_ADMIN_USERNAME", "admin")
    if password and os.environ.get("COMMUNE_VISION_DEMO") == "1":
        return f"demo admin: {user} / {password}"
    return "users: commune-vision users create-admin"


@app.command()
def run(config: ConfigOption = None) -> None:
    """Run the whole service: embedded Valkey (unless REDIS_URL), pipeline and API."""
    _serve(config, "all", None)


WorkerIdOption = Annotated[
    str | None,
    typer.Option(
        "--worker-id",
        envvar="COMMUNE_VISION_WORKER_ID",
        help="this worker's name in the cluster; default: the host name",
    ),
]


@app.command()
def worker(config: ConfigOption = None, worker_id: WorkerIdOption = None) -> None:
    """Run the pipeline for the cameras this worker holds leases on.

    Workers share one Redis and one PostgreSQL (docs/deployment.md); start one per
    box and the cameras rebalance."""
    import socket

    _serve(config, "worker", worker_id or socket.gethostname())


@app.command()
def api(config: ConfigOption = None) -> None:
    """Run the API and the webhook dispatcher alone, in front of the workers."""
    _serve(config, "api", None)


def _serve(config: Path | None, role: str, worker_id: str | None) -> None:
    from commune_vision.supervisor import Supervisor, check_role

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(processName)s %(name)s %(levelname)s %(message)s"
    )
    path = config or demo_config_path()
    # The API opens no stream: only the pipeline needs the sources checked.
    cfg = _load_or_exit(path, check_sources=role != "api")
    try:
        check_role(cfg, role)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    supervisor = Supervisor(cfg, path, role, worker_id)
    try:
        supervisor.start()
    except Exception:
        supervisor.stop()
        raise
    if role == "worker":
        typer.echo(f"\ncommune-vision worker {worker_id} is running; Ctrl-C to stop.\n")
    else:
        typer.echo(_banner(cfg, path))
    sys.stdout.flush()
    supervisor.run_forever()


def _banner(cfg: AppConfig, path: Path) -> str:
    base = f"http://{cfg.server.host}:{cfg.server.port}"
    return (
        f"\ncommune-vision is running with {len(cfg.cameras)} camera(s) from {path}\n"
        f"  console:     {base}/\n"
        f"  incidents:   {base}/api/incidents\n"
        f"  cameras:     {base}/api/cameras\n"
        f"  live alerts: ws://{cfg.server.host}:{cfg.server.port}/api/alerts/ws\n"
        f"  API docs:    {base}/docs\n"
        f"  health:      {base}/healthz\n"
        f"  sign in:     POST {base}/api/auth/login ({_login_hint()})\n"
        "Press Ctrl-C to stop.\n"
    )


if __name__ == "__main__":
    app()
