"""Sliding-window bookkeeping, checked against counts worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from streamtag.core.windows import SlidingWindows, new_frame_audio, window_starts


def test_window_starts_by_hand():
    # 10 samples, window 4, hop 3: windows at 0, 3, 6 (6 + 4 = 10 fits), none at 9.
    assert window_starts(n_samples=10, window_samples=4, hop_samples=3).tolist() == [0, 3, 6]
    assert window_starts(n_samples=3, window_samples=4, hop_samples=3).tolist() == []
    n = 22050 * 60
    assert len(window_starts(n_samples=n, window_samples=66150, hop_samples=33075)) == 1 + (n - 66150) // 33075 == 39


@pytest.mark.parametrize("chunk", [1, 3, 256, 1000, 4096])
def test_windows_do_not_depend_on_chunking(chunk):
    stream = np.arange(20000, dtype=np.float32)
    sw = SlidingWindows(window_samples=4410, hop_samples=1102)
    got = []
    for i in range(0, stream.size, chunk):
        got += sw.push(stream[i : i + chunk])
    starts = window_starts(n_samples=stream.size, window_samples=4410, hop_samples=1102)
    assert [s for s, _ in got] == starts.tolist()
    for start, window in got:
        np.testing.assert_array_equal(window, stream[start : start + 4410])


def test_memory_stays_bounded_on_a_long_stream():
    sw = SlidingWindows(window_samples=1000, hop_samples=250)
    for _ in range(2000):
        sw.push(np.ones(333, np.float32))
    assert sw._buffer.size <= 1000 + 333
    assert sw.samples_seen == 666000


def test_short_stream_is_padded_to_one_window():
    sw = SlidingWindows(window_samples=8, hop_samples=4)
    assert sw.push(np.array([1, 2, 3], np.float32)) == []
    [(start, window)] = sw.pad_to_first_window()
    assert start == 0 and window.tolist() == [1, 2, 3, 0, 0, 0, 0, 0]
    assert sw.pad_to_first_window() == []


def test_no_padding_after_a_full_window_or_without_audio():
    sw = SlidingWindows(window_samples=4, hop_samples=4)
    assert sw.pad_to_first_window() == []
    sw.push(np.ones(5, np.float32))
    assert sw.pad_to_first_window() == []


def test_invalid_sizes():
    with pytest.raises(ValueError):
        SlidingWindows(window_samples=0, hop_samples=1)


def test_new_frame_audio_by_hand():
    # Frames of 4 samples every 2 (span 4, frame 2); a window of 11 samples has 1 + (11 - 4) // 2 = 4 frames,
    # reading [0,4) [2,6) [4,8) [6,10); sample 10 is read by none.
    window = np.arange(11)
    framing = dict(frame_samples=2, frame_span_samples=4, frames_per_window=4)
    assert new_frame_audio(window, new_frames=4, **framing).tolist() == list(range(10))
    assert new_frame_audio(window, new_frames=1, **framing).tolist() == [6, 7, 8, 9]
    assert new_frame_audio(window, new_frames=2, **framing).tolist() == [4, 5, 6, 7, 8, 9]
    # The shipped model: 128 frames of 1024 every 512; a 0.511 s hop adds 22 frames, read from 11776 samples.
    shipped = dict(frame_samples=512, frame_span_samples=1024, frames_per_window=128)
    assert new_frame_audio(np.zeros(66150), new_frames=22, **shipped).size == 21 * 512 + 1024 == 11776
    for bad in (0, 5):
        with pytest.raises(ValueError, match="new_frames must be in 1..4"):
            new_frame_audio(window, new_frames=bad, **framing)
