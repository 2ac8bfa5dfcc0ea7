"""Entry points of the child processes. Each is a thin shell around a testable class.

Every child ignores SIGINT (the supervisor owns Ctrl-C), stops when the shared
``stop`` event is set, and stops by itself if the supervisor disappears.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from commune_vision.ownership import CameraOwnership
from commune_vision.stopflag import StopFlag
from core.bus import EventBus
from core.config import AppConfig, CameraConfig
from core.frames import FrameReader
from core.types import CameraState, FrameRef, StoreEvent

log = logging.getLogger(__name__)

HEALTH_PUBLISH_S = 1.0


def _set_os_process_name(name: str) -> None:
    """Show the stage's name in ps/top/psutil (Linux comm, 15 bytes), not just "python"."""
    try:
        libc = ctypes.CDLL(None)
        libc.prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


def setup_child(stop: StopFlag, level: int = logging.INFO) -> None:
    _set_os_process_name(multiprocessing.current_process().name)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop.stop_on_sigterm()
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(processName)s %(name)s %(levelname)s %(message)s",
    )
    parent = os.getppid()

    def watch_parent() -> None:
        while not stop.is_set():
            if os.getppid() != parent:
                log.warning("supervisor is gone; stopping")
                stop.set()
                return
            time.sleep(0.5)

    threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()


def _put_or_drop(q: Any, item: object) -> bool:
    try:
        q.put_nowait(item)
    except queue.Full:
        return False
    return True


def _follow_config(engine_url: str, listener: Any) -> Callable[[], list[CameraConfig] | None]:
    """A poll function: the newest camera list when a new version was announced."""
    from core.storage.config_store import ConfigStore
    from core.storage.db import make_engine

    store = ConfigStore(make_engine(engine_url))

    def poll() -> list[CameraConfig] | None:
        if listener.poll() is None:
            return None
        latest = store.latest()
        return latest.cameras if latest is not None else None

    return poll


def ingest_main(
    config: AppConfig,
    frames_q: Any,
    events_q: Any,
    stop: StopFlag,
    redis_url: str,
    worker_id: str | None = None,
) -> None:
    """Camera readers, a thread per camera: PyAV releases the GIL while decoding.

    With ``worker_id`` (``commune-vision worker``) only the cameras this worker holds
    leases on run (commune_vision/ownership.py)."""
    setup_child(stop)
    from streams.backpressure import Backpressure
    from streams.manager import CameraManager

    bus = EventBus(redis_url)
    changes: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()

    def on_state(camera_id: str, old: CameraState, new: CameraState, error: str | None) -> None:
        # Reader threads only enqueue: a slow Redis must never stall a decoder.
        changes.put(
            {
                "camera_id": camera_id,
                "from": old.value,
                "to": new.value,
                "error": error,
                "ts": time.time(),
            }
        )

    from commune_vision.gating import ActivityBoard, gate_for
    from commune_vision.offline import OfflineWatch
    from commune_vision.recording import RecorderFactory

    activity = ActivityBoard()
    backpressure = Backpressure()  # each camera's rate follows what the detector takes
    recorders = RecorderFactory(config.storage.resolved_recordings_dir)
    manager = CameraManager(
        lambda ref: _put_or_drop(frames_q, ref),
        on_state,
        packet_sinks=recorders.sinks_for,
        gate_factory=lambda camera: gate_for(camera, activity),
    )
    db_url = config.storage.resolved_database_url
    owner = _ownership(config, redis_url, worker_id)
    all_cameras = config.cameras
    manager.apply(owner.select(all_cameras))
    owner.handed_over()
    offline = OfflineWatch(events_q.put, _open_offline(db_url))
    new_cameras = _follow_config(db_url, bus.config_listener())
    while not stop.wait(min(HEALTH_PUBLISH_S, config.cluster.heartbeat_s)):
        if (cameras := new_cameras()) is not None:
            all_cameras = cameras
        added, _changed, removed = manager.apply(owner.select(all_cameras))
        if removed:
            bus.remove_health(removed)
            offline.forget(removed)
        owner.handed_over()  # their readers and recorders have stopped
        if added and worker_id is not None:
            offline.adopt({c: i for c, i in _open_offline(db_url).items() if c in added})
        manager.watchdog()
        offline.check(((r.camera, r.health) for r in manager.readers()), time.time())
        activity.update(bus.read_activity())
        admit = backpressure.update(bus.read_stats("detector"), manager.admission())
        manager.set_admit_fps(admit)
        bus.publish_stats("ingest", backpressure.stats())
        bus.publish_health(manager.health())
        bus.publish_latest_frames(manager.latest_frames())  # the API's live preview
        while not changes.empty():
            bus.publish_event("camera_state", changes.get())
        recorders.drain(events_q.put, bus.publish_event)
    manager.stop_all()
    owner.leave()  # after the recorders closed their segments: others may start now
    bus.publish_latest_frames({})  # the rings are unlinked: nothing left to preview
    recorders.drain(events_q.put, bus.publish_event)  # the segments closed while stopping
    bus.close()


def _ownership(config: AppConfig, redis_url: str, worker_id: str | None) -> CameraOwnership:
    from commune_vision.ownership import AllCameras, LeasedCameras

    if worker_id is None:
        return AllCameras()
    return LeasedCameras(redis_url, worker_id, config.cluster)


def detector_main(
    config: AppConfig, frames_q: Any, results_q: Any, stop: StopFlag, redis_url: str
) -> None:
    setup_child(stop)
    from models.registry import resolve_model
    from vision.detector.backend import create_backend
    from vision.detector.detector import Detector
    from vision.detector.service import DetectorService

    cfg = config.detector
    backend = create_backend(
        cfg.backend, resolve_model(cfg.model), cfg.device, cfg.input_hw, cfg.max_batch
    )
    detector = Detector(backend, cfg.confidence_threshold, cfg.iou_threshold, cfg.tile_grid)
    frames = FrameReader()
    bus = EventBus(redis_url)

    def sink(ref: FrameRef, dets: object) -> None:
        # Analytics drains results in a tight loop; blocking here is back-pressure.
        results_q.put((ref, dets))

    service = DetectorService(
        detector,
        frames,
        sink,
        cfg.max_wait_ms,
        cfg.per_camera_queue,
        cfg.per_camera_batch,
        cfg.mosaic,
        cfg.max_frame_age_ms,
    )
    service.run(frames_q, stop, lambda stats: bus.publish_stats("detector", stats.to_json_dict()))
    bus.close()
    frames.close()


def analytics_main(
    config: AppConfig,
    results_q: Any,
    events_q: Any,
    stop: StopFlag,
    redis_url: str,
    worker: bool = False,
) -> None:
    setup_child(stop)
    from commune_vision.analytics import CameraAnalytics
    from commune_vision.orphans import OrphanSweeps

    frames = FrameReader()
    bus = EventBus(redis_url)
    tz = ZoneInfo(config.timezone)

    def emit(event: StoreEvent) -> None:
        # Incidents are never dropped: wait for the writer rather than lose one.
        events_q.put(event)

    def build(
        cameras: list[CameraConfig], keep: dict[str, CameraAnalytics]
    ) -> dict[str, CameraAnalytics]:
        # Cameras whose stream settings are unchanged keep their tracker and ids;
        # new zones, rules and thresholds apply to them live.
        out: dict[str, CameraAnalytics] = {}
        for c in cameras:
            if not c.enabled:
                continue
            old = keep.get(c.id)
            if old is not None and old.camera.stream_settings() == c.stream_settings():
                old.reconfigure(c)
                out[c.id] = old
            else:
                out[c.id] = CameraAnalytics(c, frames, emit, tz)
        return out

    analytics = build(config.cameras, {})
    new_cameras = _follow_config(config.storage.resolved_database_url, bus.config_listener())
    next_poll = time.monotonic() + 1.0
    # Incidents a killed predecessor left open (orphans.py). A worker looks camera by
    # camera, when one it took over starts sending frames: the others' cameras are
    # not its business.
    sweeps = OrphanSweeps(ORPHAN_SWEEPS_S, per_camera=worker)
    while not stop.is_set():
        if time.monotonic() >= next_poll:
            next_poll = time.monotonic() + 1.0
            for since_ts, camera_ids in sweeps.due(time.monotonic()):
                _close_orphans(config, emit, since_ts, analytics, camera_ids)
            cameras = new_cameras()
            if cameras is not None:
                previous = analytics
                analytics = build(cameras, analytics)
                for camera_id, old in previous.items():
                    if analytics.get(camera_id) is not old:
                        old.close_open(old.last_ts or time.time())
            # A worker publishes only the cameras it is being sent: one handed over
            # would otherwise overwrite its new holder's fresh values with stale ones.
            live = {
                i: a
                for i, a in analytics.items()
                if not worker or time.time() - a.last_ts < SERVED_RECENTLY_S
            }
            bus.publish_activity(
                {i: a.moving_until_ts for i, a in live.items() if a.moving_until_ts}
            )
            bus.publish_latest_detections(  # the console's threshold preview
                {i: d for i, a in live.items() if (d := a.latest_detections()) is not None}
            )
            for camera_analytics in analytics.values():
                camera_analytics.flush_counts()
        try:
            ref, dets = results_q.get(timeout=0.2)
        except queue.Empty:
            continue
        camera = analytics.get(ref.camera_id)
        if camera is not None:
            sweeps.saw(ref.camera_id, time.monotonic(), time.time())
            camera.on_detections(ref, dets)
    for camera_analytics in analytics.values():
        # Nothing counted is lost, and no incident stays open, on a clean stop.
        camera_analytics.close_open(camera_analytics.last_ts or time.time())
    frames.close()
    bus.close()


# After start, when the writer has stored what a killed predecessor had sent, and
# again later in case the writer was behind.
ORPHAN_SWEEPS_S = (5.0, 60.0)
SERVED_RECENTLY_S = 10.0


def _open_offline(database_url: str) -> dict[str, str]:
    from commune_vision.orphans import open_offline_incidents
    from core.storage.db import make_engine

    try:
        return open_offline_incidents(make_engine(database_url))
    except Exception:
        log.exception("open camera_offline incidents could not be read; none adopted")
        return {}


def _close_orphans(
    config: AppConfig,
    emit: Callable[[StoreEvent], None],
    started_ts: float,
    analytics: Any,
    camera_ids: tuple[str, ...] | None,
) -> None:
    from commune_vision.orphans import close_orphaned_incidents
    from core.storage.db import make_engine

    known = [i for a in analytics.values() for i in a.open_incident_ids]
    cameras = [a.camera for a in analytics.values()]
    engine = make_engine(config.storage.resolved_database_url)
    try:
        close_orphaned_incidents(
            engine, emit, started_ts, known, cameras, time.time(), only_cameras=camera_ids
        )
    except Exception:
        log.exception("incidents left open by a stopped analytics could not be closed")
    finally:
        engine.dispose()


def webhooks_main(config: AppConfig, stop: StopFlag, redis_url: str) -> None:
    """Webhook deliveries from the incident stream: a process of its own so a slow
    or dead receiver never delays the writer or the API (commune_vision/webhooks.py)."""
    setup_child(stop)
    from commune_vision.webhooks import run_webhooks

    run_webhooks(config.storage.resolved_database_url, redis_url, stop)


def api_main(config: AppConfig, redis_url: str, stop: StopFlag) -> None:
    """The API, loaded by name: nothing imports ``api`` (GUIDE §2). This composition
    root hands it what only it can build: the what-if replay runner (detector, tracker
    and rules over recorded footage), which ``api`` may not import."""
    setup_child(stop)
    import importlib

    import uvicorn

    from commune_vision.replay_runner import RecordedReplay

    os.environ["DATABASE_URL"] = config.storage.resolved_database_url
    os.environ["REDIS_URL"] = redis_url
    os.environ["COMMUNE_VISION_MEDIA_ROOT"] = str(config.storage.data_dir.resolve())
    os.environ["COMMUNE_VISION_RECORDINGS_DIR"] = str(config.storage.resolved_recordings_dir)
    app_from_env = importlib.import_module("api.app").app_from_env
    server = uvicorn.Server(
        uvicorn.Config(
            app_from_env(replay_runner=RecordedReplay(config)),
            host=config.server.host,
            port=config.server.port,
            log_level="warning",
            lifespan="on",
        )
    )

    def stop_server() -> None:
        stop.wait()
        server.should_exit = True

    threading.Thread(target=stop_server, name="api-stop", daemon=True).start()
    server.run()
