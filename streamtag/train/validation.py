"""Clip-level validation during training: window scores averaged over each clip, and the valid score that
decides which epoch is kept."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from streamtag import metrics
from streamtag.train.crnn import CRNN
from streamtag.train.training_set import TrainingSet


@dataclass(frozen=True)
class Validation:
    accuracy: float  # clip-level genre accuracy
    taste_spearman: float  # NaN where no valid track has a like rate
    mood_correlation: float  # mean over moods of Pearson's r; NaN for fewer than 3 tracks with mood rates

    @property
    def score(self) -> float:
        """Clip accuracy plus half the crowd-taste Spearman correlation (where known): genre first, taste as a
        close second."""
        return self.accuracy + (0.5 * self.taste_spearman if not math.isnan(self.taste_spearman) else 0.0)


NOT_VALIDATED = Validation(accuracy=math.nan, taste_spearman=math.nan, mood_correlation=math.nan)


def window_crops(logmel: np.ndarray, *, window_frames: int, hop_frames: int) -> np.ndarray:
    """The windows of a track's log-mel every ``hop_frames``, as the clip-level scores see them: (N, T, mels)."""
    return np.stack([logmel[s : s + window_frames] for s in range(0, logmel.shape[0] - window_frames + 1, hop_frames)])


def clip_predictions(model: CRNN, logmels: list[np.ndarray], *, window_frames: int, hop_frames: int,
                     batch_size: int = 64) -> dict[str, np.ndarray]:
    """Clip-level genre probabilities, taste, moods and (where the model has them) tags: window scores
    averaged over each clip."""
    model.eval()
    device = next(model.parameters()).device
    heads = {"genre": ("genre_logits", lambda x: torch.softmax(x, 1)), "taste": ("taste_logit", torch.sigmoid),
             "moods": ("mood_logits", torch.sigmoid), "tags": ("tag_logits", torch.sigmoid)}
    clips: dict[str, list] = {name: [] for name in heads}
    with torch.no_grad():
        for logmel in logmels:
            crops = window_crops(logmel, window_frames=window_frames, hop_frames=hop_frames)
            outs = [model.forward_logmel(torch.from_numpy(crops[i : i + batch_size]).to(device))
                    for i in range(0, len(crops), batch_size)]
            for name, (key, activation) in heads.items():
                if key in outs[0]:
                    clips[name].append(torch.cat([activation(o[key]) for o in outs]).mean(0).cpu().numpy())
    return {name: np.stack(values) for name, values in clips.items() if values}


def validate(model: CRNN, data: TrainingSet, *, window_frames: int, hop_frames: int) -> Validation:
    clips = clip_predictions(model, data.logmels, window_frames=window_frames, hop_frames=hop_frames)
    genre, taste, moods = clips["genre"], clips["taste"], clips["moods"]
    known = ~np.isnan(data.taste)
    known_m = ~np.isnan(data.moods[:, 0])
    return Validation(
        accuracy=float(np.mean(genre.argmax(1) == data.genre)),
        taste_spearman=metrics.spearman(taste[known], data.taste[known]) if known.any() else float("nan"),
        mood_correlation=float(np.nanmean([
            metrics.pearson(moods[known_m, j], data.moods[known_m, j]) for j in range(moods.shape[1])
        ])) if known_m.sum() > 2 else float("nan"),
    )
