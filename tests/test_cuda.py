"""The CUDA paths, where a GPU is present (skipped elsewhere; tools/gpu_check.sh runs them on a GPU machine).

On the CPU the same code paths are exercised with CPU-resident OrtValues (tests/test_streaming.py,
tests/test_engine.py); here they run on the device itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streamtag.audio import load_audio
from streamtag.core.tagger import Tagger
from streamtag.engine import Engine

ort = pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.skipif(
    "CUDAExecutionProvider" not in ort.get_available_providers() or not Path("/proc/driver/nvidia/version").exists(),
    reason="no CUDA provider or no NVIDIA driver here",
)
TOLERANCE = 1e-4
FRAME = 512


def _scores(windows):
    return np.stack([np.concatenate([w.genre, w.moods, w.tags, w.embedding, [w.taste]]) for w in windows])


def _feed(tagger, audio, chunk):
    return [w for i in range(0, audio.size, chunk) for w in tagger.feed(audio[i : i + chunk])] + tagger.finish()


@pytest.mark.parametrize("hop_frames", [1, 22, 65])
def test_cuda_frame_ring_equals_whole_windows_on_the_cpu(model_path, data_dir, hop_frames):
    audio = load_audio(data_dir / "gtzan/samples/metal.00000.flac", sample_rate=22050)[: 22050 * 12]
    hop = hop_frames * FRAME
    reference = _scores(_feed(Tagger(Engine(model_path, provider="cpu", full_window=True), hop_samples=hop), audio, audio.size))
    cuda = Engine(model_path, provider="cuda")
    assert cuda.provider == "cuda" and cuda.device_ring and cuda.parts.frontend_kind == "conv"
    live = Tagger(cuda, hop_samples=hop, batch_size=1)
    assert live.shares_frames
    assert np.abs(_scores(_feed(live, audio, 1024)) - reference).max() < TOLERANCE
    offline = Tagger(Engine(model_path, provider="cuda", device_ring=False), hop_samples=hop, batch_size=32)
    assert np.abs(_scores(_feed(offline, audio, audio.size)) - reference).max() < TOLERANCE


def test_cuda_whole_windows_with_the_device_ring(model_path, data_dir):
    audio = load_audio(data_dir / "gtzan/samples/disco.00000.flac", sample_rate=22050)[: 22050 * 9]
    reference = _scores(_feed(Tagger(Engine(model_path, provider="cpu"), hop_samples=11025, batch_size=1), audio, 700))
    ring = Tagger(Engine(model_path, provider="cuda", full_window=True), hop_samples=11025, batch_size=1)
    assert np.abs(_scores(_feed(ring, audio, 700)) - reference).max() < TOLERANCE
