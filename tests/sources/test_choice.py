"""The command line's choice of source: with no audio input, `streamtag live` plays the demo and says so."""

from __future__ import annotations

import os
import subprocess
import sys

from streamtag.demo import demo_recordings
from streamtag.sources.choice import SourceSpec, open_source

# Run in a fresh interpreter, so that the sounddevice setting below stays there. -1 is paNoDevice, what
# PortAudio reports as the default input on a machine that has none; the default `live` then asks for the
# microphone, gets a DeviceError, and falls back to the demo.
NO_INPUT_DEVICE = """
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
import sounddevice
sounddevice.default.device = -1
from streamtag.sources.choice import SourceSpec, open_source
source = open_source(SourceSpec(), out_rate=22050)
print(type(source).__name__, source.kind, source.description, sep="\\t")
"""


def test_auto_source_with_no_input_device_falls_back_to_the_demo():
    result = subprocess.run(
        [sys.executable, "-c", NO_INPUT_DEVICE], env=dict(os.environ), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    class_name, kind, description = result.stdout.strip().split("\t")
    names = ", ".join(p.stem for p in demo_recordings())
    assert names == "brahms-hungarian-dance-5, kevin-macleod-vibe-ace"
    assert (class_name, kind) == ("DemoSource", "demo")
    assert description == f"demo: {names}, looping (no audio input found; --source loopback|FILE|- for others)"
    assert "no microphone (no audio input device found" in result.stderr  # the reason the demo was chosen


def test_explicit_demo_source():
    source = open_source(SourceSpec(source="demo"), out_rate=22050)
    assert source.kind == "demo"
    assert source.description == "demo: brahms-hungarian-dance-5, kevin-macleod-vibe-ace, looping"
