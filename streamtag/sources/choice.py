"""The command line's choice of source: ``SourceSpec`` (what ``--source`` and its options asked for) and
``open_source``, which builds that source, falling back to the demo recordings where there is no input."""

from __future__ import annotations

import logging
import shutil
import sys
from dataclasses import dataclass, replace

from streamtag.errors import DeviceError
from streamtag.sources.base import Source
from streamtag.sources.device import DeviceSource
from streamtag.sources.files import DemoSource, FileSource
from streamtag.sources.loopback import open_loopback
from streamtag.sources.network import NetworkSource, is_stream_url
from streamtag.sources.portaudio import load_sounddevice
from streamtag.sources.pulse import pactl_short
from streamtag.sources.stdin import StdinSource

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class SourceSpec:
    """What ``--source``, ``--device``, ``--rate``, ``--format``, ``--channels`` and ``--fast`` asked for."""

    source: str = "auto"  # "auto" (mic, else demo), "mic", "loopback", "demo", "-" (stdin), a stream URL or a file
    device: str | None = None
    rate: int | None = None
    fmt: str = "f32"
    channels: int | None = None
    fast: bool = False
    loop: bool = False  # a file starts again at its end (serve's demos and tests)


def open_source(spec: SourceSpec, *, out_rate: int, reopen: bool = False) -> Source:
    """Build the source ``spec`` names; device errors are DeviceError, file errors AudioFileError.

    ``reopen``: a device (mic or loopback) that is lost is reopened in place, telling its ``on_state``, instead of
    ending its blocks with a DeviceError (``DeviceSource``).

    A URL (``is_stream_url``) is a ``NetworkSource``, which connects when its blocks start: its failures are
    NetworkSourceError (a DeviceError) raised from ``blocks()``, so opening one never blocks the event loop.

    ``auto`` is the default microphone where there is one, else the bundled demo recordings (with the reason
    in the source's description): the default command then works on any machine, and says what it plays.
    """
    if spec.source == "auto":
        try:
            return open_source(replace(spec, source="mic"), out_rate=out_rate, reopen=reopen)
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
                env={"PULSE_SOURCE": pulse_source}, reopen=reopen,
            )
        return DeviceSource(out_rate=out_rate, device=spec.device, rate=spec.rate, channels=spec.channels,
                            reopen=reopen)
    if spec.source == "loopback":
        return open_loopback(device=spec.device, rate=spec.rate, channels=spec.channels, out_rate=out_rate,
                             reopen=reopen)
    if spec.source == "-":
        if spec.rate is None:
            raise DeviceError("--source - needs the PCM's sample rate: add --rate, e.g. --rate 22050")
        return StdinSource(out_rate=out_rate, rate=spec.rate, fmt=spec.fmt, channels=spec.channels or 1)
    if is_stream_url(spec.source):
        return NetworkSource(spec.source, out_rate=out_rate)
    return FileSource(spec.source, out_rate=out_rate, fast=spec.fast, loop=spec.loop)


def _pulse_source_named(device: str | None) -> str | None:
    """``device`` when it names a PulseAudio/PipeWire source that PortAudio does not list itself, else None."""
    if device is None or device.isdigit() or not sys.platform.startswith("linux") or shutil.which("pactl") is None:
        return None
    sd = load_sounddevice()
    if any(device.lower() in d["name"].lower() for d in sd.query_devices() if d["max_input_channels"] > 0):
        return None
    if not any(d["name"] == "pulse" for d in sd.query_devices()):
        return None
    try:
        sources = [name for _, name in pactl_short("sources")]
    except DeviceError:
        return None
    return device if device in sources else None
