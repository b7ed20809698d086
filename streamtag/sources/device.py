"""``DeviceSource``: an input device through PortAudio (a microphone, or a loopback/monitor device).

Capture from a device never stalls: PortAudio calls ``_callback`` on its own thread, and the callback only copies
the block into a ``RingBuffer`` and records the status flags PortAudio passes. Mixing down and resampling
(``StreamResampler``, soxr) happen on the consumer's side. When the consumer falls behind, the ring buffer
drops its oldest frames and counts them; PortAudio's own overflow flags are counted too. Neither is fatal; both are shown by the display and sent in the feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from streamtag.audio import StreamResampler
from streamtag.errors import DeviceError
from streamtag.sources.base import Source
from streamtag.sources.portaudio import load_sounddevice
from streamtag.sources.ring import RingBuffer

POLL_S = 0.02  # how often the consumer drains the ring buffer; 20 ms adds at most that to capture latency
# Device block length. With latency='low' and PortAudio's variable blocks, ALSA's pulse device called back ~470
# times a second (95 frames) for 5.3% of a core; fixed 10 ms blocks came every 10.0 ms (p99 14.5 ms) for 1.6%.
# Blocks of 1024 frames or more arrived in pairs (gaps up to 50-90 ms): the bursts latency='low' is there to avoid.
CAPTURE_BLOCK_S = 0.01
RING_S = 5.0  # seconds of device audio the ring buffer holds before it drops the oldest
DEVICE_STALL_S = 10.0  # a device that delivers nothing for this long is reported as gone


class DeviceSource(Source):
    """An input device through PortAudio (a microphone, or a loopback/monitor device)."""

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
        self._stream = None

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

    def start(self) -> None:
        sd = self._sd
        with _environment(self._env):
            try:
                self._stream = sd.InputStream(
                    device=self.device_index,
                    channels=self.channels,
                    samplerate=self.in_rate,
                    dtype="float32",
                    latency="low",  # small blocks delivered steadily, not bursts of half a second
                    blocksize=max(1, round(CAPTURE_BLOCK_S * self.in_rate)),
                    callback=self._callback,
                )
                self._stream.start()
            except sd.PortAudioError as exc:
                self.close()
                raise DeviceError(
                    f"cannot open {self.description} ({exc}); check that the device is free and the sound server "
                    "is running (`streamtag devices`)"
                ) from exc

    async def blocks(self) -> AsyncIterator[np.ndarray]:
        if self._stream is None:
            self.start()
        last_audio = time.monotonic()
        while True:
            await asyncio.sleep(self._poll_s)
            frames = self._ring.read()
            if len(frames):
                last_audio = time.monotonic()
                yield self._resampler.process(frames)
            elif not self._stream.active or time.monotonic() - last_audio > DEVICE_STALL_S:
                raise DeviceError(f"{self.description} stopped delivering audio (unplugged, or the server quit)")

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close(ignore_errors=True)


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
