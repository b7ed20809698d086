"""``DeviceSource``: an input device through PortAudio (a microphone, or a loopback/monitor device).

Capture from a device never stalls: PortAudio calls ``_callback`` on its own thread, and the callback only copies
the block into a ``RingBuffer`` and records the status flags PortAudio passes. Mixing down and resampling
(``StreamResampler``, soxr) happen on the consumer's side. When the consumer falls behind, the ring buffer
drops its oldest frames and counts them; PortAudio's own overflow flags are counted too. Neither is fatal; both are shown by the display and sent in the feed.

Once ``blocks()`` runs, every PortAudio call (open, close, initialising again) runs on a daemon thread of its own,
one at a time: a stopped sound server hangs such a call for as long as it is stopped, and it must hang neither
the event loop nor the exit. ``close()`` waits ``CLOSE_WAIT_S`` for it, then leaves it to its thread.

PortAudio says nothing when a device goes (no device-lost flag), so the loss is seen from the callbacks: none
for ``DEVICE_STALL_S``, or the stream ending. Then a source made with ``reopen=True`` tells ``on_state``, and
tries again and again, with backoff, to initialise PortAudio afresh (its device list is frozen at
initialisation), find the device by name and open it; the first audio from it is ``on_state``'s "up". Without
``reopen`` the loss is a ``DeviceError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np

from streamtag.audio import StreamResampler
from streamtag.errors import DeviceError
from streamtag.sources.base import Source
from streamtag.sources.portaudio import abandon, load_sounddevice, muted_stderr, reinitialise
from streamtag.sources.ring import RingBuffer

log = logging.getLogger(__name__)

POLL_S = 0.02  # how often the consumer drains the ring buffer; 20 ms adds at most that to capture latency
# Device block length. With latency='low' and PortAudio's variable blocks, ALSA's pulse device called back ~470
# times a second (95 frames) for 5.3% of a core; fixed 10 ms blocks came every 10.0 ms (p99 14.5 ms) for 1.6%.
# Blocks of 1024 frames or more arrived in pairs (gaps up to 50-90 ms): the bursts latency='low' is there to avoid.
CAPTURE_BLOCK_S = 0.01
RING_S = 5.0  # seconds of device audio the ring buffer holds before it drops the oldest
DEVICE_STALL_S = 1.0  # a device that delivered and then gives nothing for this long (100 blocks) is lost
# A stream just opened may take longer to start: a PulseAudio null sink's monitor sent its first audio 1.85 s after
# the stream opened, and 2.0 s after a sink was created (it renders 2 s blocks until a recording lowers its latency).
FIRST_AUDIO_S = 5.0
CLOSE_WAIT_S = 1.0  # close() waits this long for PortAudio, then gives up on it (a stopped sound server)
# Backoff between attempts to reopen a lost device. The cap bounds how long a device that came back waits for the
# next attempt; an attempt (initialise, list, open) took 30-80 ms here, most of it ALSA probing its devices.
REOPEN_FIRST_S = 0.1
REOPEN_MAX_S = 0.5


class _Job:
    """One PortAudio call (or a few in a row) on a daemon thread: the caller polls ``done`` and never waits long,
    and an interpreter that exits does not wait for a call a stopped sound server holds up."""

    def __init__(self, work: Callable[[], None]) -> None:
        self.error: Exception | None = None
        self._work = work
        self._thread = threading.Thread(target=self._run, name="streamtag-portaudio", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._work()
        except Exception as exc:  # noqa: BLE001 - handed to the caller, which decides
            self.error = exc

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait(self, timeout_s: float | None = None) -> bool:
        self._thread.join(timeout_s)
        return self.done


class DeviceSource(Source):
    """An input device through PortAudio (a microphone, or a loopback/monitor device).

    ``reopen``: a lost device is reopened in place and ``on_state`` told, instead of ending ``blocks()`` with a
    DeviceError. Reopening initialises PortAudio afresh, which closes every other stream of the process (``live``
    has one source; ``serve``, which has several, reopens its sources itself).
    """

    def __init__(
        self,
        *,
        out_rate: int,
        device: int | str | None = None,
        rate: int | None = None,
        channels: int | None = None,
        env: dict[str, str] | None = None,
        kind: str = "mic",
        poll_s: float = POLL_S,
        ring_s: float = RING_S,
        reopen: bool = False,
    ) -> None:
        super().__init__(out_rate=out_rate)
        self.kind = kind
        self._sd = load_sounddevice()
        self._env = env or {}
        self._poll_s = poll_s
        info = self._find_device(device)
        self.device_index = int(info["index"])
        self.device_name = str(info["name"])
        self.channels = int(channels or min(2, info["max_input_channels"]))
        self.in_rate = int(rate or info["default_samplerate"])
        self.stats.in_rate = self.in_rate
        detail = f" ({self._env['PULSE_SOURCE']})" if "PULSE_SOURCE" in self._env else ""
        self.description = f"{kind}: {self.device_name}{detail} @ {self.in_rate} Hz x{self.channels}"
        self._check_settings()
        self._ring = RingBuffer(capacity_frames=max(1, int(ring_s * self.in_rate)), channels=self.channels)
        self._resampler = StreamResampler(in_rate=self.in_rate, out_rate=out_rate)
        self.reopen = reopen
        self._stream = None  # once blocks() runs, only a _Job's thread touches it
        self._ended = threading.Event()  # set by PortAudio when the current stream stops (its thread failed)
        self._job: _Job | None = None  # the PortAudio call in flight: never more than one
        self._closed = False

    def _find_device(self, device: int | str | None) -> dict[str, Any]:
        sd = self._sd
        if isinstance(device, str) and device.strip().isdigit():
            device = int(device)
        try:
            if device is None:
                if sd.default.device[0] is None or sd.default.device[0] < 0:
                    raise DeviceError(_no_device_message())
                return sd.query_devices(kind="input")
            # a name is matched (as a substring) among the inputs only; an index is checked for inputs below
            info = sd.query_devices(device, kind="input") if isinstance(device, str) else sd.query_devices(device)
        except sd.PortAudioError as exc:
            if isinstance(device, int):
                raise DeviceError(
                    f"no input device with index {device}; run `streamtag devices` to list the inputs"
                ) from exc
            raise DeviceError(f"cannot query the input device: {exc}; {_no_device_message()}") from exc
        except ValueError as exc:  # sounddevice: no device matching a name, or an ambiguous name
            raise DeviceError(f"{exc}; run `streamtag devices` to list the inputs") from exc
        if info["max_input_channels"] <= 0:
            raise DeviceError(f"device {device!r} ({info['name']}) has no inputs; run `streamtag devices`")
        return info

    def _check_settings(self) -> None:
        sd = self._sd
        try:
            sd.check_input_settings(
                device=self.device_index, channels=self.channels, samplerate=self.in_rate, dtype="float32"
            )
        except sd.PortAudioError as exc:
            raise DeviceError(
                f"{self.device_name} refuses {self.in_rate} Hz with {self.channels} channel(s) ({exc}); leave out "
                "--rate and --channels to use the device's defaults"
            ) from exc

    def _callback(self, indata: np.ndarray, frames: int, _time: Any, status: Any) -> None:
        # The audio thread: record the flags, copy, return. Nothing that can block or allocate much.
        if status:
            self.stats.status_callbacks += 1
            if status.input_overflow:
                self.stats.input_overflows += 1
        self.stats.dropped_frames += self._ring.write(indata)
        self.stats.frames_in += frames

    def _open(self) -> None:
        sd = self._sd
        ended = threading.Event()
        stream = None
        with _environment(self._env):
            try:
                stream = sd.InputStream(
                    device=self.device_index,
                    channels=self.channels,
                    samplerate=self.in_rate,
                    dtype="float32",
                    latency="low",  # small blocks delivered steadily, not bursts of half a second
                    blocksize=max(1, round(CAPTURE_BLOCK_S * self.in_rate)),
                    callback=self._callback,
                    finished_callback=ended.set,
                )
                stream.start()
            except sd.PortAudioError as exc:
                if stream is not None:
                    stream.close(ignore_errors=True)
                raise DeviceError(
                    f"cannot open {self.description} ({exc}); check that the device is free and the sound server "
                    "is running (`streamtag devices`)"
                ) from exc
        self._stream, self._ended = stream, ended

    def _reopen(self) -> None:
        # Muted: attempts come every 0.5 s while the device is gone. What the event loop prints meanwhile is lost
        # too, for the 30-80 ms an attempt takes; "source down" is printed before the first, "up" after the last.
        with muted_stderr():
            self._close_stream()
            reinitialise(self._sd)
            self.device_index = int(self._find_device(self.device_name)["index"])  # the index may have changed
            self._open()

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close(ignore_errors=True)

    def _tell(self, up: bool, detail: str) -> None:
        if self.on_state is not None:
            self.on_state(up, detail)

    async def blocks(self) -> AsyncIterator[np.ndarray]:
        self._job = _Job(self._open)
        while not self._job.done:
            await asyncio.sleep(self._poll_s)
        job, self._job = self._job, None
        if job.error is not None:
            raise job.error
        opened_s = last_audio = time.monotonic()
        heard = False  # whether the current stream has delivered anything
        lost: str | None = None  # why, from the loss until audio comes again
        delay, next_try = REOPEN_FIRST_S, 0.0
        while True:
            await asyncio.sleep(self._poll_s)
            now = time.monotonic()
            frames = self._ring.read()
            if len(frames):
                last_audio, heard = now, True
                if lost is not None:
                    lost, delay = None, REOPEN_FIRST_S
                    self._tell(True, self.description)
                yield self._resampler.process(frames)
                continue
            if self._job is not None:
                if self._job.done:
                    job, self._job = self._job, None
                    if job.error is None:
                        opened_s, heard = now, False
                        log.debug("reopened %s; waiting for its audio", self.description)
                    else:
                        log.debug("reopening %s failed: %s", self.description, job.error)
                continue
            quiet_s = now - last_audio if heard else now - opened_s
            if not self._ended.is_set() and quiet_s <= (DEVICE_STALL_S if heard else FIRST_AUDIO_S):
                continue
            if lost is None:
                lost = f"{self.description} stopped delivering audio (unplugged, or the server quit)"
                if not self.reopen:
                    raise DeviceError(lost)
                self._tell(False, lost)
            if now >= next_try:
                self._job = _Job(self._reopen)
                next_try, delay = now + delay, min(REOPEN_MAX_S, 2 * delay)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        pending = self._job

        def release() -> None:
            if pending is not None:  # it may open a stream: close that one, after it
                pending.wait()
            self._close_stream()

        if not _Job(release).wait(CLOSE_WAIT_S):
            log.warning("%s: the sound server does not answer; not waiting for the device to close", self.description)
            abandon(self._sd)
            # The stuck thread keeps this source alive past the interpreter's end, when soxr's binding lists each
            # of its objects still alive (a screenful on stderr): let go of the resampler, the one such object.
            self._resampler = None


def _no_device_message() -> str:
    if sys.platform.startswith("linux"):
        return (
            "no audio input device found: start the sound server (`pulseaudio --start`, or `systemctl --user start "
            "pipewire-pulse`), check PULSE_SERVER, or plug in a microphone; `streamtag devices` lists what is seen"
        )
    return "no audio input device found: plug in or enable a microphone; `streamtag devices` lists what is seen"


@contextlib.contextmanager
def _environment(values: dict[str, str]):
    """Set environment variables while a stream opens (the ALSA pulse plugin reads them then), then restore."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
