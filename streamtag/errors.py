"""The one exception tree of streamtag.

::

    StreamtagError              anything streamtag reports to the user; the message says what to do
     +-- AudioFileError         a file that cannot be read or decoded
     +-- DeviceError            no audio server, no such device, a format the device refuses
     |    +-- NetworkSourceError  a network stream that cannot be reached, is not audio, or stops
     +-- ModelError             a missing, corrupt or mismatched model, or an unavailable provider
     +-- FeedError              the websocket feed cannot start (busy port, bad address)
     +-- ProfileError           a taste profile that cannot be read, written or used with this model

Errors from PortAudio, libsndfile, FFmpeg (PyAV) and onnxruntime are turned into these at the boundary where they occur.
"""


class StreamtagError(Exception):
    """Base class of every error streamtag reports to the user."""


class AudioFileError(StreamtagError):
    """An audio file is missing, unreadable or not decodable."""


class DeviceError(StreamtagError):
    """An audio device or server is missing or refuses the requested format."""


class NetworkSourceError(DeviceError):
    """A network audio stream cannot be reached or read, is not audio, or has stopped (a live stream that ends)."""


class ModelError(StreamtagError):
    """A model file is missing, corrupt, mismatched, or its execution provider cannot load."""


class FeedError(StreamtagError):
    """The websocket feed cannot be served."""


class ProfileError(StreamtagError):
    """A personal taste profile cannot be read, written or applied."""


class CorruptProfileError(ProfileError):
    """The profile file could not be parsed; it has been renamed to ``aside``."""

    def __init__(self, message: str, *, aside) -> None:
        super().__init__(message)
        self.aside = aside
