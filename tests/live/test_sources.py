"""The ring buffer against a slow, obvious model, and the file and stdin sources on real audio and real pipes."""

from __future__ import annotations

import asyncio
import os
import threading

import numpy as np
import pytest
import soundfile

from streamtag.audio import load_audio
from streamtag.errors import AudioFileError, DeviceError
from streamtag.sources import FileSource, RingBuffer, SourceSpec, StdinSource, open_source

MODEL_RATE = 16000


def collect(source) -> np.ndarray:
    async def run():
        return [b async for b in source.blocks()]

    blocks = asyncio.run(run())
    return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)


def test_ring_buffer_keeps_order_across_wraparound(rng):
    ring = RingBuffer(capacity_frames=10, channels=2)
    expected, got = [], []
    for size in [3, 4, 2, 7, 1, 9, 5]:  # never more than capacity between reads
        block = rng.standard_normal((size, 2)).astype(np.float32)
        assert ring.write(block) == 0
        expected.append(block)
        got.append(ring.read())
    np.testing.assert_array_equal(np.concatenate(got), np.concatenate(expected))
    assert ring.read().shape == (0, 2)
    assert ring.dropped_frames == 0


def test_ring_buffer_drops_the_oldest_when_full():
    ring = RingBuffer(capacity_frames=8, channels=1)
    frames = np.arange(20, dtype=np.float32).reshape(-1, 1)
    assert ring.write(frames[:6]) == 0
    assert ring.write(frames[6:11]) == 3  # 11 written, room for 8: frames 0, 1, 2 go
    assert ring.available == 8
    np.testing.assert_array_equal(ring.read()[:, 0], np.arange(3, 11))
    assert ring.write(frames[:20]) == 12  # one block larger than the whole buffer keeps its newest 8
    np.testing.assert_array_equal(ring.read()[:, 0], np.arange(12, 20))
    assert ring.dropped_frames == 15


def test_ring_buffer_with_a_concurrent_writer_never_tears_blocks():
    ring = RingBuffer(capacity_frames=4096, channels=1)
    total = 200 * 256

    def writer():
        for i in range(200):
            ring.write(np.arange(i * 256, (i + 1) * 256, dtype=np.float32).reshape(-1, 1))

    thread = threading.Thread(target=writer)
    thread.start()
    out = []
    while thread.is_alive() or ring.available:
        out.append(ring.read())
    thread.join()
    got = np.concatenate(out)[:, 0]
    # whatever the interleaving: what was read plus what was dropped is everything, and what was read is the
    # writer's frames in order, losing only whole runs of the oldest
    assert len(got) + ring.dropped_frames == total
    assert got[-1] == total - 1
    steps = np.diff(got)
    assert np.all(steps >= 1)
    assert np.sum(steps - 1) + got[0] == ring.dropped_frames


def test_file_source_fast_matches_the_offline_decoder(data_dir):
    path = data_dir / "gtzan" / "samples" / "jazz.00000.flac"
    streamed = collect(FileSource(path, out_rate=MODEL_RATE, fast=True))
    offline = load_audio(path, sample_rate=MODEL_RATE)
    assert abs(len(streamed) - len(offline)) <= 2  # soxr's streaming and one-shot lengths differ by rounding
    n = min(len(streamed), len(offline))
    # the streaming resampler's output equals the one-shot one except for the last few filter lengths
    np.testing.assert_allclose(streamed[: n - 1000], offline[: n - 1000], atol=1e-4)


def test_file_source_real_time_paces_itself(tmp_path, rng):
    path = tmp_path / "short.wav"
    soundfile.write(path, (0.1 * rng.standard_normal(8000)).astype(np.float32), 16000)  # 0.5 s
    loop_time = []

    async def run():
        t0 = asyncio.get_running_loop().time()
        n = 0
        async for block in FileSource(path, out_rate=MODEL_RATE).blocks():
            n += len(block)
        loop_time.append(asyncio.get_running_loop().time() - t0)
        return n

    assert asyncio.run(run()) == 8000
    assert 0.45 <= loop_time[0] < 1.5


def test_corrupt_file_is_an_audio_file_error(tmp_path):
    bad = tmp_path / "broken.ogg"
    bad.write_bytes(b"OggS" + os.urandom(2000))
    with pytest.raises(AudioFileError, match="broken.ogg: cannot decode audio"):
        open_source(SourceSpec(source=str(bad)), out_rate=MODEL_RATE)
    with pytest.raises(AudioFileError, match="no such file"):
        open_source(SourceSpec(source=str(tmp_path / "missing.wav")), out_rate=MODEL_RATE)


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
    import io

    samples = (0.25 * rng.standard_normal(4000)).astype("<f4")
    source = StdinSource(out_rate=MODEL_RATE, rate=MODEL_RATE, stream=io.BytesIO(samples.tobytes()))
    np.testing.assert_array_equal(collect(source), samples)
