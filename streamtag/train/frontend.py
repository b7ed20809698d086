"""The log-mel front end: the one definition of the spectrogram, used by training, export and tests.

It is a frozen layer inside the model, so the exported ONNX graph takes raw audio and nothing outside the
model computes features. The STFT is a Conv1d whose fixed kernels are the windowed Fourier basis: ONNX
Runtime's CUDA provider has no STFT/DFT kernel, but it runs convolutions on the GPU.

Frames are not centred (no padding): a window of ``n`` samples gives ``1 + (n - n_fft) // hop`` frames, and
frame ``k`` of a long recording equals frame 0 of the window that starts at sample ``k * hop``. That makes
log-mels cached from whole tracks identical to what the model computes on any hop-aligned window.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from streamtag.train.config import FrontendConfig

# Floor of the mel power before the log, in power units: -100 dB, far below 16-bit quantisation noise.
POWER_FLOOR = 1e-10


# Slaney's mel scale (the Auditory Toolbox's, librosa's default): linear below 1 kHz, logarithmic above.
_HZ_PER_MEL = 200.0 / 3
_LOG_START_HZ = 1000.0
_LOG_START_MEL = _LOG_START_HZ / _HZ_PER_MEL
_LOG_STEP = np.log(6.4) / 27.0


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    log_part = _LOG_START_MEL + np.log(np.maximum(hz, _LOG_START_HZ) / _LOG_START_HZ) / _LOG_STEP
    return np.where(hz >= _LOG_START_HZ, log_part, hz / _HZ_PER_MEL)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= _LOG_START_MEL, _LOG_START_HZ * np.exp(_LOG_STEP * (mel - _LOG_START_MEL)), _HZ_PER_MEL * mel)


def mel_filterbank(*, sample_rate: int, n_fft: int, n_mels: int, fmin_hz: float, fmax_hz: float) -> np.ndarray:
    """Triangular mel filters with Slaney area normalisation, shape (n_mels, 1 + n_fft // 2)."""
    fft_hz = np.linspace(0.0, sample_rate / 2, 1 + n_fft // 2)
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(fmin_hz), hz_to_mel(fmax_hz), n_mels + 2))
    widths = np.diff(edges_hz)
    ramps = edges_hz[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]  # equal area per filter
    return weights.astype(np.float32)


def fourier_kernels(n_fft: int) -> torch.Tensor:
    """Hann-windowed cosine and sine kernels, shape (2 * (1 + n_fft // 2), 1, n_fft): real parts, then imaginary.

    Built from index vectors inside the graph rather than stored: the stored kernels would be 4 MB of the
    model file, while ONNX Runtime folds these few ops into constants when it loads the model. The phase
    index ``f * n mod n_fft`` is exact in float32 (``f * n < 2**24``), so the kernels are as accurate as
    ones computed in float64.
    """
    n = torch.arange(n_fft, dtype=torch.float32)
    freqs = torch.arange(1 + n_fft // 2, dtype=torch.float32)
    window = 0.5 - 0.5 * torch.cos(2 * torch.pi * n / n_fft)  # periodic Hann, as librosa and torch.stft use
    phase = 2 * torch.pi * torch.remainder(torch.outer(freqs, n), n_fft) / n_fft
    kernels = torch.cat([torch.cos(phase), -torch.sin(phase)]) * window
    return kernels.unsqueeze(1)


class LogMel(nn.Module):
    """Raw mono audio (batch, samples) -> log-mel power in dB (batch, frames, n_mels). No trainable weights."""

    def __init__(self, config: FrontendConfig) -> None:
        super().__init__()
        self.config = config
        fmax_hz = config.fmax_hz or config.sample_rate / 2
        self.n_bins = 1 + config.n_fft // 2
        mel = mel_filterbank(
            sample_rate=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels, fmin_hz=config.fmin_hz, fmax_hz=fmax_hz
        )
        self.register_buffer("mel_t", torch.from_numpy(mel.T.copy()))  # (bins, n_mels)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        kernels = fourier_kernels(self.config.n_fft)
        spec = nn.functional.conv1d(audio.unsqueeze(1), kernels, stride=self.config.hop_samples)  # (B, 2*bins, T)
        real, imag = spec[:, : self.n_bins], spec[:, self.n_bins :]
        power = (real * real + imag * imag).transpose(1, 2)  # (B, T, bins)
        mel = power @ self.mel_t  # (B, T, n_mels)
        return 10.0 * torch.log10(torch.clamp(mel, min=POWER_FLOOR))
