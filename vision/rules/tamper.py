"""Tamper: lens covered or black, defocused, camera moved, image frozen.

No model: a few statistics of a small grey copy of the frame, computed at most
every ``check_every_s`` of frame time (``ctx.image()`` costs a copy, so it is
only called when a check is due).  Each kind of tampering that persists for
``min_duration_s`` opens one incident for the camera (key ``tamper:<kind>``); it
closes once the condition has been gone for ``min_duration_s`` too.

- **covered**: the picture is black (mean grey below ``dark_level`` *and* fewer
  than 1 % of its pixels reach ``dark_level``) or uniform (grey spread below
  ``FLAT_STD``: cap, tape, paint, a torch in the lens).  The mean alone is not
  enough: a dark night scene (``night_person_garages.mp4``: mean grey 4.7, up
  to 28 when a light comes on) still has at least 6 % of its pixels at 20 or
  more around its lamps, and a grey spread of at least 7.3.
- **blur**: sharpness — mean |Laplacian| over the grey spread, on a 320 px wide
  float copy — below ``blur_ratio`` × this camera's normal sharpness.  Dividing by
  the spread makes it indifferent to exposure and lighting, which scale both
  (measured: x1.00 for a contrast of 0.5 or 0.7).  Normal is learned (see
  ``_Baseline``): the median of the first ``LEARN_CHECKS`` checks (provisional
  from the second), then an exponential average over ``BASELINE_TAU_S`` fed only
  by checks where nothing is wrong, so it follows dusk and dawn but not a
  tampered camera.
- **moved**: a 160 px grey reference (the running average of normal checks over
  ``REFERENCE_TAU_S``, so passing traffic fades out of it) is compared tile by
  tile (4 x 4, normalised correlation of the high-passed images) with the
  current picture.  The share of tiles that match has a learned normal level
  too; when it falls below ``LOST_VIEW`` of it, phase correlation
  (``cv2.phaseCorrelate``) looks for the shift: if the picture matches the
  reference again once shifted, the camera moved by that shift, which counts
  from ``moved_ratio`` of the image width or height; if it matches nowhere, the
  view was turned, zoomed or re-aimed.  A scene whose tiles do not match even in
  normal times (a crowd filling the picture) has the check switched off.
- **frozen**: the picture is bit-identical (as a float 320 px grey copy, where
  sensor noise always shows) from check to check for ``max(min_duration_s,
  FROZEN_MIN_S)``.  A live sensor never repeats a picture exactly, even on a
  static scene at night, but an encoder may code a static picture as "nothing
  changed" until the next key frame, so the minimum spans two key-frame intervals
  at common defaults.  Behind the motion gate a frozen camera is checked every
  ``refresh_s`` (3 s): it opens 6-9 s after the freeze.

While any condition is present or an incident is open, neither the reference
nor the baselines adapt, so the rule never learns a tampered camera as normal;
a camera that was permanently re-aimed therefore keeps its ``moved`` incident
open until its configuration is reloaded (a new rule learns the new view).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from core.rule_config import TamperRule as TamperConfig
from vision.rules.base import EPS_S, FrameContext, RuleEvent, in_schedule

Kind = Literal["covered", "blur", "moved", "frozen"]
KINDS: tuple[Kind, ...] = ("covered", "blur", "moved", "frozen")
FloatImage = npt.NDArray[np.float32]

SMALL_W = 320  # sharpness, brightness, frozen: fine detail still visible
TINY_W = 160  # view comparison: cheap, and sensor noise averaged out
FLAT_STD = 3.0  # grey spread of a uniform picture; lowest measured in a real scene: 7.3
DARK_LIT_SHARE = 0.01  # a black picture has (almost) nothing at or above dark_level
LEARN_CHECKS = 5  # checks that set the first sharpness and view-match levels
PROVISIONAL_CHECKS = 2  # ... of which these give a provisional level
BASELINE_TAU_S = 600.0  # normal sharpness and view match follow slow change only
REFERENCE_TAU_S = 30.0  # the reference forgets passing vehicles, follows parked ones
FROZEN_MIN_S = 6.0  # twice the 2-3 s key-frame interval IP cameras default to
GRID = 4  # tiles per side for the view match
HIGH_PASS_SIGMA = 4.0  # tiny pixels: keeps edges, drops lighting gradients
TILE_TEXTURE = 1.0  # grey spread of a reference tile worth comparing
TILE_MATCH = 0.3  # correlation of a tile that still shows the same thing
MIN_TILES = 4  # fewer textured tiles: the view cannot be judged
LOST_VIEW = 0.5  # tiles matching, as a share of normal, below which the view changed
MIN_VIEW_BASELINE = 0.5  # normal share below this: too busy a scene to judge
FOUND_SHARE = 0.5  # once shifted, this share of the normal match = view found


@dataclass(slots=True)
class _Frame:
    mean: float
    std: float
    lit_share: float
    sharpness: float
    small: FloatImage  # for the frozen test
    tiny: FloatImage  # for the reference


@dataclass(slots=True)
class _Baseline:
    """A camera's normal level of a measure: median of the first checks, then slow EMA.

    A provisional level (the median so far) is available from PROVISIONAL_CHECKS on,
    so tampering during the warm-up is caught instead of being learned as normal.
    """

    first: list[float] = field(default_factory=list)
    learned: float | None = None

    @property
    def value(self) -> float | None:
        if self.learned is not None:
            return self.learned
        return float(np.median(self.first)) if len(self.first) >= PROVISIONAL_CHECKS else None

    def update(self, x: float, dt: float) -> None:
        if self.learned is None:
            self.first.append(x)
            if len(self.first) >= LEARN_CHECKS:
                self.learned = float(np.median(self.first))
            return
        self.learned += (x - self.learned) * min(1.0, max(dt, 0.0) / BASELINE_TAU_S)


@dataclass(slots=True)
class _Check:
    """What one check found: conditions present, and which kinds it could judge."""

    found: dict[Kind, dict[str, float | str]] = field(default_factory=dict)
    judged: set[Kind] = field(default_factory=lambda: {"covered"})
    view_match: float | None = None


@dataclass(slots=True)
class _Condition:
    since: float | None = None  # first check it was seen (without a break)
    clear_since: float | None = None  # first check it was gone, while open
    open_since: float | None = None
    cooldown_until: float = 0.0
    details: dict[str, float | str] = field(default_factory=dict)


def measure(image: npt.NDArray[np.uint8], dark_level: float) -> _Frame:
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    h, w = grey.shape
    if w > 2 * SMALL_W:  # a 1080p ring: shrink in uint8 first, 9x less to convert
        grey = cv2.resize(
            grey, (2 * SMALL_W, round(2 * SMALL_W * h / w)), interpolation=cv2.INTER_AREA
        )
    # Float from here: in a dark scene uint8 rounding alone makes fake edges.
    size = (SMALL_W, max(1, round(SMALL_W * h / w)))
    small = np.asarray(
        cv2.resize(grey.astype(np.float32), size, interpolation=cv2.INTER_AREA), np.float32
    )
    size = (TINY_W, max(1, round(TINY_W * h / w)))
    tiny = np.asarray(cv2.resize(small, size, interpolation=cv2.INTER_AREA), np.float32)
    mean_a, std_a = cv2.meanStdDev(small)
    mean, std = float(mean_a[0, 0]), float(std_a[0, 0])
    lit_share = float(np.count_nonzero(small >= dark_level)) / small.size
    lap = cv2.Laplacian(small, cv2.CV_32F)
    sharpness = float(np.mean(np.abs(lap))) / max(std, 1.0)
    return _Frame(mean, std, lit_share, sharpness, small, tiny)


def _high_pass(tiny: FloatImage) -> FloatImage:
    out: FloatImage = tiny - cv2.GaussianBlur(tiny, (0, 0), HIGH_PASS_SIGMA)
    return out


def tile_match(ref_hp: FloatImage, cur_hp: FloatImage) -> float | None:
    """Share of the textured GRID x GRID tiles whose correlation is at least TILE_MATCH."""
    h, w = ref_hp.shape
    th, tw = h // GRID, w // GRID
    if th < 4 or tw < 4:
        return None

    def tiles(img: FloatImage) -> FloatImage:
        blocks = img[: th * GRID, : tw * GRID].reshape(GRID, th, GRID, tw).transpose(0, 2, 1, 3)
        flat = blocks.reshape(GRID * GRID, th * tw)
        out: FloatImage = flat - flat.mean(axis=1, keepdims=True)
        return out

    a, b = tiles(ref_hp), tiles(cur_hp)
    sa, sb = np.sqrt((a * a).mean(axis=1)), np.sqrt((b * b).mean(axis=1))
    textured = sa >= TILE_TEXTURE
    if int(textured.sum()) < MIN_TILES:
        return None
    ncc = (a * b).mean(axis=1) / (sa * sb + 1e-6)
    return float(np.count_nonzero(ncc[textured] >= TILE_MATCH)) / int(textured.sum())


@functools.cache
def _hanning(width: int, height: int) -> FloatImage:
    return np.asarray(cv2.createHanningWindow((width, height), cv2.CV_32F), np.float32)


def find_shift(ref: FloatImage, cur: FloatImage) -> tuple[float, float, float | None]:
    """(dx, dy) of the content of ``cur`` against ``ref`` in pixels, and the tile match
    of the overlap once aligned (None when the overlap is too small to judge)."""
    window = _hanning(ref.shape[1], ref.shape[0])
    # OpenCV 5.0 applies the window to its inputs in place: hand it copies.
    (dx, dy), _ = cv2.phaseCorrelate(ref.copy(), cur.copy(), window)
    h, w = ref.shape
    ix, iy = round(dx), round(dy)
    if abs(ix) >= w // 2 or abs(iy) >= h // 2:
        return dx, dy, None
    # ref[y, x] ~ cur[y + dy, x + dx]: compare the overlap.
    r = ref[max(0, -iy) : h - max(0, iy), max(0, -ix) : w - max(0, ix)]
    c = cur[max(0, iy) : h - max(0, -iy), max(0, ix) : w - max(0, -ix)]
    return dx, dy, tile_match(_high_pass(r), _high_pass(c))


class TamperRule:
    rule_type = "tamper"

    def __init__(self, config: TamperConfig) -> None:
        self.config = config
        self.name = config.name
        self._conditions: dict[Kind, _Condition] = {k: _Condition() for k in KINDS}
        self._last_check_ts: float | None = None
        self._reset_learning()

    def _reset_learning(self) -> None:
        self._prev: _Frame | None = None
        self._prev_ts = 0.0
        self._reference: FloatImage | None = None
        self._reference_updates = 0
        self._sharpness = _Baseline()
        self._view = _Baseline()
        self._last_learn_ts: float | None = None

    def update(self, ctx: FrameContext) -> list[RuleEvent]:
        ts = ctx.ts
        last = self._last_check_ts
        if last is not None and ts - last < self.config.check_every_s - EPS_S:
            return []
        image = ctx.image()
        if image is None:  # the ring slot was overwritten: try the next frame
            return []
        self._last_check_ts = ts
        frame = measure(image, self.config.dark_level)
        if self._prev is not None and self._prev.small.shape != frame.small.shape:
            self._reset_learning()  # the stream changed resolution: learn it again
        check = self._evaluate(frame)
        events = self._decide(check, ts, in_schedule(self.config.schedule, ctx.local_day_s))
        if not check.found and all(c.open_since is None for c in self._conditions.values()):
            self._learn(frame, ts, check.view_match)
        self._prev, self._prev_ts = frame, ts
        return events

    def _evaluate(self, frame: _Frame) -> _Check:
        cfg = self.config
        check = _Check()
        black = frame.mean < cfg.dark_level and frame.lit_share < DARK_LIT_SHARE
        if black or frame.std < FLAT_STD:
            # Nothing else can be judged on a blank picture (and it is "frozen" too).
            check.found["covered"] = {
                "mean_grey": round(frame.mean, 1),
                "grey_std": round(frame.std, 1),
            }
            return check
        check.judged.add("frozen")
        if self._prev is not None and np.array_equal(self._prev.small, frame.small):
            check.found["frozen"] = {}
        normal_sharpness = self._sharpness.value
        if normal_sharpness is not None:
            check.judged.add("blur")
            ratio = frame.sharpness / max(normal_sharpness, 1e-6)
            if ratio < cfg.blur_ratio:
                check.found["blur"] = {"sharpness_ratio": round(ratio, 3)}
                return check  # a blurred picture matches no reference: moved cannot be judged
        if self._reference is not None:
            check.view_match = tile_match(_high_pass(self._reference), _high_pass(frame.tiny))
            moved = self._moved(frame, check)
            if moved is not None:
                check.found["moved"] = moved
        return check

    def _moved(self, frame: _Frame, check: _Check) -> dict[str, float | str] | None:
        ref, normal, match = self._reference, self._view.value, check.view_match
        if ref is None or normal is None or normal < MIN_VIEW_BASELINE:
            return None  # still learning, or a scene too busy to judge
        check.judged.add("moved")
        if match is None or match >= LOST_VIEW * normal:
            return None
        dx, dy, aligned = find_shift(ref, frame.tiny)
        h, w = ref.shape
        shift = max(abs(dx) / w, abs(dy) / h)
        details: dict[str, float | str] = {"view_match": round(match, 2)}
        if aligned is not None and aligned >= FOUND_SHARE * normal:
            if shift < self.config.moved_ratio:
                return None  # a small nudge: the reference will follow it
            return {**details, "shift": round(shift, 3)}
        return details  # matches nowhere: turned, zoomed or re-aimed

    def _learn(self, frame: _Frame, ts: float, view_match: float | None) -> None:
        """Follow a camera that is fine: sharpness, reference picture, normal view match."""
        dt = 0.0 if self._last_learn_ts is None else ts - self._last_learn_ts
        self._last_learn_ts = ts
        self._sharpness.update(frame.sharpness, dt)
        if self._reference is None:
            self._reference = frame.tiny.copy()
            self._reference_updates = 1
            return
        if view_match is not None:
            self._view.update(view_match, dt)
        # A plain mean of the first pictures, then an exponential average in time.
        alpha = max(1.0 / (self._reference_updates + 1), min(1.0, dt / REFERENCE_TAU_S))
        cv2.accumulateWeighted(frame.tiny, self._reference, alpha)
        self._reference_updates += 1

    def _decide(self, check: _Check, ts: float, active: bool) -> list[RuleEvent]:
        cfg = self.config
        events: list[RuleEvent] = []
        for kind in KINDS:
            cond = self._conditions[kind]
            if kind not in check.judged:
                continue  # e.g. moved while covered: its state stays as it is
            details = check.found.get(kind)
            if details is not None:
                cond.clear_since = None
                cond.details = details
                if cond.since is None:
                    # Frozen since the previous check, which showed the same picture.
                    cond.since = self._prev_ts if kind == "frozen" else ts
                if kind == "frozen":
                    cond.details = {"frozen_s": round(ts - cond.since, 1)}
                need = cfg.min_duration_s
                if kind == "frozen":
                    need = max(need, FROZEN_MIN_S)
                due = ts - cond.since >= need - EPS_S and ts >= cond.cooldown_until - EPS_S
                if cond.open_since is None and active and due:
                    cond.open_since = cond.since
                    events.append(self._event("opened", kind, cond, ts))
                continue
            cond.since = None
            if cond.open_since is None:
                continue
            if cond.clear_since is None:
                cond.clear_since = ts
            if ts - cond.clear_since >= cfg.min_duration_s - EPS_S:
                events.append(self._event("closed", kind, cond, ts))
                cond.open_since = None
                cond.clear_since = None
                cond.cooldown_until = ts + cfg.cooldown_s
        return events

    def _event(self, kind: str, tamper: Kind, cond: _Condition, ts: float) -> RuleEvent:
        return RuleEvent(
            kind="opened" if kind == "opened" else "closed",
            rule_name=self.config.name,
            rule_type=self.rule_type,
            key=f"tamper:{tamper}",
            track_ids=(),
            label="",
            score=1.0,  # a measurement, not a detection: no confidence to report
            start_ts=cond.open_since if cond.open_since is not None else ts,
            ts=ts,
            zone=None,
            xyxy=None,  # the whole picture
            details={"kind": tamper, **cond.details},
        )
