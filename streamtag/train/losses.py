"""The multi-task loss: genre (cross-entropy, or soft targets after mixup), crowd taste and GEMS moods (rates,
BCE), and, where a teacher scored the track, its tags (soft-target BCE) and features (MSE): see distill.py.
Every term skips the targets that are unknown, so unlabelled tracks teach only the teacher's targets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from streamtag.train.config import TrainConfig

_bce = nn.functional.binary_cross_entropy_with_logits


@dataclass
class BatchTargets:
    """What one batch is taught: labels where known (genre -1 / NaN where not), the teacher's where scored."""

    genre: torch.Tensor  # (B,) int64, -1 unlabelled
    taste: torch.Tensor  # (B,)
    moods: torch.Tensor  # (B, M)
    tags: torch.Tensor | None = None  # (B, T), NaN rows where the teacher did not score the track
    features: torch.Tensor | None = None  # (B, F)
    genre_soft: torch.Tensor | None = None  # (B, G) mixed one-hot targets; NaN rows where a partner is unlabelled


def _masked(loss: Callable, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``loss`` over the elements whose target is known (not NaN); zero, still in the graph, when none is."""
    known = ~torch.isnan(target)
    if not known.any():
        return prediction.sum() * 0.0
    return loss(prediction[known], target[known])


def multitask_loss(out: dict, targets: BatchTargets, config: TrainConfig) -> torch.Tensor:
    if targets.genre_soft is None:
        labelled = targets.genre >= 0
        genre_loss = (nn.functional.cross_entropy(out["genre_logits"][labelled], targets.genre[labelled],
                                                  label_smoothing=config.label_smoothing)
                      if labelled.any() else out["genre_logits"].sum() * 0.0)
    else:
        labelled = ~torch.isnan(targets.genre_soft[:, 0])
        log_p = torch.log_softmax(out["genre_logits"][labelled], dim=1)
        genre_loss = -(targets.genre_soft[labelled] * log_p).sum(dim=1).mean() if labelled.any() else log_p.sum() * 0.0
    loss = (
        genre_loss
        + config.taste_weight * _masked(_bce, out["taste_logit"], targets.taste)
        + config.mood_weight * _masked(_bce, out["mood_logits"], targets.moods)
    )
    if targets.tags is not None and "tag_logits" in out:
        loss = loss + config.tag_weight * _masked(_bce, out["tag_logits"], targets.tags)
    if targets.features is not None and "teacher_features" in out:
        loss = loss + config.feature_weight * _masked(nn.functional.mse_loss, out["teacher_features"], targets.features)
    return loss
