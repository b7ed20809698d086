"""``NetworkSource``: an audio stream from the network (Icecast/Shoutcast over HTTP or HTTPS, HLS, RTSP, RTMP),
demuxed and decoded by PyAV (FFmpeg's libraries) on a thread of its own.

PyAV blocks while it reads, so a thread reads, decodes, mixes down and resamples, and hands each block to the
event loop with ``loop.call_soon_threadsafe``: the consumer never waits for the network and the thread never
waits for the consumer. When the consumer falls more than ``buffer_s`` behind, the oldest blocks are dropped
and counted (``stats.dropped_frames``), as the device ring buffer does. The thread decodes at most ``buffer_s``
ahead of real time, so a recording served whole (a file over HTTP, a finished HLS playlist) plays at real-time
pace like a file, while a live station, paced by its server, is never held back.

Resampling is ``audio.StreamResampler`` (soxr), not PyAV's ``AudioResampler`` (libswresample): every other
source and offline tagging resample with it, so a stream is tagged as the same recording tagged from a file.

Every failure is a ``NetworkSourceError`` raised from ``blocks()``: a host that cannot be reached, an HTTP
error, a resource that is not audio, a live stream that ends or sends nothing for ``read_timeout_s``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit, urlunsplit

import av
import numpy as np

from streamtag.audio import StreamResampler, frame_samples
from streamtag.errors import NetworkSourceError
from streamtag.sources.base import Source
from streamtag.sources.files import FILE_BLOCK_S

log = logging.getLogger(__name__)

URL_SCHEMES = ("http://", "https://", "rtsp://", "rtmp://")
OPEN_TIMEOUT_S = 10.0  # connecting and reading the stream's header
READ_TIMEOUT_S = 10.0  # a stream that sends nothing for this long has stopped: servers and proxies pause for seconds
BUFFER_S = 10.0  # how far the decoder may run ahead of real time, and how far the consumer may fall behind
_END = object()  # the end of the blocks: the stream finished, or close() was called


def is_stream_url(text: str) -> bool:
    """Whether ``--source`` names a network stream: a URL of a streaming scheme, or an HLS playlist."""
    lowered = text.lower()
    return lowered.startswith(URL_SCHEMES) or lowered.endswith(".m3u8")


class NetworkSource(Source):
    """An audio stream at ``url``, opened when ``blocks()`` starts (so creating one never blocks the loop)."""

    kind = "network"

    def __init__(
        self,
        url: str,
        *,
        out_rate: int,
        open_timeout_s: float = OPEN_TIMEOUT_S,
        read_timeout_s: float = READ_TIMEOUT_S,
        buffer_s: float = BUFFER_S,
    ) -> None:
        super().__init__(out_rate=out_rate)
        self.url = url
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self.buffer_s = buffer_s
        self.shown_url = _without_credentials(url)
        self.description = f"network: {self.shown_url}"
        self._stop = threading.Event()
        self._wake: Callable[[], object] | None = None

    async def blocks(self) -> AsyncIterator[np.ndarray]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue(maxsize=max(1, math.ceil(self.buffer_s / FILE_BLOCK_S)))
        stop = self._stop
        ended = False

        def offer(item: object) -> None:  # on the loop's thread: the queue is only touched there
            nonlocal ended
            if ended:  # after close() or the stream's end, nothing more is delivered
                return
            ended = not isinstance(item, np.ndarray)
            if queue.full():
                dropped = queue.get_nowait()
                self.stats.dropped_frames += round(len(dropped) * self.stats.in_rate / self.out_rate)
            queue.put_nowait(item)

        def hand_off(item: object) -> bool:  # on the decoder's thread; False once the loop has closed
            try:
                loop.call_soon_threadsafe(offer, item)
                return True
            except RuntimeError:
                return False

        self._wake = lambda: hand_off(_END)
        name = f"streamtag-network {self.shown_url}"
        # Not a daemon: a daemon thread still inside FFmpeg when the interpreter finalises crashes the process
        # (SIGSEGV at the end of `live --duration`). The stop is always set when blocks() ends or close() is
        # called, so the exit waits for its next packet, or at most its read timeout on a silent server.
        threading.Thread(target=self._run, args=(stop, hand_off), name=name, daemon=False).start()
        try:
            while (item := await queue.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()  # the consumer left (the end, an error, a break or a cancel): the thread stops too

    def close(self) -> None:
        """Stop the decoder and end ``blocks()``; returns at once.

        The thread sees the stop at its next packet (a live stream's data comes at least every second or so).
        Blocked inside a read from a server that has gone quiet, it ends with PyAV's read timeout, the only
        interrupt PyAV offers: at most ``read_timeout_s`` later, delivering nothing more.
        """
        self._stop.set()
        if self._wake is not None:
            self._wake()

    def _run(self, stop: threading.Event, hand_off: Callable[[object], bool]) -> None:
        outcome: object = _END
        try:
            self._decode(stop, hand_off)
        except Exception as exc:  # a NetworkSourceError, or a bug: either way blocks() raises it, never hangs
            outcome = exc
        finally:
            hand_off(outcome)

    def _open(self) -> av.container.InputContainer:
        try:
            return av.open(self.url, timeout=(self.open_timeout_s, self.read_timeout_s))
        except av.error.HTTPNotFoundError as exc:
            raise NetworkSourceError(
                f"{self.shown_url}: the server answered 404 Not Found; check the address (an Icecast mount point "
                "is case-sensitive; the server's status page lists them)"
            ) from exc
        except (av.error.HTTPUnauthorizedError, av.error.HTTPForbiddenError) as exc:
            raise NetworkSourceError(
                f"{self.shown_url}: the server refused access ({exc.strerror}); give credentials in the URL "
                "(scheme://user:password@host/...) or use a public stream"
            ) from exc
        except av.error.HTTPError as exc:
            raise NetworkSourceError(f"{self.shown_url}: the server answered an error ({exc.strerror})") from exc
        except av.error.ExitError as exc:
            raise NetworkSourceError(
                f"{self.shown_url}: no answer within {self.open_timeout_s:g} s; check the address and that the "
                "server is up"
            ) from exc
        except av.error.InvalidDataError as exc:
            raise NetworkSourceError(_not_audio(self.shown_url, "FFmpeg cannot read it as a media stream")) from exc
        except (av.FFmpegError, OSError) as exc:  # refused, no route, a host name that does not resolve, TLS...
            raise NetworkSourceError(
                f"cannot reach {self.shown_url} ({getattr(exc, 'strerror', None) or exc}); check the address, "
                "that the server is up and that this machine is online"
            ) from exc

    def _decode(self, stop: threading.Event, hand_off: Callable[[object], bool]) -> None:
        with self._open() as container:
            if not container.streams.audio:
                kinds = ", ".join(s.type for s in container.streams) or "no streams"
                raise NetworkSourceError(_not_audio(self.shown_url, f"it holds {kinds}"))
            stream = container.streams.audio[0]
            log.info("%s: %s @ %d Hz x%d", self.shown_url, stream.codec_context.name, stream.rate, stream.channels)
            block_samples = max(1, round(FILE_BLOCK_S * self.out_rate))
            resampler: StreamResampler | None = None
            pending: list[np.ndarray] = []
            started = time.monotonic()
            produced = 0
            try:
                for packet in container.demux(stream):
                    if stop.is_set():
                        return
                    try:
                        frames = packet.decode()
                    except av.error.InvalidDataError as exc:  # a damaged packet costs its samples, not the stream
                        log.warning("%s: skipped a damaged packet (%s)", self.shown_url, exc)
                        continue
                    for frame in frames:
                        if resampler is None or frame.sample_rate != resampler.in_rate:
                            if resampler is not None:  # a chained stream changed its rate: finish the old filter
                                pending.append(resampler.process(np.zeros((0, 1), np.float32), last=True))
                            resampler = StreamResampler(in_rate=frame.sample_rate, out_rate=self.out_rate)
                            self.stats.in_rate = frame.sample_rate
                        self.stats.frames_in += frame.samples
                        pending.append(resampler.process(frame_samples(frame)))
                    if sum(len(p) for p in pending) < block_samples:
                        continue
                    block = np.concatenate(pending)
                    pending.clear()
                    if not hand_off(block):
                        return
                    produced += len(block)
                    ahead_s = produced / self.out_rate - (time.monotonic() - started) - self.buffer_s
                    if ahead_s > 0 and stop.wait(ahead_s):
                        return
            except av.error.ExitError as exc:
                if stop.is_set():
                    return
                raise NetworkSourceError(
                    f"{self.shown_url}: the stream stopped sending (nothing for {self.read_timeout_s:g} s); "
                    "check that it is still on the air, then start again"
                ) from exc
            except (av.FFmpegError, OSError) as exc:  # Icecast closing a stream whose source left reads as EIO
                raise NetworkSourceError(
                    f"{self.shown_url}: the stream broke off after {produced / self.out_rate:.1f} s "
                    f"({getattr(exc, 'strerror', None) or exc}); start again when it is back on the air"
                ) from exc
            if stop.is_set():
                return
            if container.duration is None:  # a live stream has no length: its end is the server going away
                raise NetworkSourceError(
                    f"{self.shown_url}: the stream ended (the server closed it after "
                    f"{produced / self.out_rate:.1f} s); start again when it is back on the air"
                )
            if resampler is not None:
                pending.append(resampler.process(np.zeros((0, 1), np.float32), last=True))
            if pending and len(tail := np.concatenate(pending)):
                hand_off(tail)


def _not_audio(url: str, why: str) -> str:
    return f"{url}: not an audio stream ({why}); give the address of the stream itself, not of a web page about it"


def _without_credentials(url: str) -> str:
    """``url`` without a user name and password, for descriptions, logs and messages."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=host))
