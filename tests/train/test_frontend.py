"""The log-mel front end against librosa's mel spectrogram on real recordings."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
librosa = pytest.importorskip("librosa")

from streamtag.audio import load_audio  # noqa: E402
from streamtag.train.frontend import FrontendConfig, LogMel  # noqa: E402
from streamtag.train.spectral import mel_filterbank  # noqa: E402

CONFIG = FrontendConfig()


def librosa_logmel(audio: np.ndarray) -> np.ndarray:
    power = librosa.feature.melspectrogram(
        y=audio, sr=CONFIG.sample_rate, n_fft=CONFIG.n_fft, hop_length=CONFIG.hop_samples, n_mels=CONFIG.n_mels,
        center=False, power=2.0,
    )
    return 10 * np.log10(np.maximum(power, 1e-10)).T


@pytest.mark.parametrize(
    "relative",
    ["emotify/audio/rock/1.ogg", "gtzan/samples/jazz.00000.flac", "cc-audio/fats_waller_aint_misbehavin.ogg"],
)
def test_logmel_matches_librosa_on_real_audio(data_dir, relative):
    audio = load_audio(data_dir / relative, sample_rate=CONFIG.sample_rate)[: 5 * CONFIG.sample_rate]
    with torch.no_grad():
        ours = LogMel(CONFIG)(torch.from_numpy(audio)[None])[0].numpy()
    reference = librosa_logmel(audio)
    assert ours.shape == reference.shape == (1 + (audio.size - CONFIG.n_fft) // CONFIG.hop_samples, CONFIG.n_mels)
    audible = reference > -60  # where the log is steep (near the floor) float32 rounding is amplified
    assert np.abs(ours - reference)[audible].max() < 0.01  # dB
    assert np.abs(ours - reference).mean() < 1e-3


def test_mel_filterbank_matches_librosa():
    ours = mel_filterbank(sample_rate=22050, n_fft=1024, n_mels=96, fmin_hz=0.0, fmax_hz=11025.0)
    reference = librosa.filters.mel(sr=22050, n_fft=1024, n_mels=96)
    np.testing.assert_allclose(ours, reference, atol=1e-7)


def test_frame_count_follows_the_formula():
    assert CONFIG.n_frames(66150) == 1 + (66150 - 1024) // 512 == 128
    assert CONFIG.n_frames(1023) == 0
    assert CONFIG.n_frames(1024) == 1


def test_frames_of_a_long_recording_equal_frames_of_hop_aligned_windows(data_dir):
    """Why cached whole-track log-mels are valid training crops for a model that sees raw windows."""
    audio = load_audio(data_dir / "emotify/audio/classical/1.ogg", sample_rate=CONFIG.sample_rate)[: 8 * CONFIG.sample_rate]
    frontend = LogMel(CONFIG)
    with torch.no_grad():
        whole = frontend(torch.from_numpy(audio)[None])[0].numpy()
        start_frame = 37
        window = audio[start_frame * CONFIG.hop_samples : start_frame * CONFIG.hop_samples + 66150]
        part = frontend(torch.from_numpy(np.ascontiguousarray(window))[None])[0].numpy()
    np.testing.assert_allclose(part, whole[start_frame : start_frame + 128], atol=1e-3)
