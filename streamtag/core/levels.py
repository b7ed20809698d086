"""Sound levels: the RMS level of samples in dBFS, and the floor that digital silence reads. Pure."""

from __future__ import annotations

import numpy as np

# Level reported for digital silence, in dBFS: the floor of 32-bit float audio is far lower, but nothing
# below -120 dBFS is audible or meaningful to a meter.
SILENCE_FLOOR_DBFS = -120.0


def rms(samples: np.ndarray) -> float:
    """The root mean square of ``samples`` (at least one), in float64 whatever their type."""
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


def level_dbfs(samples: np.ndarray) -> float:
    """RMS level in dB relative to full scale (a full-scale sine reads -3 dBFS)."""
    if samples.size == 0:
        return SILENCE_FLOOR_DBFS
    value = rms(samples)
    return max(SILENCE_FLOOR_DBFS, 20.0 * np.log10(value)) if value > 0 else SILENCE_FLOOR_DBFS
