"""Frames in shared memory; queues carry only ``FrameRef`` references.

Each camera owns one ring of fixed-size BGR slots.  The slot header holds the
sequence number of the frame in it, written *after* the pixels and cleared
*before* they change, so a reader can tell whether the frame it was sent is still
there (a seqlock).  When the ring wraps before a reader gets to a frame, the
reader gets ``None`` and counts a drop instead of reading torn pixels.
"""

from __future__ import annotations

import contextlib
import logging
from multiprocessing import shared_memory

import numpy as np
import numpy.typing as npt

from core.types import FrameRef

log = logging.getLogger(__name__)

_HEADER_BYTES_PER_SLOT = 8  # one int64 sequence number
_EMPTY = -1


def _layout(slots: int, height: int, width: int) -> tuple[int, int]:
    header = slots * _HEADER_BYTES_PER_SLOT
    frame_bytes = height * width * 3
    return header, header + slots * frame_bytes


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
        self._seqs: npt.NDArray[np.int64] = np.ndarray((slots,), np.int64, buf, 0)
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
        # Views into the buffer must go before the mapping can be closed.
        del self._seqs, self._frames
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
        self.seqs: npt.NDArray[np.int64] = np.ndarray((slots,), np.int64, buf, 0)
        self.frames: npt.NDArray[np.uint8] = np.ndarray(
            (slots, ref.height, ref.width, 3), np.uint8, buf, header_bytes
        )

    def close(self) -> None:
        del self.seqs, self.frames
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

    def forget(self, shm_name: str) -> None:
        ring = self._rings.pop(shm_name, None)
        if ring is not None:
            ring.close()

    def close(self) -> None:
        for name in list(self._rings):
            self.forget(name)
