"""The file source on real audio, and the demo source on the bundled recordings."""

from __future__ import annotations

import asyncio
import os

import numpy as np
import pytest
import soundfile

from streamtag.audio import load_audio
from streamtag.demo import demo_recordings
from streamtag.errors import AudioFileError
from streamtag.sources.choice import SourceSpec, open_source
from streamtag.sources.files import DemoSource, FileSource

MODEL_RATE = 16000


def collect(source) -> np.ndarray:
    async def run():
        return [b async for b in source.blocks()]

    blocks = asyncio.run(run())
    return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)


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


def test_demo_recordings_are_bundled_with_their_attribution():
    paths = demo_recordings()
    assert [p.name for p in paths] == ["brahms-hungarian-dance-5.ogg", "kevin-macleod-vibe-ace.ogg"]
    attribution = (paths[0].parent / "ATTRIBUTION.md").read_text()
    assert "Public Domain" in attribution and "Creative Commons Attribution 3.0" in attribution
    assert all(soundfile.info(str(p)).duration > 40 for p in paths)


def test_demo_source_plays_the_recordings_in_turn_and_loops():
    source = DemoSource(out_rate=22050, fast=True)
    first = soundfile.read(str(demo_recordings()[0]), dtype="float32")[0]
    total = sum(soundfile.info(str(p)).frames for p in demo_recordings())

    async def take(n_samples):
        got, seen = [], 0
        async for block in source.blocks():
            got.append(block)
            seen += len(block)
            if seen >= n_samples:
                break
        return np.concatenate(got)

    audio = asyncio.run(take(total + 22050))
    source.close()
    np.testing.assert_allclose(audio[: first.size], first, atol=1e-6)  # same rate: the samples themselves
    np.testing.assert_allclose(audio[total : total + 1000], first[:1000], atol=1e-6)  # looped to the start


def test_file_source_loop_starts_again_and_keeps_counting(tmp_path, rng):
    path = tmp_path / "short.wav"
    clip = (0.1 * rng.standard_normal(3200)).astype(np.float32)  # 0.2 s at the output rate: no resampling
    soundfile.write(path, clip, MODEL_RATE, subtype="FLOAT")
    source = FileSource(path, out_rate=MODEL_RATE, fast=True, loop=True)
    assert source.description == f"file: short.wav @ {MODEL_RATE} Hz x1 (fast, looping)"

    async def take(n_samples):
        got = []
        async for block in source.blocks():
            got.append(block)
            if sum(map(len, got)) >= n_samples:
                break
        return np.concatenate(got)

    audio = asyncio.run(take(8000))  # two and a half passes
    source.close()
    np.testing.assert_array_equal(audio[:3200], clip)
    np.testing.assert_array_equal(audio[3200:6400], clip)  # the second pass is the file again, from its start
    np.testing.assert_array_equal(audio[6400:8000], clip[:1600])
    assert source.stats.frames_in == len(audio)  # counted on across the restarts


def test_file_source_loop_keeps_real_time_pace_across_restarts(tmp_path, rng):
    path = tmp_path / "short.wav"
    soundfile.write(path, (0.1 * rng.standard_normal(4800)).astype(np.float32), MODEL_RATE)  # 0.3 s

    async def run():
        t0 = asyncio.get_running_loop().time()
        n = 0
        async for block in FileSource(path, out_rate=MODEL_RATE, loop=True).blocks():
            n += len(block)
            if n >= 3 * 4800:
                break
        return n, asyncio.get_running_loop().time() - t0

    n, elapsed_s = asyncio.run(run())
    assert n == 3 * 4800  # three whole passes (blocks of 800 samples divide the file)
    assert 0.85 <= elapsed_s < 2.0  # 0.9 s of audio took 0.9 s: the restarts did not reset the pace


def test_close_ends_a_looping_file_source(tmp_path, rng):
    path = tmp_path / "short.wav"
    soundfile.write(path, (0.1 * rng.standard_normal(3200)).astype(np.float32), MODEL_RATE)
    source = FileSource(path, out_rate=MODEL_RATE, fast=True, loop=True)

    async def run():
        sizes = []
        async for block in source.blocks():
            sizes.append(len(block))
            source.close()  # the consumer (or another task) closes it while it plays
        return sizes

    assert asyncio.run(run()) == [800]  # one block of 0.05 s, then the end: closing does not start it again


def test_a_file_whose_name_is_not_utf8_plays(data_dir, tmp_path):
    """Linux names are bytes: one in Latin-1 reaches Python with surrogates, which soundfile cannot encode."""
    path = tmp_path / os.fsdecode(b"caf\xe9 jazz.flac")
    path.write_bytes((data_dir / "gtzan" / "samples" / "jazz.00000.flac").read_bytes())
    source = FileSource(path, out_rate=MODEL_RATE, fast=True)
    assert len(collect(source)) == pytest.approx(30.013 * MODEL_RATE, abs=MODEL_RATE * 0.01)
