"""The streaming core shared by `live` and `tag`: samples in, scored windows out. No I/O, no clocks.

Windows are batched through the engine (``batch_size`` at most per call), and a window's scores do not depend
on the batch it ran in or on how the samples were chunked.

The model is reached through ``scorer.Scorer``: each tagger asks it for a stream scorer, which may keep what
the stream's windows share (the spectrogram frames, or the window in device memory) between calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from streamtag.core.content import CONTENT_CLASSES
from streamtag.core.levels import level_dbfs
from streamtag.core.scorer import ModelFacts, Scorer, Scores
from streamtag.core.smoothing import SmoothingConfig, clip_state_of
from streamtag.core.windows import SlidingWindows

TasteScorer = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class WindowScores:
    start_sample: int
    end_sample: int
    genre: np.ndarray  # (G,) probabilities
    taste: float  # the taste shown: personal where a profile is active, else the crowd's
    crowd_taste: float
    moods: np.ndarray  # (M,) rates in 0..1
    embedding: np.ndarray  # (D,), L2-normalised
    tags: np.ndarray  # (T,) tag probabilities; T is 0 for a model without tags
    level_dbfs: float  # RMS level of the newest hop of the window
    content: np.ndarray | None = None  # (3,) P(music, speech, other); None for a model without a content head


class Tagger:
    """Feeds a stream of mono samples at the model's rate through sliding windows and the engine."""

    def __init__(
        self,
        engine: Scorer,
        *,
        hop_samples: int | None = None,
        batch_size: int = 8,  # measured: faster than 32 on CPU (activations stay in cache)
        taste_scorer: TasteScorer | None = None,
    ) -> None:
        self.engine = engine
        self.info: ModelFacts = engine.info
        self.hop_samples = hop_samples or self.info.hop_samples
        self.batch_size = batch_size
        self.taste_scorer = taste_scorer
        self._windows = SlidingWindows(window_samples=self.info.window_samples, hop_samples=self.hop_samples)
        self._stream = engine.stream(hop_samples=self.hop_samples)
        self.reset()

    @property
    def shares_frames(self) -> bool:
        """Whether each window's front end runs only on the frames it adds (else on the whole window)."""
        return self._stream.shares_frames

    def reset(self) -> None:
        """Start a new stream: no samples seen, and the stream scorer forgets what it kept."""
        self._windows.reset()
        self.nonfinite_samples = 0
        self._stream.reset()

    @property
    def samples_seen(self) -> int:
        return self._windows.samples_seen

    def feed(self, samples: np.ndarray) -> list[WindowScores]:
        """Push samples (any length) and score every window they complete.

        NaN and infinite samples are not sound (a corrupt or hostile file, a broken pipe writer): they are read
        as silence and counted in ``nonfinite_samples``, so no score, level or message turns non-finite."""
        return self._score(self.due(samples))

    def finish(self) -> list[WindowScores]:
        """End of stream: a stream shorter than one window is zero-padded into a single window."""
        return self._score(self.due_at_end())

    def due(self, samples: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Push samples and return the windows they complete, unscored: for a caller that scores the windows
        of many streams together (``streams.score_together``) and then calls ``assemble``."""
        samples = np.asarray(samples, dtype=np.float32)
        broken = ~np.isfinite(samples)
        if broken.any():
            self.nonfinite_samples += int(broken.sum())
            samples = np.where(broken, np.float32(0.0), samples)
        return self._windows.push(samples)

    def due_at_end(self) -> list[tuple[int, np.ndarray]]:
        """``finish``'s window, unscored."""
        return self._windows.pad_to_first_window()

    @property
    def stream(self):
        """This stream's scorer (``Scorer.stream``), which keeps what its windows share."""
        return self._stream

    def _score(self, windows: list[tuple[int, np.ndarray]]) -> list[WindowScores]:
        results: list[WindowScores] = []
        for first in range(0, len(windows), self.batch_size):
            batch = windows[first : first + self.batch_size]
            results += self.assemble(batch, self._stream.score(batch))
        return results

    def assemble(self, windows: list[tuple[int, np.ndarray]], scores: Scores) -> list[WindowScores]:
        """The WindowScores of ``windows`` from their scores (one row each): taste, level, positions."""
        level_samples = min(self.hop_samples, self.info.window_samples)
        shown = scores.taste if self.taste_scorer is None else np.asarray(self.taste_scorer(scores.embedding))
        return [
            WindowScores(
                start_sample=start,
                end_sample=start + self.info.window_samples,
                genre=scores.genre[i],
                taste=float(shown[i]),
                crowd_taste=float(scores.taste[i]),
                moods=scores.moods[i],
                embedding=scores.embedding[i],
                tags=scores.tags[i],
                level_dbfs=level_dbfs(window[-level_samples:]),
                content=None if scores.content is None else scores.content[i],
            )
            for i, (start, window) in enumerate(windows)
        ]


def clip_summary(windows: list[WindowScores], info: ModelFacts) -> dict:
    """Average the window scores of one clip: the clip-level tags that `tag` prints and `evaluate` scores.

    ``state`` judges the clip on its means (``smoothing.clip_state_of``): "music", "speech" or "unsure";
    ``content`` (P(music, speech, other)) is there for a model with a content head."""
    if not windows:
        raise ValueError("a clip summary needs at least one window")
    genre = np.mean([w.genre for w in windows], axis=0)
    moods = np.mean([w.moods for w in windows], axis=0)
    tags = np.mean([w.tags for w in windows], axis=0)
    content = None if windows[0].content is None else np.mean([w.content for w in windows], axis=0)
    summary = {
        "top": info.labels[int(np.argmax(genre))],
        "state": clip_state_of(float(np.max(genre)), content, SmoothingConfig()),
        "genre": {label: round(float(p), 4) for label, p in zip(info.labels, genre, strict=True)},
        "taste": round(float(np.mean([w.taste for w in windows])), 4),
        "moods": {name: round(float(s), 4) for name, s in zip(info.mood_names, moods, strict=True)},
        "tags": {name: round(float(p), 4) for name, p in zip(info.tag_names, tags, strict=True)},
    }
    if content is not None:
        summary["content"] = {name: round(float(p), 4) for name, p in zip(CONTENT_CLASSES, content, strict=True)}
    return summary
