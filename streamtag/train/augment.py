"""Augmentation of log-mel training crops: random crops with a tempo stretch, gain, EQ, a small pitch shift,
SpecAugment masks, and mixup. All of it draws from the caller's numpy generator, in a fixed order, so a seed
gives the same batches (and a resumed run the same ones as an uninterrupted run)."""

from __future__ import annotations

import numpy as np

from streamtag.train.config import TrainConfig


def random_crop(logmel: np.ndarray, window_frames: int, rng: np.random.Generator, stretch: float,
                anchor: int | None = None) -> np.ndarray:
    """A random crop of ``window_frames * r`` frames (r in 1 +- stretch) linearly resampled to ``window_frames``.

    With ``anchor`` (a window start, in frames) the crop is centred on that window instead of drawn at random:
    with r = 1 it is exactly that window."""
    length = min(logmel.shape[0], max(2, round(window_frames * rng.uniform(1 - stretch, 1 + stretch))))
    if anchor is None:
        start = rng.integers(0, logmel.shape[0] - length + 1)
    else:
        start = int(np.clip(anchor + (window_frames - length) // 2, 0, logmel.shape[0] - length))
    if length == window_frames:
        return logmel[start : start + window_frames]
    position = np.linspace(0, length - 1, window_frames)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, length - 1)
    frac = (position - low)[:, None].astype(np.float32)
    part = logmel[start : start + length]
    return part[low] * (1 - frac) + part[high] * frac


def augment(batch: np.ndarray, rng: np.random.Generator, config: TrainConfig) -> np.ndarray:
    """Per crop: gain, a smooth random EQ, a small mel shift, one time and one frequency mask (SpecAugment).

    The aim is artist invariance: the model overfits production and timbre of the few artists it trains on
    (87 % train vs 60 % valid clip accuracy without these), and these are the cheap ways, on a log-mel, to
    make the same music sound differently produced.
    """
    n, n_frames, n_mels = batch.shape
    batch = batch + rng.uniform(-config.gain_db, config.gain_db, size=(n, 1, 1)).astype(np.float32)
    anchors = np.linspace(0, n_mels - 1, config.eq_points)
    for i in range(n):
        curve = np.interp(np.arange(n_mels), anchors, rng.uniform(-config.eq_db, config.eq_db, config.eq_points))
        batch[i] += curve.astype(np.float32)[None, :]
        shift = int(rng.integers(-config.shift_bins, config.shift_bins + 1))
        if shift:
            batch[i] = np.roll(batch[i], shift, axis=1)
            edge = slice(0, shift) if shift > 0 else slice(n_mels + shift, n_mels)
            batch[i][:, edge] = batch[i][:, [shift if shift > 0 else n_mels + shift - 1]]
    fill = batch.mean(axis=(1, 2))
    for i in range(len(batch)):
        t = rng.integers(0, config.time_mask_frames + 1)
        t0 = rng.integers(0, n_frames - t + 1)
        f = rng.integers(0, config.freq_mask_bins + 1)
        f0 = rng.integers(0, n_mels - f + 1)
        batch[i, t0 : t0 + t, :] = fill[i]
        batch[i, :, f0 : f0 + f] = fill[i]
    return batch


def mixup(arrays: list[np.ndarray | None], rng: np.random.Generator, *, alpha: float) -> list[np.ndarray | None]:
    """Each row of every array blended with the same random partner row, by one weight drawn from
    Beta(alpha, alpha) for the batch; None stays None.

    NaN (unknown) in either partner stays NaN, so the masked losses skip it."""
    lam = float(rng.beta(alpha, alpha))
    perm = rng.permutation(len(arrays[0]))
    return [None if x is None else lam * x + (1 - lam) * x[perm] for x in arrays]
