"""The spectral definitions that the log-mel front end (frontend.py), its exported ONNX graphs (export.py) and
the classic feature vector (features.py) share: Slaney's mel scale and filter bank, the FFT bin frequencies
and the periodic Hann window. Numpy only, no torch."""

from __future__ import annotations

import numpy as np

# Slaney's mel scale (the Auditory Toolbox's, librosa's default htk=False): linear below 1 kHz, logarithmic above.
HZ_PER_MEL = 200.0 / 3  # below the log region
LOG_START_HZ = 1000.0
LOG_START_MEL = LOG_START_HZ / HZ_PER_MEL
LOG_STEP = np.log(6.4) / 27.0  # log-Hz per mel above it
# Floor of the power before the log, in power units: -100 dB, far below 16-bit quantisation noise (librosa's
# power_to_db ``amin`` too). The model's front end and the baseline's features both floor there.
POWER_FLOOR = 1e-10


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    log_part = LOG_START_MEL + np.log(np.maximum(hz, LOG_START_HZ) / LOG_START_HZ) / LOG_STEP
    return np.where(hz >= LOG_START_HZ, log_part, hz / HZ_PER_MEL)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= LOG_START_MEL, LOG_START_HZ * np.exp(LOG_STEP * (mel - LOG_START_MEL)), HZ_PER_MEL * mel)


def fft_frequencies_hz(*, sample_rate: float, n_fft: int) -> np.ndarray:
    """Centre frequencies of the ``1 + n_fft // 2`` bins of a real FFT, 0 Hz to Nyquist."""
    return np.linspace(0.0, sample_rate / 2, 1 + n_fft // 2)


def mel_filterbank(*, sample_rate: float, n_fft: int, n_mels: int, fmin_hz: float = 0.0, fmax_hz: float | None = None,
                   dtype=np.float32) -> np.ndarray:
    """Triangular mel filters with Slaney area normalisation, shape (n_mels, 1 + n_fft // 2); ``fmax_hz`` None:
    Nyquist.

    Computed in float64 and returned as ``dtype``: float32 is what the front end and its ONNX graphs multiply
    by; the feature vector, which reproduces librosa's float64 figures, asks for float64.
    """
    fft_hz = fft_frequencies_hz(sample_rate=sample_rate, n_fft=n_fft)
    fmax_hz = sample_rate / 2 if fmax_hz is None else fmax_hz
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(fmin_hz), hz_to_mel(fmax_hz), n_mels + 2))
    widths = np.diff(edges_hz)
    ramps = edges_hz[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]  # equal area per filter
    return weights.astype(dtype)


def hann_window(n_samples: int, *, xp=np):
    """Periodic Hann window (the DFT-even one that overlap-adds to a constant, as librosa and torch.stft use).

    ``xp`` is the array module that computes it: numpy gives float64; the front end passes torch, which computes
    it in float32 as the front end always has. Rounding numpy's window to float32, or numpy's float32 cosine,
    differs from torch's in the last bit for many samples, and would change every cached log-mel and so every
    trained weight.
    """
    return 0.5 - 0.5 * xp.cos(2.0 * xp.pi * xp.arange(n_samples) / n_samples)
