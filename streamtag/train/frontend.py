"""The log-mel front end: the one definition of the spectrogram, used by training, export and tests.

It is a frozen layer inside the model, so the exported ONNX graph takes raw audio and nothing outside the
model computes features. The STFT is a Conv1d whose fixed kernels are the windowed Fourier basis: ONNX
Runtime's CUDA provider has no STFT/DFT kernel, but it runs convolutions on the GPU.

Frames are not centred (no padding): a window of ``n`` samples gives ``1 + (n - n_fft) // hop`` frames, and
frame ``k`` of a long recording equals frame 0 of the window that starts at sample ``k * hop``. That makes
log-mels cached from whole tracks identical to what the model computes on any hop-aligned window.
"""

from __future__ import annotations

import torch
from torch import nn

from streamtag.train.config import FrontendConfig
from streamtag.train.spectral import POWER_FLOOR, hann_window, mel_filterbank


def fourier_kernels(n_fft: int) -> torch.Tensor:
    """Hann-windowed cosine and sine kernels, shape (2 * (1 + n_fft // 2), 1, n_fft): real parts, then imaginary.

    Built from index vectors inside the graph rather than stored: the stored kernels would be 4 MB of the
    model file, while ONNX Runtime folds these few ops into constants when it loads the model. The phase
    index ``f * n mod n_fft`` is exact in float32 (``f * n < 2**24``), so the kernels are as accurate as
    ones computed in float64.
    """
    n = torch.arange(n_fft, dtype=torch.float32)
    freqs = torch.arange(1 + n_fft // 2, dtype=torch.float32)
    phase = 2 * torch.pi * torch.remainder(torch.outer(freqs, n), n_fft) / n_fft
    kernels = torch.cat([torch.cos(phase), -torch.sin(phase)]) * hann_window(n_fft, xp=torch)
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
