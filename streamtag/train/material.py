"""What a training run learns from: labelled tracks, unlabelled audio for distillation, the log-mel cache and
the teacher's targets, put together into the arrays the loop reads. One place for `streamtag train` and
`tools/crossval.py`, so a fold trains exactly as the shipped model does."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from streamtag.audio import audio_files_in
from streamtag.errors import StreamtagError
from streamtag.train.crnn import CRNN, ModelConfig
from streamtag.train.data import LogMelCache, Track
from streamtag.train.distill import TeacherCache
from streamtag.train.training_set import TrainingSet


def unlabelled_tracks(paths: list[Path]) -> list[Track]:
    """Every audio file under ``paths``, as tracks with no labels: each is its own artist, since nothing
    about them is scored."""
    tracks = []
    for root in paths:
        root = Path(root)
        if not root.exists():
            raise StreamtagError(f"{root}: no such file or folder (--unlabelled)")
        files = audio_files_in(root) if root.is_dir() else [root]
        tracks += [Track(path=p, genre=None, artist=f"unlabelled:{p}", track_id=f"unlabelled:{p}") for p in files]
    return tracks


@dataclass
class Material:
    model_config: ModelConfig
    cache: LogMelCache
    teacher: TeacherCache | None

    @classmethod
    def open(cls, labels: tuple[str, ...], *, cache_dir: Path, teacher_dir: Path | None, distil_features: bool = True,
             **architecture) -> Material:
        """``architecture``: ModelConfig fields (dropout, channels, gru_hidden, embedding_dim)."""
        probe = ModelConfig(labels=labels, **architecture)
        teacher = None
        if teacher_dir is not None:
            teacher = TeacherCache(teacher_dir, frontend=probe.frontend, window_samples=probe.window_samples)
            probe = replace(probe, tag_names=teacher.tag_names,
                            teacher_features=teacher.n_features if distil_features else 0)
        return cls(model_config=probe, cache=LogMelCache(cache_dir, CRNN(probe).frontend), teacher=teacher)

    def training_set(self, tracks: list[Track], *, on_track: Callable[[], None] | None = None) -> TrainingSet:
        window = self.model_config.window_samples

        def logmel_of(track: Track):
            logmel = self.cache.get(track, min_samples=window)
            if on_track:
                on_track()
            return logmel

        teacher_of = None if self.teacher is None else (lambda track: self.teacher.get(track.path))
        return TrainingSet.build(tracks, self.model_config.labels, len(self.model_config.mood_names), logmel_of,
                                 teacher_of)
