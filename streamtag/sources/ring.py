"""The ring buffer between the audio thread (PortAudio's callback) and the consumer that drains it."""

from __future__ import annotations

import threading
from collections import deque

import numpy as np


class RingBuffer:
    """A bounded FIFO of frames shared by one writer thread (the audio callback) and one reader.

    It holds at most ``capacity_frames`` unread frames: when a write would pass that, the oldest frames go and
    ``write`` returns how many (live audio is only useful while it is recent; the source adds them to its
``CaptureStats``, the one count). ``write`` never waits on
    the reader for more than a few list operations: the frames are held as the copied blocks they arrived in,
    ``read`` takes all of them out under the lock and joins them only after releasing it.
    """

    def __init__(self, *, capacity_frames: int, channels: int) -> None:
        if capacity_frames <= 0 or channels <= 0:
            raise ValueError("capacity_frames and channels must be positive")
        self.capacity_frames = capacity_frames
        self.channels = channels
        self._blocks: deque[np.ndarray] = deque()  # unread frames, oldest block first
        self._pending_frames = 0  # frames in _blocks
        self._lock = threading.Lock()

    @property
    def available(self) -> int:
        with self._lock:
            return self._pending_frames

    def write(self, block: np.ndarray) -> int:
        """Copy ``block`` (frames, channels) in; return how many old frames were dropped to make room."""
        n = len(block)
        if n == 0:
            return 0
        skipped = max(0, n - self.capacity_frames)  # a block longer than the buffer keeps only its newest frames
        # PortAudio reuses its buffer after the callback returns: copy it, before taking the lock
        kept = np.empty((n - skipped, self.channels), dtype=np.float32)
        kept[:] = block[skipped:]
        with self._lock:
            dropped = max(0, self._pending_frames + n - self.capacity_frames)
            to_trim = dropped - skipped  # the skipped frames were never stored; the rest go from the oldest blocks
            self._pending_frames -= to_trim
            while to_trim:
                oldest = self._blocks[0]
                if len(oldest) <= to_trim:
                    self._blocks.popleft()
                    to_trim -= len(oldest)
                else:
                    self._blocks[0] = oldest[to_trim:]
                    to_trim = 0
            self._blocks.append(kept)
            self._pending_frames += len(kept)
        return dropped

    def read(self) -> np.ndarray:
        """All unread frames, oldest first, as a new (frames, channels) array."""
        with self._lock:
            blocks, self._blocks = self._blocks, deque()
            self._pending_frames = 0
        if not blocks:
            return np.zeros((0, self.channels), dtype=np.float32)
        return np.concatenate(blocks)
