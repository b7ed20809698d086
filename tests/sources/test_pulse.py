"""PulseAudio/PipeWire discovery, read from a real server."""

from __future__ import annotations

import pytest

from streamtag.errors import DeviceError
from streamtag.sources.pulse import list_pulse_sources, resolve_monitor


def test_loopback_device_is_found_by_sink_name_index_or_monitor_name(pulse_server, monkeypatch):
    """`live --source loopback --device X` with each way a user may name the sink."""
    for key in ("PULSE_SERVER", "XDG_RUNTIME_DIR", "HOME", "PULSE_CLIENTCONFIG"):
        if key in pulse_server.env:
            monkeypatch.setenv(key, pulse_server.env[key])
    index = next(line.split("\t")[0] for line in pulse_server.pactl("list", "short", "sinks").splitlines()
                 if line.split("\t")[1] == pulse_server.sink)
    for device in (pulse_server.sink, index, pulse_server.monitor):
        assert resolve_monitor(device) == pulse_server.monitor, device
    assert pulse_server.monitor not in list_pulse_sources()  # monitors are not microphones
    with pytest.raises(DeviceError, match="no sink named 'nope'"):
        resolve_monitor("nope")
