"""The PortAudio boundary: loading sounddevice, and the input devices PortAudio lists.

Loading PortAudio, or listing its devices, fails only as a ``DeviceError`` that says what to install or check.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from dataclasses import dataclass

from streamtag.errors import DeviceError

# Input devices that carry what the machine plays, by lower-case name fragment, for systems without a monitor
# (see streamtag.sources.loopback).
LOOPBACK_NAME_HINTS = {
    "win32": ("stereo mix", "what u hear", "wave out mix", "loopback", "cable output", "voicemeeter out"),
    "darwin": ("blackhole", "loopback", "soundflower"),
}


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


def load_sounddevice():
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


def list_input_devices() -> list[InputDevice]:
    sd = load_sounddevice()
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
