"""Loopback ("what the machine is playing"): the input that records it, per system.

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

The names looked for on Windows and macOS are ``portaudio.LOOPBACK_NAME_HINTS``.
"""

from __future__ import annotations

import sys

from streamtag.errors import DeviceError
from streamtag.sources.device import DeviceSource
from streamtag.sources.portaudio import list_input_devices, load_sounddevice
from streamtag.sources.pulse import resolve_monitor

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


def open_loopback(
    *, device: str | None, rate: int | None, channels: int | None, out_rate: int, reopen: bool = False
) -> DeviceSource:
    """The loopback source for ``--source loopback [--device D] [--rate R] [--channels C]``; ``reopen`` as for
    ``DeviceSource``."""
    if sys.platform.startswith("linux"):
        monitor = resolve_monitor(device)
        sd = load_sounddevice()
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
            out_rate=out_rate, device=pa_device, rate=rate, channels=channels or 2, env=env, kind="loopback",
            reopen=reopen,
        )
    if device is not None:
        return DeviceSource(out_rate=out_rate, device=device, rate=rate, channels=channels, kind="loopback",
                            reopen=reopen)
    candidates = [d for d in list_input_devices() if d.is_loopback]
    if not candidates:
        raise DeviceError(LOOPBACK_HELP.get(sys.platform, "no loopback input found on this system; pass one with --device"))
    return DeviceSource(
        out_rate=out_rate, device=candidates[0].index, rate=rate, channels=channels, kind="loopback", reopen=reopen
    )
