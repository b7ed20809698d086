"""The PortAudio boundary: loading sounddevice, the input devices PortAudio lists, and initialising it again.

Loading PortAudio, or listing its devices, fails only as a ``DeviceError`` that says what to install or check.

PortAudio reads its device list once, when it initialises: a device that comes back, or a sound server that
restarts, is seen only after ``reinitialise``. A PortAudio call can hang for as long as the sound server is
stopped (SIGSTOP), so callers make these calls on a thread of their own and may give up on one: ``abandon``
then keeps that call from also hanging the interpreter's exit.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import os
import sys
import threading
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


def reinitialise(sd) -> None:
    """Terminate PortAudio and initialise it again, for a fresh device list. Closes every stream still open.

    Call it within ``muted_stderr``: sounddevice's own ``_initialize`` mutes stderr itself, but only until the
    probe of the devices returns, which is never while a sound server is stopped.
    """
    try:
        if sd._initialized:
            sd._terminate()
        sd._check(sd._lib.Pa_Initialize(), "Error initializing PortAudio")
    except sd.PortAudioError as exc:
        raise DeviceError(f"cannot initialise PortAudio again: {exc}") from exc
    sd._initialized += 1  # what sounddevice's exit handler terminates


def abandon(sd) -> None:
    """A PortAudio call is stuck and left to its thread: keep the exit from waiting on it too.

    sounddevice's exit handler calls Pa_Terminate, which waits for the same sound server; and a call stuck within
    ``muted_stderr`` must not keep stderr muted while streamtag says why it stops.
    """
    atexit.unregister(sd._exit_handler)
    _restore_stderr()


_stderr_lock = threading.Lock()
_saved_stderr: int | None = None  # the real stderr while ``muted_stderr`` has sent fd 2 to /dev/null


@contextlib.contextmanager
def muted_stderr():
    """fd 2 to /dev/null (the whole process's: not to be nested), back at the end or at ``abandon``.

    While PortAudio initialises, its ALSA and JACK plugins print a screenful as they probe the devices, and every
    open that fails prints three lines of PortAudio's own."""
    global _saved_stderr
    with _stderr_lock:
        _saved_stderr = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    try:
        yield
    finally:
        _restore_stderr()


def _restore_stderr() -> None:
    global _saved_stderr
    with _stderr_lock:
        if _saved_stderr is not None:
            os.dup2(_saved_stderr, 2)
            os.close(_saved_stderr)
            _saved_stderr = None


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
