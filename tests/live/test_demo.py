"""With no audio input, `streamtag live` plays the bundled demo recordings and says so."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import numpy as np
import soundfile

from streamtag.demo import demo_recordings
from streamtag.sources import DemoSource, SourceSpec, open_source


def test_demo_recordings_are_bundled_with_their_attribution():
    paths = demo_recordings()
    assert [p.name for p in paths] == ["brahms-hungarian-dance-5.ogg", "kevin-macleod-vibe-ace.ogg"]
    attribution = (paths[0].parent / "ATTRIBUTION.md").read_text()
    assert "Public Domain" in attribution and "Creative Commons Attribution 3.0" in attribution
    assert all(soundfile.info(str(p)).duration > 40 for p in paths)


def test_demo_source_plays_the_recordings_in_turn_and_loops():
    source = DemoSource(out_rate=22050, fast=True)
    first = soundfile.read(str(demo_recordings()[0]), dtype="float32")[0]
    total = sum(soundfile.info(str(p)).frames for p in demo_recordings())

    async def take(n_samples):
        got, seen = [], 0
        async for block in source.blocks():
            got.append(block)
            seen += len(block)
            if seen >= n_samples:
                break
        return np.concatenate(got)

    audio = asyncio.run(take(total + 22050))
    source.close()
    np.testing.assert_allclose(audio[: first.size], first, atol=1e-6)  # same rate: the samples themselves
    np.testing.assert_allclose(audio[total : total + 1000], first[:1000], atol=1e-6)  # looped to the start


def test_auto_source_without_a_sound_server_falls_back_to_the_demo(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PULSE_SERVER", "PULSE_SOURCE")}
    env["PULSE_SERVER"] = f"unix:{tmp_path}/nothing-here"  # no sound server: no input device
    code = "from streamtag.sources import *; s = open_source(SourceSpec(), out_rate=22050); print(s.kind, '|', s.description)"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    kind, description = result.stdout.strip().split(" | ")
    assert kind in ("demo", "mic"), result.stderr
    if kind == "demo":  # where ALSA still offers a default input, the microphone wins
        assert "no audio input found" in description and "brahms-hungarian-dance-5" in description


def test_explicit_demo_source():
    assert open_source(SourceSpec(source="demo"), out_rate=22050).kind == "demo"
