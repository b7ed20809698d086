"""Audio decoding (soundfile, else FFmpeg through PyAV), mixdown and resampling (soxr): the only place that
reads audio files.

soundfile wraps libsndfile (WAV, FLAC, Ogg Vorbis/Opus, MP3 with libsndfile >= 1.1, AU, AIFF, ...), which is
better tested than any decoder we would write; what it cannot open (M4A/AAC, WMA, WebM, most downloaded music)
is decoded by FFmpeg through PyAV, whose wheels carry it. soxr is a high-quality resampler with a true
streaming API, which the live path needs so that chunk boundaries leave no clicks or phase jumps.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr

from streamtag.errors import AudioFileError

# The suffixes of files that folder walks (training data, taste examples, the teacher tool) treat as audio:
# the formats libsndfile decodes, and the common ones only FFmpeg does.
AUDIO_SUFFIXES = (".wav", ".au", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".m4a", ".aac", ".mp4",
                  ".wma", ".webm", ".mka")



def audio_files_in(folder: Path) -> list[Path]:
    """The audio files under ``folder`` (recursively, by suffix), sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


# Bounds on what a file's header may claim: beyond them the header is corrupt or hostile (an attack run's 4 KB
# WAV claimed 1024 channels at 192 kHz, and one block of it was 3.5 GiB). Ambisonics and film mixes stay far
# below 64 channels; 768 kHz is the highest rate any converter offers.
MAX_CHANNELS = 64
MAX_SAMPLE_RATE = 768_000
MIN_SAMPLE_RATE = 1_000
MAX_BLOCK_BYTES = 64 * 1024 * 1024  # one decoded block at most, whatever the file's channels and rate

# soxr's "HQ" quality: a 95% passband with negligible aliasing, at a cost far below the model's.
_SOXR_QUALITY = "HQ"


def mix_to_mono(frames: np.ndarray) -> np.ndarray:
    """Average the channels of ``frames`` (shape (n,) or (n, channels)) into float32 mono."""
    if frames.ndim == 1:
        return frames.astype(np.float32, copy=False)
    return frames.mean(axis=1, dtype=np.float32)


@dataclass(frozen=True)
class AudioInfo:
    samplerate: int
    channels: int
    duration_s: float | None  # None where the container does not say (a stream)
    cut_short: str | None = None  # why the file looks truncated (libsndfile's own header checks), else None


def iter_audio(path: str | Path, *, sample_rate: int, block_s: float = 10.0) -> Iterator[np.ndarray]:
    """Decode ``path`` block by block to float32 mono at ``sample_rate`` (streaming resampling).

    Memory stays bounded by the block, whatever the file's length. Raises AudioFileError naming the file
    when it is missing, a folder, undecodable, or holds no samples.
    """
    path = _existing_file(path)
    try:
        # The name as bytes: soundfile encodes a str strictly, which fails on a name that is not UTF-8
        # (Python holds its undecodable bytes as surrogates).
        audio_file = soundfile.SoundFile(os.fsencode(path))
    except (soundfile.LibsndfileError, RuntimeError, ValueError) as exc:
        yield from _iter_ffmpeg(path, sample_rate=sample_rate, block_s=block_s, libsndfile_error=exc)
        return
    with audio_file:
        check_format(path, rate=audio_file.samplerate, channels=audio_file.channels)
        resampler = StreamResampler(in_rate=audio_file.samplerate, out_rate=sample_rate)
        bytes_per_frame = 4 * audio_file.channels  # float32
        block_frames = max(1, min(round(block_s * audio_file.samplerate), MAX_BLOCK_BYTES // bytes_per_frame))
        produced = 0
        while True:
            try:
                frames = audio_file.read(block_frames, dtype="float32", always_2d=True)
            except (soundfile.LibsndfileError, RuntimeError) as exc:
                raise AudioFileError(f"{path}: decoding failed after {produced / sample_rate:.1f} s ({exc})") from exc
            last = len(frames) < block_frames
            out = resampler.process(frames, last=last)
            produced += out.size
            if out.size:
                yield out
            if last:
                break
    if produced == 0:
        raise AudioFileError(f"{path}: holds no audio samples")


def _iter_ffmpeg(path: Path, *, sample_rate: int, block_s: float, libsndfile_error: Exception) -> Iterator[np.ndarray]:
    """``iter_audio`` for what libsndfile cannot open, decoded by FFmpeg (PyAV) frame by frame."""
    container, stream = _open_ffmpeg(path, libsndfile_error)
    with container:
        rate, channels = stream.codec_context.sample_rate, stream.codec_context.channels
        check_format(path, rate=rate, channels=channels)
        resampler = StreamResampler(in_rate=rate, out_rate=sample_rate)
        block_frames = max(1, min(round(block_s * rate), MAX_BLOCK_BYTES // (4 * channels)))
        pending: list[np.ndarray] = []
        pending_frames = produced = 0
        try:
            for frame in container.decode(stream):
                samples = frame_samples(frame)
                pending.append(samples)
                pending_frames += len(samples)
                if pending_frames >= block_frames:
                    out = resampler.process(np.concatenate(pending), last=False)
                    pending, pending_frames = [], 0
                    produced += out.size
                    if out.size:
                        yield out
        except Exception as exc:  # noqa: BLE001 - PyAV's errors (av.error.FFmpegError and others) are many
            raise AudioFileError(f"{path}: decoding failed after {produced / sample_rate:.1f} s ({exc})") from exc
        rest = np.concatenate(pending) if pending else np.zeros((0, channels), np.float32)
        out = resampler.process(rest, last=True)
        produced += out.size
        if out.size:
            yield out
    if produced == 0:
        raise AudioFileError(f"{path}: holds no audio samples")


def _open_ffmpeg(path: Path, libsndfile_error: Exception):
    import av

    try:
        container = av.open(str(path))
    except Exception as exc:  # noqa: BLE001 - any failure to open means: neither decoder reads this file
        raise AudioFileError(
            f"{path}: cannot decode audio (libsndfile: {libsndfile_error}; FFmpeg: {exc}); is it an audio file?"
        ) from exc
    if not container.streams.audio:
        container.close()
        raise AudioFileError(f"{path}: has no audio stream (FFmpeg found {len(container.streams)} other streams)")
    return container, container.streams.audio[0]


def frame_samples(frame) -> np.ndarray:
    """A decoded PyAV frame's samples as float32 of shape (samples, channels), whatever FFmpeg's sample format."""
    array = frame.to_ndarray()  # planar: (channels, samples); packed: (1, samples * channels)
    array = array.T if frame.format.is_planar else array.reshape(-1, frame.layout.nb_channels)
    if array.dtype.kind == "f":
        return array.astype(np.float32)
    full_scale = 2.0 ** (8 * array.dtype.itemsize - 1)
    if array.dtype.kind == "u":  # unsigned (u8): silence is half of full scale
        return ((array - full_scale) / full_scale).astype(np.float32)
    return (array / full_scale).astype(np.float32)


def check_format(what: str | Path, *, rate: int, channels: int) -> None:
    """Refuse a rate or channel count that no real audio has, naming ``what`` (a file, or a stdin flag)."""
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioFileError(f"{what}: {channels} channels, but audio has 1..{MAX_CHANNELS}; "
                             "the header is probably corrupt")
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioFileError(f"{what}: a sample rate of {rate} Hz is outside {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz; "
                             "the header is probably corrupt, or the rate given is wrong")


def load_audio(path: str | Path, *, sample_rate: int) -> np.ndarray:
    """Decode the whole of ``path`` to float32 mono at ``sample_rate`` (see ``iter_audio``)."""
    return np.concatenate(list(iter_audio(path, sample_rate=sample_rate)))


def audio_file_info(path: str | Path) -> AudioInfo:
    """Rate and channels from the file's header, without decoding it (libsndfile's, else FFmpeg's)."""
    path = _existing_file(path)
    try:
        header = soundfile.info(os.fsencode(path))
        info = AudioInfo(samplerate=int(header.samplerate), channels=int(header.channels), duration_s=header.duration,
                         cut_short=_cut_short(header.extra_info))
    except (soundfile.LibsndfileError, RuntimeError) as exc:
        container, stream = _open_ffmpeg(path, exc)
        with container:
            duration = None if container.duration is None else container.duration / 1_000_000  # in AV_TIME_BASE
            info = AudioInfo(samplerate=stream.codec_context.sample_rate, channels=stream.codec_context.channels,
                             duration_s=duration)
    check_format(path, rate=info.samplerate, channels=info.channels)
    return info


# What libsndfile's header report says of a file that ends early: a WAV/AIFF chunk longer than the file holds
# ("data : 1323588 (should be 441166)"), an Ogg stream whose last page does not end it.
_CHUNK_SHORT = re.compile(r"^(data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


def _cut_short(extra_info: str) -> str | None:
    match = _CHUNK_SHORT.search(extra_info)
    if match:
        promised, held = int(match.group(2)), int(match.group(3))
        if held < promised:
            return f"its header promises {promised} bytes of audio, the file holds {held}"
    if "Last page lacks an end-of-stream bit" in extra_info:
        return "its last Ogg page does not end the stream"
    return None


def _existing_file(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        raise AudioFileError(f"{path}: is a folder; give the audio files in it")
    if not path.is_file():
        raise AudioFileError(f"{path}: no such file")
    return path


class StreamResampler:
    """Mixes interleaved blocks of any channel count to mono and resamples them to ``out_rate``, streaming.

    Holds soxr's filter state between blocks, so the output does not depend on how the input was chunked
    (up to soxr's own rounding). ``reset()`` forgets that state, for a new stream.
    """

    def __init__(self, *, in_rate: int, out_rate: int) -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {in_rate} and {out_rate}")
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._stream: soxr.ResampleStream | None = None
        self.reset()

    def reset(self) -> None:
        if self.in_rate == self.out_rate:
            self._stream = None
        else:
            self._stream = soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="float32", quality=_SOXR_QUALITY)

    def process(self, block: np.ndarray, *, last: bool = False) -> np.ndarray:
        """Resample one block (shape (n,) or (n, channels)); ``last=True`` flushes the filter's tail."""
        mono = mix_to_mono(block)
        if self._stream is None:
            return mono.copy()
        return self._stream.resample_chunk(np.ascontiguousarray(mono), last=last)
