"""Sources that play audio files: ``FileSource`` (one file) and ``DemoSource`` (the bundled demo recordings)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np

from streamtag.audio import audio_file_info, iter_audio
from streamtag.sources.base import Source

FILE_BLOCK_S = 0.05  # block length read from files and stdin


class FileSource(Source):
    """A file, decoded as it plays (``audio.iter_audio``): at real-time pace, or as fast as it is taken (``fast``);
    with ``loop``, it starts again at its end (the pace carries on across the restart)."""

    kind = "file"

    def __init__(self, path: str | Path, *, out_rate: int, fast: bool = False, loop: bool = False) -> None:
        super().__init__(out_rate=out_rate)
        self.path = Path(path)
        self.fast = fast
        self.loop = loop
        self._closed = False
        info = audio_file_info(self.path)  # a missing, folder or undecodable file fails here, before anything starts
        self.in_rate = int(info.samplerate)
        self.stats.in_rate = self.in_rate
        self._decoder: Iterator[np.ndarray] | None = None
        pace = ("fast" if fast else "real time") + (", looping" if loop else "")
        self.description = f"file: {self.path.name} @ {self.in_rate} Hz x{info.channels} ({pace})"

    async def blocks(self) -> AsyncIterator[np.ndarray]:
        started = time.monotonic()
        produced = 0
        while True:
            self._decoder = iter_audio(self.path, sample_rate=self.out_rate, block_s=FILE_BLOCK_S)
            for out in self._decoder:
                produced += len(out)
                self.stats.frames_in = round(produced * self.in_rate / self.out_rate)
                if self.fast:
                    await asyncio.sleep(0)  # let the feed and the display run between blocks
                else:
                    delay = started + produced / self.out_rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                yield out
            # close() ends the decoder's pass early; it must not start another (an empty file raises AudioFileError)
            if not self.loop or self._closed:
                return

    def close(self) -> None:
        self._closed = True
        if self._decoder is not None:
            self._decoder.close()  # closes the file


class DemoSource(Source):
    """The bundled demo recordings in turn, looping, at real-time pace (or ``fast``).

    What `streamtag live` plays where there is no audio input, so the whole pipeline (tags, display, feed,
    dashboard) can be seen working on any machine; also ``--source demo``.
    """

    kind = "demo"

    def __init__(self, *, out_rate: int, fast: bool = False, note: str = "") -> None:
        from streamtag.demo import demo_recordings

        super().__init__(out_rate=out_rate)
        self.fast = fast
        self._paths = demo_recordings()
        self._current: FileSource | None = None
        self.stats.in_rate = out_rate
        names = ", ".join(p.stem for p in self._paths)
        self.description = f"demo: {names}, looping{note}"

    async def blocks(self) -> AsyncIterator[np.ndarray]:
        while True:
            for path in self._paths:
                self._current = FileSource(path, out_rate=self.out_rate, fast=self.fast)
                try:
                    async for block in self._current.blocks():
                        self.stats.frames_in += len(block)
                        yield block
                finally:
                    self._current.close()

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
