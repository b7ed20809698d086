"""The spectral definitions the front end and the feature vector share: Slaney's mel scale at points worked out
by hand, the filter bank's forms, and the Hann window as numpy and torch compute it."""

from __future__ import annotations

import ast

import numpy as np
import pytest

from streamtag.train import spectral


def test_spectral_imports_no_torch():
    tree = ast.parse(open(spectral.__file__).read())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"__future__", "numpy"}


def test_mel_scale_is_linear_to_1_khz_and_logarithmic_above():
    # 200/3 Hz per mel up to 1 kHz (mel 15), then 27 mels per factor of 6.4: 6400 Hz is mel 42
    np.testing.assert_allclose(spectral.hz_to_mel(np.array([0.0, 500.0, 1000.0, 6400.0])), [0.0, 7.5, 15.0, 42.0],
                               rtol=1e-12)
    hz = np.array([0.0, 123.0, 999.0, 1000.0, 4321.0, 11025.0])
    np.testing.assert_allclose(spectral.mel_to_hz(spectral.hz_to_mel(hz)), hz, rtol=1e-12)


def test_fft_frequencies_step_by_the_rate_over_the_size():
    np.testing.assert_array_equal(spectral.fft_frequencies_hz(sample_rate=22050, n_fft=2048),
                                  np.arange(1025) * 22050 / 2048)  # exact: 2048 is a power of two


def test_filterbank_defaults_and_dtypes():
    wide = spectral.mel_filterbank(sample_rate=22050, n_fft=1024, n_mels=96, dtype=np.float64)
    narrow = spectral.mel_filterbank(sample_rate=22050, n_fft=1024, n_mels=96, fmin_hz=0.0, fmax_hz=11025.0)
    assert wide.shape == narrow.shape == (96, 513) and narrow.dtype == np.float32
    np.testing.assert_array_equal(narrow, wide.astype(np.float32))  # fmax None is Nyquist; float32 rounds float64


def test_hann_window_by_hand():
    np.testing.assert_allclose(spectral.hann_window(4), [0.0, 0.5, 1.0, 0.5], atol=1e-16)  # periodic: no final 0


def test_hann_window_in_torch_is_float32_and_agrees_with_numpy():
    torch = pytest.importorskip("torch")
    window = spectral.hann_window(1024, xp=torch)
    assert window.dtype == torch.float32
    np.testing.assert_allclose(window.numpy(), spectral.hann_window(1024), rtol=0, atol=2.5e-7)
