"""Audio sources for ``streamtag live``: microphone, system audio (loopback), a file, raw PCM on stdin.

Every source is a thin adapter with one job: deliver mono float32 blocks at the model's sample rate, in order,
from ``async for block in source.blocks()``. Blocks may have any length; the tagger does not care.

Capture from a device never stalls: PortAudio calls ``_callback`` on its own thread, and the callback only copies
the block into a ``RingBuffer`` and records the status flags PortAudio passes. Mixing down and resampling
(``StreamResampler``, soxr) happen on the consumer's side. When the consumer falls behind, the ring buffer
drops its oldest frames (live audio is only useful while it is recent) and counts them; PortAudio's own
overflow flags are counted too. Neither is fatal; both are shown by the display and sent in the feed.

Loopback ("what the machine is playing"), per system:

* **Linux (PulseAudio, or PipeWire with pipewire-pulse)**: every sink has a monitor source, ``<sink>.monitor``.
  PortAudio reaches the sound server through ALSA's ``pulse`` device (package ``libasound2-plugins`` on Debian
  and Ubuntu, ``alsa-plugins-pulseaudio`` on Fedora, ``pipewire-alsa`` also provides it), which records from
  the source named by the ``PULSE_SOURCE`` environment variable when the stream is opened. We set it to the
  monitor of the default sink (``@DEFAULT_MONITOR@``) or of the sink named by ``--device``, and check the name
  with ``pactl`` first when it is installed.
* **Windows**: the released PortAudio that sounddevice ships has no WASAPI loopback. PortAudio's development
  version has it (PortAudio/portaudio#672): its WASAPI loopback inputs are listed as "<output> [Loopback]";
  sounddevice waits for a PortAudio release to ship it (python-sounddevice#510), and a self-built DLL works
  today. We use, by name, such a "[Loopback]" input or any input that carries the output mix ("Stereo Mix",
  "What U Hear", a virtual cable such as VB-Audio "CABLE Output"), and otherwise say how to get one.
* **macOS**: Core Audio has no loopback input; a virtual device such as BlackHole
  (``brew install blackhole-2ch``, then a Multi-Output Device in Audio MIDI Setup that plays to both the
  speakers and BlackHole) provides one. We look for BlackHole, Loopback and Soundflower devices by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import io
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from streamtag.audio import StreamResampler, audio_file_info, iter_audio
from streamtag.errors import DeviceError

log = logging.getLogger(__name__)

POLL_S = 0.02  # how often the consumer drains the ring buffer; 20 ms adds at most that to capture latency
# Device block length. With latency='low' and PortAudio's variable blocks, ALSA's pulse device called back ~470
# times a second (95 frames) for 5.3% of a core; fixed 10 ms blocks came every 10.0 ms (p99 14.5 ms) for 1.6%.
# Blocks of 1024 frames or more arrived in pairs (gaps up to 50-90 ms): the bursts latency='low' is there to avoid.
CAPTURE_BLOCK_S = 0.01
RING_S = 5.0  # seconds of device audio the ring buffer holds before it drops the oldest
DEVICE_STALL_S = 10.0  # a device that delivers nothing for this long is reported as gone
FILE_BLOCK_S = 0.05  # block length read from files and stdin
PACTL_TIMEOUT_S = 5.0
DEFAULT_MONITOR = "@DEFAULT_MONITOR@"  # PulseAudio's (and pipewire-pulse's) name for the default sink's monitor
STDIN_FORMATS = {"f32": np.dtype("<f4"), "s16": np.dtype("<i2")}
_S16_SCALE = 1.0 / 32768.0

# Input devices that carry what the machine plays, by lower-case name fragment, for systems without a monitor.
LOOPBACK_NAME_HINTS = {
    "win32": ("stereo mix", "what u hear", "wave out mix", "loopback", "cable output", "voicemeeter out"),
    "darwin": ("blackhole", "loopback", "soundflower"),
}
LOOPBACK_HELP = {
    "win32": (
        "no loopback input found. Enable 'Stereo Mix' (Control Panel > Sound > Recording > right-click > "
        "Show Disabled Devices > Enable), or install a virtual cable (VB-Audio Virtual Cable) and set it as the "
        "playback device; then run `streamtag devices` and pass its name with --device"
    ),
    "darwin": (
        "no loopback input found. Install BlackHole (`brew install blackhole-2ch`), create a Multi-Output Device "
        "with your speakers and BlackHole in Audio MIDI Setup, and make it the output; then run "
        "`streamtag live --source loopback` (or pass the device with --device)"
    ),
}


# ---------------------------------------------------------------------------------------------------------------
# PortAudio boundary


def _silence_alsa_messages() -> None:
    """ALSA prints a dozen 'unable to open slave' lines while PortAudio probes devices; send them nowhere."""
    if not sys.platform.startswith("linux"):
        return
    name = ctypes.util.find_library("asound")
    if not name:
        return
    try:
        lib = ctypes.CDLL(name)
        handler_type = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p)
        global _ALSA_HANDLER  # keep the callback alive as long as the library may call it
        _ALSA_HANDLER = handler_type(lambda *_args: None)
        lib.snd_lib_error_set_handler(_ALSA_HANDLER)
    except (OSError, AttributeError):  # a libasound without the symbol: the messages stay, nothing breaks
        pass


_ALSA_HANDLER = None


def _sounddevice():
    """Import sounddevice (it loads PortAudio and scans devices); a missing library is a DeviceError."""
    _silence_alsa_messages()
    try:
        import sounddevice
    except OSError as exc:
        raise DeviceError(
            f"PortAudio cannot be loaded ({exc}); install it: `apt install libportaudio2` on Debian/Ubuntu, "
            "`brew install portaudio` on macOS"
        ) from exc
    return sounddevice


@dataclass(frozen=True, kw_only=True)
class InputDevice:
    index: int
    name: str
    host_api: str
    channels: int
    default_rate: float
    is_default: bool
    is_loopback: bool


@dataclass(frozen=True, kw_only=True)
class MonitorSource:
    """A PulseAudio/PipeWire monitor: what a sink plays, recordable with ``--source loopback --device SINK``."""

    name: str
    sink: str
    is_default: bool


def list_input_devices() -> list[InputDevice]:
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
        host_apis = sd.query_hostapis()
        default_in = sd.default.device[0]
    except sd.PortAudioError as exc:
        raise DeviceError(f"cannot list audio devices: {exc}") from exc
    hints = LOOPBACK_NAME_HINTS.get(sys.platform, ())
    out = []
    for dev in devices:
        if dev["max_input_channels"] <= 0:
            continue
        name = dev["name"]
        out.append(
            InputDevice(
                index=dev["index"],
                name=name,
                host_api=host_apis[dev["hostapi"]]["name"],
                channels=dev["max_input_channels"],
                default_rate=dev["default_samplerate"],
                is_default=dev["index"] == default_in,
                is_loopback=any(h in name.lower() for h in hints),
            )
        )
    return out


def list_pulse_sources() -> list[str]:
    """Names of the PulseAudio/PipeWire sources that are not monitors (microphones, virtual sources)."""
    if not sys.platform.startswith("linux") or shutil.which("pactl") is None:
        return []
    return [name for _, name in _pactl_short("sources") if not name.endswith(".monitor")]


def list_monitor_sources() -> list[MonitorSource]:
    """The PulseAudio/PipeWire sink monitors (Linux, when ``pactl`` is installed and a server answers)."""
    if not sys.platform.startswith("linux") or shutil.which("pactl") is None:
        return []
    sinks = [name for _, name in _pactl_short("sinks")]
    sources = {name for _, name in _pactl_short("sources")}
    default_sink = _pactl_default_sink()
    return [
        MonitorSource(name=f"{sink}.monitor", sink=sink, is_default=sink == default_sink)
        for sink in sinks
        if f"{sink}.monitor" in sources
    ]


def _pactl_lines(*args: str) -> list[str]:
    try:
        proc = subprocess.run(
            ["pactl", *args], capture_output=True, text=True, timeout=PACTL_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DeviceError(f"`pactl {' '.join(args)}` failed ({exc}); is the sound server responding?") from exc
    if proc.returncode != 0:
        detail = "; ".join(line.strip() for line in proc.stderr.splitlines() if line.strip()) or "pactl failed"
        raise DeviceError(
            f"cannot reach the PulseAudio/PipeWire sound server ({detail}). "
            "Start it (`pulseaudio --start`, or `systemctl --user start pipewire-pulse`) or point PULSE_SERVER "
            "at it"
        )
    return [line for line in proc.stdout.splitlines() if line.strip()]


def _pactl_short(kind: str) -> list[tuple[str, str]]:
    """(index, name) of each row of ``pactl list short sinks|sources`` (tab-separated, index first)."""
    rows = [line.split("\t") for line in _pactl_lines("list", "short", kind)]
    return [(row[0], row[1]) for row in rows if len(row) >= 2]


def _pactl_default_sink() -> str | None:
    for line in _pactl_lines("info"):
        if line.startswith("Default Sink:"):
            return line.split(":", 1)[1].strip() or None
    return None


def resolve_monitor(device: str | None) -> str:
    """The PulseAudio source name to record for ``--source loopback [--device SINK]``.

    Accepts a sink name, a sink index, or a monitor source name; checks it with ``pactl`` when installed.
    """
    if shutil.which("pactl") is None:
        if device is None:
            return DEFAULT_MONITOR
        return device if device.endswith(".monitor") else f"{device}.monitor"
    monitors = list_monitor_sources()
    if not monitors:
        raise DeviceError(
            "the sound server has no sinks to monitor; play something through it, or load one with "
            "`pactl load-module module-null-sink sink_name=streamtag`"
        )
    if device is None:
        for m in monitors:
            if m.is_default:
                return m.name
        return DEFAULT_MONITOR
    if device.isdigit():
        for index, name in _pactl_short("sinks"):
            if index == device:
                return f"{name}.monitor"
    for m in monitors:
        if device in (m.name, m.sink):
            return m.name
    names = ", ".join(m.sink for m in monitors)
    raise DeviceError(f"no sink named {device!r} to record from; the sinks are: {names} (see `streamtag devices`)")


# ---------------------------------------------------------------------------------------------------------------
# The ring buffer between the audio thread and the consumer


class RingBuffer:
    """A fixed-size FIFO of frames shared by one writer thread (the audio callback) and one reader.

    ``write`` never blocks on the reader and never allocates: when the buffer is full it overwrites the oldest
    frames and counts them in ``dropped_frames``. ``read`` returns every frame written since the last read.
    """

    def __init__(self, *, capacity_frames: int, channels: int) -> None:
        if capacity_frames <= 0 or channels <= 0:
            raise ValueError("capacity_frames and channels must be positive")
        self.capacity_frames = capacity_frames
        self.channels = channels
        self._buf = np.zeros((capacity_frames, channels), dtype=np.float32)
        self._write_pos = 0  # total frames ever written
        self._read_pos = 0  # total frames ever read or dropped
        self.dropped_frames = 0
        self._lock = threading.Lock()

    @property
    def available(self) -> int:
        with self._lock:
            return self._write_pos - self._read_pos

    def write(self, block: np.ndarray) -> int:
        """Copy ``block`` (frames, channels) in; return how many old frames were dropped to make room."""
        n = len(block)
        if n == 0:
            return 0
        if n > self.capacity_frames:  # keep only the newest capacity's worth
            skipped = n - self.capacity_frames
            block = block[skipped:]
        else:
            skipped = 0
        with self._lock:
            self._write_pos += skipped
            start = self._write_pos % self.capacity_frames
            first = min(len(block), self.capacity_frames - start)
            self._buf[start : start + first] = block[:first]
            self._buf[: len(block) - first] = block[first:]
            self._write_pos += len(block)
            overrun = self._write_pos - self._read_pos - self.capacity_frames
            dropped = max(0, overrun)
            if dropped:
                self._read_pos += dropped
                self.dropped_frames += dropped
        return dropped

    def read(self) -> np.ndarray:
        """All unread frames, oldest first, as a new (frames, channels) array."""
        with self._lock:
            n = self._write_pos - self._read_pos
            start = self._read_pos % self.capacity_frames
            first = min(n, self.capacity_frames - start)
            out = np.concatenate([self._buf[start : start + first], self._buf[: n - first]])
            self._read_pos += n
        return out


# ---------------------------------------------------------------------------------------------------------------
# Sources


@dataclass
class CaptureStats:
    """Counters a source keeps while it runs; read by the display and the feed. Never reset while live."""

    status_callbacks: int = 0  # device callbacks that carried any PortAudio status flag
    input_overflows: int = 0  # ...of which the device's own input overflowed (audio lost before we saw it)
    dropped_frames: int = 0  # frames dropped by the ring buffer because the consumer fell behind
    frames_in: int = 0  # frames received from the device, file or pipe, at the input rate
    in_rate: int = 0

    @property
    def dropped_s(self) -> float:
        return self.dropped_frames / self.in_rate if self.in_rate else 0.0


class Source:
    """Base of the sources: ``blocks()`` yields mono float32 at ``out_rate`` until the input ends."""

    description: str = ""
    kind: str = ""

    def __init__(self, *, out_rate: int) -> None:
        self.out_rate = out_rate
        self.stats = CaptureStats()

    def blocks(self) -> AsyncIterator[np.ndarray]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the device, file or thread; safe to call twice."""


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
        self._sd = _sounddevice()
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


class FileSource(Source):
    """A file, decoded as it plays (``audio.iter_audio``): at real-time pace, or as fast as it is taken (``fast``)."""

    kind = "file"

    def __init__(self, path: str | Path, *, out_rate: int, fast: bool = False) -> None:
        super().__init__(out_rate=out_rate)
        self.path = Path(path)
        self.fast = fast
        info = audio_file_info(self.path)  # a missing, folder or undecodable file fails here, before anything starts
        self.in_rate = int(info.samplerate)
        self.stats.in_rate = self.in_rate
        self._decoder: Iterator[np.ndarray] | None = None
        pace = "fast" if fast else "real time"
        self.description = f"file: {self.path.name} @ {self.in_rate} Hz x{info.channels} ({pace})"

    async def blocks(self) -> AsyncIterator[np.ndarray]:
        started = time.monotonic()
        produced = 0
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

    def close(self) -> None:
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
        if rate <= 0 or channels <= 0:
            raise DeviceError("--rate and --channels must be positive for --source -")
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


# ---------------------------------------------------------------------------------------------------------------
# Choosing a source from the command line


@dataclass(frozen=True, kw_only=True)
class SourceSpec:
    """What ``--source``, ``--device``, ``--rate``, ``--format``, ``--channels`` and ``--fast`` asked for."""

    source: str = "auto"  # "auto" (mic, else demo), "mic", "loopback", "demo", "-" (stdin) or a file path
    device: str | None = None
    rate: int | None = None
    fmt: str = "f32"
    channels: int | None = None
    fast: bool = False


def open_source(spec: SourceSpec, *, out_rate: int) -> Source:
    """Build the source ``spec`` names; device errors are DeviceError, file errors AudioFileError.

    ``auto`` is the default microphone where there is one, else the bundled demo recordings (with the reason
    in the source's description): the default command then works on any machine, and says what it plays.
    """
    if spec.source == "auto":
        try:
            return open_source(replace(spec, source="mic"), out_rate=out_rate)
        except DeviceError as exc:
            log.info("no microphone (%s); playing the demo recordings", exc)
            return DemoSource(out_rate=out_rate, fast=spec.fast, note=" (no audio input found; --source loopback|FILE|- for others)")
    if spec.source == "demo":
        return DemoSource(out_rate=out_rate, fast=spec.fast)
    if spec.source == "mic":
        pulse_source = _pulse_source_named(spec.device)
        if pulse_source is not None:  # a PulseAudio/PipeWire source name: record it through the pulse device
            return DeviceSource(
                out_rate=out_rate, device="pulse", rate=spec.rate, channels=spec.channels,
                env={"PULSE_SOURCE": pulse_source},
            )
        return DeviceSource(out_rate=out_rate, device=spec.device, rate=spec.rate, channels=spec.channels)
    if spec.source == "loopback":
        return open_loopback(spec, out_rate=out_rate)
    if spec.source == "-":
        if spec.rate is None:
            raise DeviceError("--source - needs the PCM's sample rate: add --rate, e.g. --rate 22050")
        return StdinSource(out_rate=out_rate, rate=spec.rate, fmt=spec.fmt, channels=spec.channels or 1)
    return FileSource(spec.source, out_rate=out_rate, fast=spec.fast)


def open_loopback(spec: SourceSpec, *, out_rate: int) -> DeviceSource:
    if sys.platform.startswith("linux"):
        monitor = resolve_monitor(spec.device)
        sd = _sounddevice()
        names = [d["name"] for d in sd.query_devices() if d["max_input_channels"] > 0]
        if "pulse" in names:
            pa_device: str = "pulse"
        elif "pipewire" in names:
            pa_device = "pipewire"  # PipeWire's own ALSA plugin: it reads PIPEWIRE_NODE instead
        else:
            raise DeviceError(
                "PortAudio sees no PulseAudio/PipeWire device: install the ALSA plugin (`apt install "
                "libasound2-plugins`, or pipewire-alsa) and check that the sound server runs (`pactl info`)"
            )
        env = {"PULSE_SOURCE": monitor} if pa_device == "pulse" else {"PIPEWIRE_NODE": monitor}
        return DeviceSource(
            out_rate=out_rate, device=pa_device, rate=spec.rate, channels=spec.channels or 2, env=env, kind="loopback"
        )
    if spec.device is not None:
        return DeviceSource(
            out_rate=out_rate, device=spec.device, rate=spec.rate, channels=spec.channels, kind="loopback"
        )
    candidates = [d for d in list_input_devices() if d.is_loopback]
    if not candidates:
        raise DeviceError(LOOPBACK_HELP.get(sys.platform, "no loopback input found on this system; pass one with --device"))
    return DeviceSource(
        out_rate=out_rate, device=candidates[0].index, rate=spec.rate, channels=spec.channels, kind="loopback"
    )


def _pulse_source_named(device: str | None) -> str | None:
    """``device`` when it names a PulseAudio/PipeWire source that PortAudio does not list itself, else None."""
    if device is None or device.isdigit() or not sys.platform.startswith("linux") or shutil.which("pactl") is None:
        return None
    sd = _sounddevice()
    if any(device.lower() in d["name"].lower() for d in sd.query_devices() if d["max_input_channels"] > 0):
        return None
    if not any(d["name"] == "pulse" for d in sd.query_devices()):
        return None
    try:
        sources = [name for _, name in _pactl_short("sources")]
    except DeviceError:
        return None
    return device if device in sources else None


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
