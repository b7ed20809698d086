"""The stdin source on real pipes and in-memory streams."""

from __future__ import annotations

import io
import os
import threading

import numpy as np
import pytest

from streamtag.errors import DeviceError
from streamtag.sources.choice import SourceSpec, open_source
from streamtag.sources.stdin import StdinSource

from .test_files import MODEL_RATE, collect


@pytest.mark.parametrize("fmt,dtype,scale", [("f32", np.float32, 1.0), ("s16", np.int16, 32768.0)])
def test_stdin_source_reads_a_pipe_until_it_ends(rng, fmt, dtype, scale):
    stereo = (0.5 * rng.standard_normal((MODEL_RATE, 2))).clip(-1, 0.99)
    raw = (stereo * scale).astype(dtype).tobytes()
    read_fd, write_fd = os.pipe()

    def produce():  # odd-sized writes, so frames are split across reads; then one stray byte
        for i in range(0, len(raw), 777):
            os.write(write_fd, raw[i : i + 777])
        os.write(write_fd, b"\x01")
        os.close(write_fd)

    threading.Thread(target=produce).start()
    with os.fdopen(read_fd, "rb", buffering=0) as pipe:
        source = StdinSource(out_rate=MODEL_RATE, rate=MODEL_RATE, fmt=fmt, channels=2, stream=pipe)
        mono = collect(source)
    expected = (stereo * scale).astype(dtype).astype(np.float32).mean(axis=1) / scale
    np.testing.assert_allclose(mono, expected, atol=1e-6)
    assert source.trailing_bytes == 1
    assert source.stats.frames_in == MODEL_RATE


def test_stdin_needs_a_rate():
    with pytest.raises(DeviceError, match="--rate"):
        open_source(SourceSpec(source="-"), out_rate=MODEL_RATE)
    with pytest.raises(DeviceError, match="unknown PCM format"):
        StdinSource(out_rate=MODEL_RATE, rate=8000, fmt="u8")


def test_stdin_source_reads_an_in_memory_stream_too(rng):
    samples = (0.25 * rng.standard_normal(4000)).astype("<f4")
    source = StdinSource(out_rate=MODEL_RATE, rate=MODEL_RATE, stream=io.BytesIO(samples.tobytes()))
    np.testing.assert_array_equal(collect(source), samples)


@pytest.mark.parametrize("rate, channels, message", [
    (1, 1, "a sample rate of 1 Hz is outside 1000..768000 Hz"),  # an attack run: 12 s latency, 845 MB RSS
    (22050, 0, "0 channels, but audio has 1..64"),
    (22050, 5000, "5000 channels, but audio has 1..64"),
])
def test_stdin_formats_no_real_audio_has_are_refused(rate, channels, message):
    with pytest.raises(DeviceError, match=f"--source -: {message}.*give the PCM's own --rate and --channels"):
        StdinSource(out_rate=22050, rate=rate, channels=channels, stream=io.BytesIO(b""))
