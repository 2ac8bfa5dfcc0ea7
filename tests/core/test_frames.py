"""Shared-memory frame ring: references, overwrite detection, cross-process reads."""

from __future__ import annotations

import multiprocessing as mp
from typing import Any

import numpy as np

from core.frames import FrameReader, FrameRing
from core.types import FrameRef


def _frame(value: int, h: int = 36, w: int = 64) -> np.ndarray:
    return np.full((h, w, 3), value, np.uint8)


def test_write_then_read_returns_a_copy() -> None:
    ring = FrameRing("cam", 36, 64, slots=4)
    reader = FrameReader()
    try:
        ref = ring.write(_frame(7), capture_ts=100.0)
        got = reader.read(ref)
        assert got is not None and int(got[0, 0, 0]) == 7
        ring.write(_frame(9), capture_ts=101.0)
        assert int(got[0, 0, 0]) == 7  # a private copy, not a view
    finally:
        reader.close()
        ring.close()


def test_overwritten_slot_reads_as_none() -> None:
    ring = FrameRing("cam", 36, 64, slots=4)
    reader = FrameReader()
    try:
        first = ring.write(_frame(1), 1.0)
        for i in range(4):  # wrap the ring once
            ring.write(_frame(2 + i), 2.0 + i)
        assert reader.read(first) is None
        assert reader.view(first) is None
    finally:
        reader.close()
        ring.close()


def test_ring_gone_reads_as_none() -> None:
    ring = FrameRing("cam", 36, 64, slots=4)
    ref = ring.write(_frame(1), 1.0)
    ring.close()
    assert FrameReader().read(ref) is None


def _child_read(ref: FrameRef, out: Any) -> None:
    frame = FrameReader().read(ref)
    out.put(None if frame is None else int(frame.sum()))


def test_another_process_reads_the_frame() -> None:
    ctx = mp.get_context("spawn")
    ring = FrameRing("cam", 36, 64, slots=4)
    try:
        ref = ring.write(_frame(3), 5.0)
        out = ctx.Queue()
        proc = ctx.Process(target=_child_read, args=(ref, out))
        proc.start()
        total = out.get(timeout=30)
        proc.join(timeout=30)
        assert total == 3 * 36 * 64 * 3
    finally:
        ring.close()


def test_newest_is_the_last_committed_frame_with_its_capture_time() -> None:
    ring = FrameRing("cam", 36, 64, slots=4)
    reader = FrameReader()
    try:
        first = ring.write(_frame(1), 10.0)
        for i in range(5):  # wraps: ``first`` itself was overwritten
            ring.write(_frame(2 + i), 11.0 + i)
        got = reader.newest(first)
        assert got is not None
        ref, pixels = got
        assert (ref.seq, ref.slot, ref.capture_ts) == (5, 5 % 4, 15.0)
        assert int(pixels[0, 0, 0]) == 6
        ring.write(_frame(9), 16.0)
        assert int(pixels[0, 0, 0]) == 6  # a private copy
    finally:
        reader.close()
        ring.close()


def test_a_closed_ring_shows_no_frame_to_a_reader_that_still_maps_it() -> None:
    ring = FrameRing("cam", 36, 64, slots=4)
    reader = FrameReader()
    try:
        ref = ring.write(_frame(4), 1.0)
        assert reader.newest(ref) is not None  # mapped now
        ring.close()  # unlinked; the reader's mapping lives on
        assert reader.newest(ref) is None
        assert reader.read(ref) is None
    finally:
        reader.close()
