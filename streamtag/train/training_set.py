"""What a run trains on: cached log-mels with their targets as arrays, and the augmented batches drawn from them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from streamtag.train.augment import augment, random_crop
from streamtag.train.config import TrainConfig
from streamtag.train.data import Track
from streamtag.train.distill import TeacherTargets, standardise_features


@dataclass
class TrainingSet:
    """Cached log-mels with their targets, as arrays the loop indexes directly."""

    logmels: list[np.ndarray]
    genre: np.ndarray  # (N,) int64, -1 where unlabelled
    taste: np.ndarray  # (N,) float32, NaN where unknown
    moods: np.ndarray  # (N, M) float32, NaN where unknown
    teacher: list[TeacherTargets | None] | None = None  # per track, features standardised; None: no teacher

    @classmethod
    def build(cls, tracks: list[Track], labels: tuple[str, ...], n_moods: int, logmel_of: Callable[[Track], np.ndarray],
              teacher_of: Callable[[Track], TeacherTargets | None] | None = None):
        index = {label: i for i, label in enumerate(labels)}
        return cls(
            logmels=[logmel_of(t) for t in tracks],
            teacher=None if teacher_of is None else standardise_features([teacher_of(t) for t in tracks]),
            genre=np.array([index[t.genre] if t.genre is not None else -1 for t in tracks], dtype=np.int64),
            taste=np.array([np.nan if t.like_rate is None else t.like_rate for t in tracks], dtype=np.float32),
            moods=np.stack([
                np.full(n_moods, np.nan, np.float32) if t.mood_rates is None else t.mood_rates for t in tracks
            ]),
        )


def training_batch(train_set: TrainingSet, idx: np.ndarray, window_frames: int, rng: np.random.Generator,
                   config: TrainConfig) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Random crops of the tracks ``idx``, augmented, and the teacher's targets for each crop (NaN where it
    did not score the track): what one training step sees before mixup."""
    crops = np.empty((len(idx), window_frames, train_set.logmels[0].shape[1]), dtype=np.float32)
    teacher = train_set.teacher
    known = [t for t in teacher if t is not None] if teacher is not None else []
    tags = np.full((len(idx), known[0].tags.shape[1]), np.nan, np.float32) if known else None
    features = np.full((len(idx), known[0].features.shape[1]), np.nan, np.float32) if known else None
    for j, i in enumerate(idx):
        targets = teacher[i] if known else None
        if targets is None:
            crops[j] = random_crop(train_set.logmels[i], window_frames, rng, config.stretch)
            continue
        w = int(rng.integers(0, len(targets.starts)))
        crops[j] = random_crop(train_set.logmels[i], window_frames, rng, config.stretch, anchor=int(targets.starts[w]))
        tags[j], features[j] = targets.tags[w], targets.features[w]
    return augment(crops, rng, config), tags, features
