"""Decoding and resampling real files; clear errors for bad ones."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from streamtag.audio import StreamResampler, audio_file_info, iter_audio, load_audio
from streamtag.errors import AudioFileError


def test_load_resamples_and_mixes_down(data_dir, tmp_path):
    mono, rate = soundfile.read(data_dir / "gtzan/samples/blues.00000.flac", dtype="float32")
    assert rate == 22050
    stereo = np.stack([mono, 0.5 * mono], axis=1)
    soundfile.write(tmp_path / "stereo44k.wav", np.repeat(stereo, 2, axis=0), 44100)  # crude 2x upsample
    loaded = load_audio(tmp_path / "stereo44k.wav", sample_rate=22050)
    assert loaded.dtype == np.float32
    assert abs(loaded.size - mono.size) <= 1
    np.testing.assert_allclose(loaded[1000:-1000].std(), (0.75 * mono)[1000:-1000].std(), rtol=0.02)


def test_ogg_decodes_to_the_table_length(data_dir):
    audio = load_audio(data_dir / "emotify/audio/pop/1.ogg", sample_rate=22050)
    assert audio.size / 22050 == pytest.approx(audio_file_info(data_dir / "emotify/audio/pop/1.ogg").duration_s, abs=1e-3)


def test_missing_and_corrupt_files_name_the_file(tmp_path):
    with pytest.raises(AudioFileError, match="nope.wav: no such file"):
        load_audio(tmp_path / "nope.wav", sample_rate=22050)
    corrupt = tmp_path / "corrupt.ogg"
    corrupt.write_bytes(b"OggS" + bytes(range(256)) * 20)
    with pytest.raises(AudioFileError, match="corrupt.ogg: cannot decode audio"):
        load_audio(corrupt, sample_rate=22050)


def test_empty_file_and_folder_are_clear_errors(tmp_path):
    soundfile.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 22050)
    with pytest.raises(AudioFileError, match="empty.wav: holds no audio samples"):
        load_audio(tmp_path / "empty.wav", sample_rate=22050)
    with pytest.raises(AudioFileError, match="is a folder"):
        load_audio(tmp_path, sample_rate=22050)


def test_a_file_that_resamples_to_nothing_is_a_clear_error(tmp_path):
    soundfile.write(tmp_path / "one.wav", np.full(1, 0.5, np.float32), 48000)
    with pytest.raises(AudioFileError, match="one.wav: holds no audio samples"):
        load_audio(tmp_path / "one.wav", sample_rate=22050)


def test_blocks_equal_the_whole_file(data_dir, tmp_path):
    mono, _ = soundfile.read(data_dir / "cc-audio/sorohanro_-_solo-trumpet-06.ogg", dtype="float32")
    path = tmp_path / "stereo44k.flac"
    soundfile.write(path, np.stack([np.repeat(mono, 2), np.repeat(mono, 2)], axis=1), 44100)
    blocks = list(iter_audio(path, sample_rate=22050, block_s=0.37))
    whole = load_audio(path, sample_rate=22050)  # 10 s blocks
    assert len(blocks) > 10 and abs(whole.size - mono.size) <= 1
    np.testing.assert_allclose(np.concatenate(blocks), whole, atol=1e-5)


def test_24_bit_six_channel_and_8_bit_files(tmp_path, rng):
    six = (0.1 * rng.standard_normal((48000, 6))).astype(np.float32)
    soundfile.write(tmp_path / "six.wav", six, 48000, subtype="PCM_24")
    assert load_audio(tmp_path / "six.wav", sample_rate=22050).size == 22050
    soundfile.write(tmp_path / "u8.wav", six[:8000, 0], 8000, subtype="PCM_U8")
    assert load_audio(tmp_path / "u8.wav", sample_rate=22050).size == 22050


@pytest.mark.parametrize("chunk", [256, 1024, 4096])
def test_stream_resampler_matches_one_shot_resampling(rng, chunk):
    signal = rng.standard_normal((48000, 2)).astype(np.float32) * 0.1
    whole = StreamResampler(in_rate=48000, out_rate=22050)
    expected = np.concatenate([whole.process(signal), whole.process(np.zeros((0, 2), np.float32), last=True)])
    streamed = StreamResampler(in_rate=48000, out_rate=22050)
    parts = [streamed.process(signal[i : i + chunk]) for i in range(0, len(signal), chunk)]
    got = np.concatenate(parts + [streamed.process(np.zeros((0, 2), np.float32), last=True)])
    assert got.size == expected.size == 22050
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_same_rate_passes_through_mixed_down():
    block = np.array([[1.0, 0.0], [0.5, 0.5]], np.float32)
    assert StreamResampler(in_rate=22050, out_rate=22050).process(block).tolist() == [0.5, 0.5]


def _wav_header(path, *, channels: int, rate: int, data: bytes = b"\0" * 4096) -> None:
    """A float32 WAV whose header says ``channels`` and ``rate``, whatever the data holds."""
    import struct

    block = channels * 4
    fmt = struct.pack("<IHHIIHH", 16, 3, channels, rate, rate * block, block, 32)
    path.write_bytes(b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt " + fmt + b"data"
                     + struct.pack("<I", len(data)) + data)


@pytest.mark.parametrize("channels, rate, message", [
    (1024, 192_000, "1024 channels, but audio has 1..64"),  # an attack run's 4 KB file: a 3.5 GiB block
    (1, 1_000_000, "a sample rate of 1000000 Hz is outside"),
])
def test_a_header_no_real_audio_has_is_refused_before_any_allocation(tmp_path, channels, rate, message):
    path = tmp_path / "hostile.wav"
    _wav_header(path, channels=channels, rate=rate)
    with pytest.raises(AudioFileError, match=f"hostile.wav: {message}.*header is probably corrupt"):
        next(iter_audio(path, sample_rate=22050))


def test_blocks_are_bounded_in_bytes_for_many_channels(tmp_path, rng, monkeypatch):
    """64 channels at 192 kHz: a 10 s block would be 491 MB; blocks are cut to MAX_BLOCK_BYTES (here lowered
    to 1 MB, 4096 frames of 64 float32 channels, so that a small file shows it)."""
    import streamtag.audio

    monkeypatch.setattr(streamtag.audio, "MAX_BLOCK_BYTES", 1024 * 1024)
    path = tmp_path / "wide.wav"
    soundfile.write(path, rng.standard_normal((48_000, 64)).astype(np.float32) * 0.01, 192_000, subtype="FLOAT")
    blocks = list(iter_audio(path, sample_rate=192_000))
    assert [b.size for b in blocks] == [4096] * 11 + [48_000 - 11 * 4096]


def test_m4a_aac_is_decoded_by_ffmpeg_and_tags_as_the_flac_does(data_dir, tmp_path):
    """Most downloaded music is M4A/AAC, which libsndfile cannot read: PyAV's FFmpeg decodes it."""
    import shutil
    import subprocess

    from streamtag.audio import audio_file_info

    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (apt install ffmpeg) to make the M4A file")
    flac = data_dir / "gtzan/samples/jazz.00000.flac"
    m4a = tmp_path / "jazz.m4a"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(flac), "-c:a", "aac", "-b:a", "128k", str(m4a)],
                   check=True)
    info = audio_file_info(m4a)
    assert (info.samplerate, info.channels) == (22050, 1) and info.duration_s == pytest.approx(30.0, abs=0.1)
    reference, decoded = load_audio(flac, sample_rate=22050), load_audio(m4a, sample_rate=22050)
    assert abs(decoded.size - reference.size) < 0.1 * 22050  # AAC adds its encoder delay, tens of ms
    blocks = list(iter_audio(m4a, sample_rate=22050, block_s=1.0))
    assert sum(b.size for b in blocks) == decoded.size and max(b.size for b in blocks) < 2.5 * 22050
    assert np.sqrt(np.mean(decoded ** 2)) == pytest.approx(np.sqrt(np.mean(reference ** 2)), rel=0.05)


def test_a_file_neither_decoder_reads_names_both(tmp_path):
    path = tmp_path / "notes.m4a"
    path.write_text("these are not sounds")
    with pytest.raises(AudioFileError, match="notes.m4a: cannot decode audio \\(libsndfile: .*; FFmpeg: .*is it an audio file"):
        load_audio(path, sample_rate=22050)
