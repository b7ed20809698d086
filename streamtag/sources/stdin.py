"""``StdinSource``: raw interleaved PCM from a pipe (``--source -``)."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator
from typing import BinaryIO

import numpy as np

from streamtag.audio import StreamResampler, check_format
from streamtag.errors import AudioFileError, DeviceError
from streamtag.sources.base import Source
from streamtag.sources.files import FILE_BLOCK_S

log = logging.getLogger(__name__)

STDIN_FORMATS = {"f32": np.dtype("<f4"), "s16": np.dtype("<i2")}
_S16_SCALE = 1.0 / 32768.0


class StdinSource(Source):
    """Raw interleaved PCM (float32 or int16, little-endian) from a pipe, read by a thread.

    The thread blocks on the pipe, and on the hand-off queue when the consumer is behind, so a fast producer
    (``cat file.raw |``) is slowed down rather than losing audio; a live producer (ffmpeg reading a radio
    stream) delivers at its own pace.
    """

    kind = "stdin"

    def __init__(
        self, *, out_rate: int, rate: int, fmt: str = "f32", channels: int = 1, stream: BinaryIO | None = None
    ) -> None:
        super().__init__(out_rate=out_rate)
        if fmt not in STDIN_FORMATS:
            raise DeviceError(f"unknown PCM format {fmt!r}; use one of {', '.join(STDIN_FORMATS)}")
        try:
            check_format("--source -", rate=rate, channels=channels)
        except AudioFileError as exc:
            raise DeviceError(f"{exc}; give the PCM's own --rate and --channels") from None
        self.in_rate = rate
        self.channels = channels
        self.stats.in_rate = rate
        self._dtype = STDIN_FORMATS[fmt]
        self._stream = stream if stream is not None else sys.stdin.buffer
        self._resampler = StreamResampler(in_rate=rate, out_rate=out_rate)
        self.description = f"stdin: {fmt} @ {rate} Hz x{channels}"
        self.trailing_bytes = 0
        self._stop = threading.Event()

    def _reader(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue) -> None:
        frame_bytes = self._dtype.itemsize * self.channels
        chunk_bytes = max(1, int(FILE_BLOCK_S * self.in_rate)) * frame_bytes
        pending = b""
        try:
            fd: int | None = self._stream.fileno()
        except (AttributeError, OSError, io.UnsupportedOperation):  # an in-memory stream: read() it
            fd = None
        if fd is not None and os.name == "nt":
            import msvcrt

            msvcrt.setmode(fd, os.O_BINARY)  # no CR/LF translation of PCM bytes
        try:
            while not self._stop.is_set():
                data = os.read(fd, chunk_bytes) if fd is not None else self._stream.read(chunk_bytes)
                if not data:
                    break
                pending += data
                usable = len(pending) - len(pending) % frame_bytes
                if usable:
                    raw, pending = pending[:usable], pending[usable:]
                    self._put(loop, queue, raw)
        except (OSError, ValueError) as exc:
            log.warning("reading stdin failed: %s", exc)
        finally:
            self.trailing_bytes = len(pending)
            self._put(loop, queue, None)

    def _put(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue, item: bytes | None) -> None:
        future = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
        while not self._stop.is_set():
            try:
                future.result(timeout=0.5)
                return
            except TimeoutError:
                continue
            except Exception:  # the loop closed under us: nothing left to hand the audio to
                return

    def _decode(self, raw: bytes) -> np.ndarray:
        samples = np.frombuffer(raw, dtype=self._dtype).reshape(-1, self.channels)
        if self._dtype.kind == "i":
            return samples.astype(np.float32) * np.float32(_S16_SCALE)
        return samples.astype(np.float32)

    async def blocks(self) -> AsyncIterator[np.ndarray]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue(maxsize=8)
        thread = threading.Thread(target=self._reader, args=(loop, queue), name="streamtag-stdin", daemon=True)
        thread.start()
        while (raw := await queue.get()) is not None:
            frames = self._decode(raw)
            self.stats.frames_in += len(frames)
            out = self._resampler.process(frames)
            if len(out):
                yield out
        if self.trailing_bytes:
            log.warning("stdin ended inside a frame: %d trailing byte(s) ignored", self.trailing_bytes)
        tail = self._resampler.process(np.zeros((0, self.channels), np.float32), last=True)
        if len(tail):
            yield tail

    def close(self) -> None:
        self._stop.set()
