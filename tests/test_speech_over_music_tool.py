"""tools/speech_over_music.py: the mix holds the ratio it is asked for, on real recordings."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from streamtag.audio import load_audio
from streamtag.core.levels import rms

TOOL = Path(__file__).resolve().parents[1] / "tools" / "speech_over_music.py"


def _tool():
    spec = importlib.util.spec_from_file_location("speech_over_music", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("ratio_db", [12.0, 0.0, -12.0])
def test_the_speech_stands_the_ratio_above_the_looped_music(data_dir, ratio_db):
    tool = _tool()
    speech = load_audio(data_dir / "cc-audio" / tool.SPEECH[0], sample_rate=22050)
    music = load_audio(data_dir / "cc-audio" / "sorohanro_-_solo-trumpet-06.ogg", sample_rate=22050)[:22050 * 3]
    out = tool.mix(speech, music, ratio_db)
    assert out.shape == speech.shape and out.dtype == np.float32
    assert np.max(np.abs(out)) <= 0.99 + 1e-6
    # The mix is a * speech + b * (the music repeated from its start): solve for a and b, then read the ratio.
    looped = np.tile(music, len(speech) // len(music) + 1)[: len(speech)]
    (a, b), *_ = np.linalg.lstsq(np.stack([speech, looped], axis=1).astype(np.float64), out, rcond=None)
    np.testing.assert_allclose(a * speech + b * looped, out, atol=1e-5)  # nothing else in it, the music looped
    assert 20 * np.log10(rms(a * speech) / rms(b * looped)) == pytest.approx(ratio_db, abs=0.01)


def test_every_default_recording_is_in_the_data(data_dir):
    tool = _tool()
    assert all((data_dir / "cc-audio" / name).is_file() for name in (*tool.SPEECH, *tool.MUSIC))


def test_a_silent_recording_is_refused():
    tool = _tool()
    with pytest.raises(ValueError, match="silent recording"):
        tool.mix(np.ones(100, dtype=np.float32) * 0.1, np.zeros(50, dtype=np.float32), 0.0)
