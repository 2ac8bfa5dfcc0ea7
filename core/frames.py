"""Frames in shared memory; queues carry only ``FrameRef`` references.

Each camera owns one ring of fixed-size BGR slots.  The slot header holds the
sequence number of the frame in it, written *after* the pixels and cleared
*before* they change, so a reader can tell whether the frame it was sent is still
there (a seqlock).  When the ring wraps before a reader gets to a frame, the
reader gets ``None`` and counts a drop instead of reading torn pixels.  The header
also holds each slot's capture time, so a reader that only knows the ring (the
API's live preview) can take the newest frame with its time (``FrameReader.newest``).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace
from multiprocessing import shared_memory

import numpy as np
import numpy.typing as npt

from core.types import FrameRef

log = logging.getLogger(__name__)

_HEADER_BYTES_PER_SLOT = 16  # an int64 sequence number, then a float64 capture time
_EMPTY = -1


def _layout(slots: int, height: int, width: int) -> tuple[int, int]:
    header = slots * _HEADER_BYTES_PER_SLOT
    frame_bytes = height * width * 3
    return header, header + slots * frame_bytes


def _header_views(
    buf: memoryview, slots: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """The sequence numbers of every slot, then their capture times."""
    seqs: npt.NDArray[np.int64] = np.ndarray((slots,), np.int64, buf, 0)
    times: npt.NDArray[np.float64] = np.ndarray((slots,), np.float64, buf, slots * 8)
    return seqs, times


class FrameRing:
    """The writer side: owned by the camera reader, unlinked when it stops."""

    def __init__(self, camera_id: str, height: int, width: int, slots: int) -> None:
        self.camera_id = camera_id
        self.height = height
        self.width = width
        self.slots = slots
        header_bytes, total = _layout(slots, height, width)
        self._shm = shared_memory.SharedMemory(create=True, size=total)
        buf = self._shm.buf
        assert buf is not None
        self._seqs, self._times = _header_views(buf, slots)
        self._seqs[:] = _EMPTY
        self._frames: npt.NDArray[np.uint8] = np.ndarray(
            (slots, height, width, 3), np.uint8, buf, header_bytes
        )
        self._next_seq = 0

    @property
    def name(self) -> str:
        return self._shm.name

    def begin_write(self) -> npt.NDArray[np.uint8]:
        """The slot the next frame goes to, marked empty until ``commit``.

        A decoder resizes straight into it, so a frame is copied into shared
        memory once.
        """
        slot = self._next_seq % self.slots
        self._seqs[slot] = _EMPTY
        view: npt.NDArray[np.uint8] = self._frames[slot]
        return view

    def commit(self, capture_ts: float) -> FrameRef:
        seq = self._next_seq
        self._next_seq += 1
        slot = seq % self.slots
        self._times[slot] = capture_ts  # before the seq: a reader that sees the seq sees it
        self._seqs[slot] = seq
        return FrameRef(
            camera_id=self.camera_id,
            shm_name=self._shm.name,
            slot=slot,
            seq=seq,
            height=self.height,
            width=self.width,
            capture_ts=capture_ts,
        )

    def write(self, frame_bgr: npt.NDArray[np.uint8], capture_ts: float) -> FrameRef:
        if frame_bgr.shape != (self.height, self.width, 3):
            raise ValueError(
                f"frame shape {frame_bgr.shape} does not fit ring "
                f"({self.height}, {self.width}, 3) of camera {self.camera_id}"
            )
        np.copyto(self.begin_write(), frame_bgr)
        return self.commit(capture_ts)

    def close(self) -> None:
        # A reader that still maps the ring (the live preview) must see no frame in
        # it, not the last one forever: unlinking leaves existing mappings intact.
        self._seqs[:] = _EMPTY
        # Views into the buffer must go before the mapping can be closed.
        del self._seqs, self._times, self._frames
        try:
            self._shm.close()
        finally:
            with contextlib.suppress(FileNotFoundError):
                self._shm.unlink()


class _Attached:
    def __init__(self, ref: FrameRef, shm: shared_memory.SharedMemory) -> None:
        self.shm = shm
        slots = ring_slots_from_size(ref, shm.size)
        buf = self.shm.buf
        assert buf is not None
        header_bytes, _ = _layout(slots, ref.height, ref.width)
        self.seqs, self.times = _header_views(buf, slots)
        self.frames: npt.NDArray[np.uint8] = np.ndarray(
            (slots, ref.height, ref.width, 3), np.uint8, buf, header_bytes
        )

    def close(self) -> None:
        del self.seqs, self.times, self.frames
        self.shm.close()


def ring_slots_from_size(ref: FrameRef, size_bytes: int) -> int:
    """Recover the slot count of a ring from its segment size."""
    per_slot = ref.height * ref.width * 3 + _HEADER_BYTES_PER_SLOT
    return size_bytes // per_slot


class FrameReader:
    """The reader side: attaches to rings by name and caches the mappings."""

    def __init__(self) -> None:
        self._rings: dict[str, _Attached] = {}

    def _attach(self, ref: FrameRef) -> _Attached | None:
        ring = self._rings.get(ref.shm_name)
        if ring is not None:
            return ring
        try:
            shm = shared_memory.SharedMemory(name=ref.shm_name)
        except FileNotFoundError:
            return None  # the camera restarted and its old ring is gone
        # Attaching registers the name with the resource tracker again.  Every
        # process of the service shares the supervisor's tracker (spawn passes it
        # on), so this is a no-op there; the owner's unlink unregisters it once.
        ring = _Attached(ref, shm)
        self._rings[ref.shm_name] = ring
        return ring

    def view(self, ref: FrameRef) -> npt.NDArray[np.uint8] | None:
        """A zero-copy view of the frame, or None if it was overwritten or is gone.

        Callers that keep using the view must confirm with ``still_valid`` afterwards.
        """
        ring = self._attach(ref)
        if ring is None:
            return None
        if int(ring.seqs[ref.slot]) != ref.seq:
            return None
        view: npt.NDArray[np.uint8] = ring.frames[ref.slot]
        return view

    def still_valid(self, ref: FrameRef) -> bool:
        ring = self._rings.get(ref.shm_name)
        return ring is not None and int(ring.seqs[ref.slot]) == ref.seq

    def read(self, ref: FrameRef) -> npt.NDArray[np.uint8] | None:
        """A private copy of the frame, or None if it is no longer in the ring."""
        view = self.view(ref)
        if view is None:
            return None
        copy = view.copy()
        return copy if self.still_valid(ref) else None

    def newest(self, ref: FrameRef) -> tuple[FrameRef, npt.NDArray[np.uint8]] | None:
        """The newest frame in ``ref``'s ring (a private copy) and its reference.

        ``ref`` only names the ring: a preview needs the frame that is there now,
        not the one it was told about a second ago. None when the ring is gone
        (the camera restarted), holds no frame yet, or is rewritten under us.
        """
        ring = self._attach(ref)
        if ring is None:
            return None
        for _ in range(3):  # a writer lapping the newest slot while we copy: look again
            slot = int(np.argmax(ring.seqs))
            seq = int(ring.seqs[slot])
            if seq == _EMPTY:
                return None
            capture_ts = float(ring.times[slot])
            frame: npt.NDArray[np.uint8] = ring.frames[slot].copy()
            if int(ring.seqs[slot]) == seq:
                return replace(ref, slot=slot, seq=seq, capture_ts=capture_ts), frame
        return None

    def forget(self, shm_name: str) -> None:
        ring = self._rings.pop(shm_name, None)
        if ring is not None:
            ring.close()

    def close(self) -> None:
        for name in list(self._rings):
            self.forget(name)
