"""Sliding windows over a growing stream of samples: pure bookkeeping, independent of chunk sizes.

Window ``k`` covers stream samples ``[k * hop, k * hop + window)``. Its position depends only on ``k``, never on
how the stream was chunked, which is what makes live and offline tagging agree.
"""

from __future__ import annotations

import numpy as np


def window_starts(*, n_samples: int, window_samples: int, hop_samples: int) -> np.ndarray:
    """Start indices of every complete window in a stream of ``n_samples``: ``1 + (n - window) // hop`` of them."""
    if n_samples < window_samples:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n_samples - window_samples + 1, hop_samples, dtype=np.int64)


class SlidingWindows:
    """Accepts chunks of any size and returns every window completed by each chunk.

    Keeps only the samples a future window can still need (at most ``window + hop`` between calls), so memory
    stays bounded on endless streams. Chunks are only joined when a window is due, once per window: at a 0.5 s
    hop and 20 ms blocks each sample is copied about window / hop = 6 times, not once per block. The windows are
    read-only views of the joined samples (which nothing writes to again), not copies.
    """

    def __init__(self, *, window_samples: int, hop_samples: int) -> None:
        if window_samples <= 0 or hop_samples <= 0:
            raise ValueError(f"window and hop must be positive, got {window_samples} and {hop_samples}")
        self.window_samples = window_samples
        self.hop_samples = hop_samples
        self.reset()

    def reset(self) -> None:
        self._buffer = np.zeros(0, dtype=np.float32)
        self._pending: list[np.ndarray] = []  # chunks since the last window, not yet joined to the buffer
        self._buffer_start = 0  # stream index of self._buffer[0]
        self._next_start = 0  # stream index where the next window starts
        self.samples_seen = 0

    def push(self, samples: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Append ``samples`` (1-D float) and return ``(start_sample, window)`` for each window now complete."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if samples.size:
            self._pending.append(samples.copy())  # the caller may reuse its array
        self.samples_seen += samples.size
        if self._next_start + self.window_samples > self.samples_seen:
            return []
        buffer = self._joined()
        windows = []
        while self._next_start + self.window_samples <= self.samples_seen:
            offset = self._next_start - self._buffer_start
            windows.append((self._next_start, buffer[offset : offset + self.window_samples]))
            self._next_start += self.hop_samples
        drop = min(self._next_start - self._buffer_start, buffer.size)
        self._buffer = buffer[drop:]
        self._buffer_start += drop
        return windows

    def _joined(self) -> np.ndarray:
        """The buffer and the pending chunks as one read-only array (which becomes the buffer)."""
        buffer = np.concatenate([self._buffer, *self._pending])
        buffer.flags.writeable = False
        self._pending = []
        return buffer

    def pad_to_first_window(self) -> list[tuple[int, np.ndarray]]:
        """At the end of a stream that never filled a window, return one zero-padded window (else nothing)."""
        if self._next_start > 0 or self.samples_seen == 0:
            return []
        self._buffer = self._joined()
        window = np.zeros(self.window_samples, dtype=np.float32)
        window[: self._buffer.size] = self._buffer
        self._next_start = self.hop_samples
        return [(0, window)]


def new_frame_audio(window: np.ndarray, *, new_frames: int, frame_samples: int, frame_span_samples: int,
                    frames_per_window: int) -> np.ndarray:
    """The samples of ``window`` that its last ``new_frames`` spectrogram frames read, and no others.

    Frame ``k`` of a window reads samples ``[k * frame, k * frame + span)``, so the last ``n`` of ``T`` frames
    read ``[(T - n) * frame, (T - 1) * frame + span)``; a window's last samples past the final frame are read
    by none (66150 - 66048 = 102 samples in the shipped model)."""
    if not 0 < new_frames <= frames_per_window:
        raise ValueError(f"new_frames must be in 1..{frames_per_window}, got {new_frames}")
    start = (frames_per_window - new_frames) * frame_samples
    return window[start : (frames_per_window - 1) * frame_samples + frame_span_samples]
