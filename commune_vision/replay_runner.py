"""The what-if replay of recorded footage as the API runs it (``POST /api/replays``).

The API may not import the detector or the rules (GUIDE §2: nothing in ``api``
points up), so the composition root builds this runner and hands it to the app
(``processes.api_main``). The API's job thread calls it with two camera configs;
it cuts the window's footage from the recordings (``footage.recorded_clip``), runs
``replay.replay_video`` once for both (one detection per frame, two sets of rules)
and answers plain JSON in the shape of ``api.replay_schemas.ReplayResultOut``.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.config import AppConfig, CameraConfig

if TYPE_CHECKING:
    from commune_vision.replay import ReplayIncident, ReplayResult


class RecordedReplay:
    """Callable ``(candidate, current, since_ts, until_ts, progress) -> result``.

    Holds only the service's settings (detector model, storage, time zone); heavy
    modules (PyAV, OpenCV, the detector backend) load on the first replay, not when
    the API starts.
    """

    def __init__(self, config: AppConfig) -> None:
        self._config = config

    def __call__(
        self,
        candidate: CameraConfig,
        current: CameraConfig,
        since_ts: float,
        until_ts: float,
        progress: Callable[[float], None],
    ) -> dict[str, Any]:
        from commune_vision.footage import recorded_clip
        from commune_vision.replay import compare, replay_video
        from streams.clips import FootageMissing

        with tempfile.TemporaryDirectory(prefix="cv-replay-") as scratch:
            try:
                clip = recorded_clip(self._config, candidate.id, since_ts, until_ts, Path(scratch))
            except (FootageMissing, OSError) as exc:
                # The index listed footage the disk no longer has (retention ran).
                raise ValueError(
                    f"the recorded footage of camera {candidate.id!r} in this window cannot "
                    f"be read ({exc}); retention may have deleted it: pick a time the "
                    "footage timeline shows as recorded"
                ) from exc
            duration_s = max(clip.duration_s, 1e-6)
            result, base = replay_video(
                clip.path,
                self._config.model_copy(update={"cameras": [candidate]}),
                candidate.id,
                self._config.model_copy(update={"cameras": [current]}),
                progress=lambda t: progress(min(1.0, t / duration_s)),
                start_ts=clip.start_ts,  # real times: schedules see the real time of day
            )
        assert base is not None  # a baseline was given
        diff = compare(result, base)
        both = {id(i) for i in diff["both"]}
        only_current = {id(i) for i in diff["only_baseline"]}
        return {
            "footage_start_ts": clip.start_ts,
            "footage_end_ts": clip.end_ts,
            "segments": len(clip.segment_ids),
            "frames_decoded": result.frames_decoded,
            "frames_detected": result.frames_detected,
            "candidate": _side(
                result, clip.start_ts, lambda i: "both" if id(i) in both else "only_candidate"
            ),
            "current": _side(
                base,
                clip.start_ts,
                lambda i: "only_current" if id(i) in only_current else "both",
            ),
            "both": len(diff["both"]),
            "only_candidate": len(diff["only_candidate"]),
            "only_current": len(diff["only_baseline"]),
        }


def _side(
    result: ReplayResult, start_ts: float, match: Callable[[ReplayIncident], str]
) -> dict[str, Any]:
    """One config's incidents with wall-clock times (the console links each to the
    footage at that moment), and its counts per rule, type and traffic key."""
    incidents = [
        {
            "rule": i.rule,
            "type": i.type,
            "start_ts": round(start_ts + i.start_s, 3),
            "end_ts": None if i.end_s is None else round(start_ts + i.end_s, 3),
            "labels": i.labels,
            "zone": i.zone,
            "peak_score": i.peak_score,
            "match": match(i),
        }
        for i in result.incidents
    ]
    return {
        "incidents": incidents,
        "by_rule": dict(Counter(i.rule for i in result.incidents)),
        "by_type": dict(Counter(i.type for i in result.incidents)),
        "traffic": dict(result.counts),
    }
