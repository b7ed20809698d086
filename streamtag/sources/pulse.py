"""PulseAudio/PipeWire discovery through ``pactl``: the sources, the sink monitors, and which monitor to record.

Only Linux has these, and only where ``pactl`` is installed; elsewhere the listings are empty. A sound server
that does not answer is a ``DeviceError`` that says how to start it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass

from streamtag.errors import DeviceError

PACTL_TIMEOUT_S = 5.0
DEFAULT_MONITOR = "@DEFAULT_MONITOR@"  # PulseAudio's (and pipewire-pulse's) name for the default sink's monitor


@dataclass(frozen=True, kw_only=True)
class MonitorSource:
    """A PulseAudio/PipeWire monitor: what a sink plays, recordable with ``--source loopback --device SINK``."""

    name: str
    sink: str
    is_default: bool


def list_pulse_sources() -> list[str]:
    """Names of the PulseAudio/PipeWire sources that are not monitors (microphones, virtual sources)."""
    if not sys.platform.startswith("linux") or shutil.which("pactl") is None:
        return []
    return [name for _, name in pactl_short("sources") if not name.endswith(".monitor")]


def list_monitor_sources() -> list[MonitorSource]:
    """The PulseAudio/PipeWire sink monitors (Linux, when ``pactl`` is installed and a server answers)."""
    if not sys.platform.startswith("linux") or shutil.which("pactl") is None:
        return []
    sinks = [name for _, name in pactl_short("sinks")]
    sources = {name for _, name in pactl_short("sources")}
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


def pactl_short(kind: str) -> list[tuple[str, str]]:
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
        for index, name in pactl_short("sinks"):
            if index == device:
                return f"{name}.monitor"
    for m in monitors:
        if device in (m.name, m.sink):
            return m.name
    names = ", ".join(m.sink for m in monitors)
    raise DeviceError(f"no sink named {device!r} to record from; the sinks are: {names} (see `streamtag devices`)")
