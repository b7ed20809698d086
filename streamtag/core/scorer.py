"""What the streaming core needs of a model: the facts it is built on and a scorer for each stream.

``streamtag.engine.Engine`` is the real scorer (onnxruntime); anything with these attributes and methods
will do, which is how the tagger is tested without a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Scores:
    """One batch of model outputs: genre (B, G), taste (B,), moods (B, M), embedding (B, D), tags (B, T), the CNN
    summary (B, S) where the model has one (else None), and content (B, 3): P(music, speech, other) from the
    model's content head (``content.py``), None without one.

    A model without tags (format 1) has T = 0."""

    genre: np.ndarray
    taste: np.ndarray
    moods: np.ndarray
    embedding: np.ndarray
    tags: np.ndarray
    summary: np.ndarray | None = None
    content: np.ndarray | None = None

    def rows(self, start: int, stop: int) -> Scores:
        """Rows ``start:stop`` of every output: one stream's share of a batch of many."""
        return Scores(genre=self.genre[start:stop], taste=self.taste[start:stop], moods=self.moods[start:stop],
                      embedding=self.embedding[start:stop], tags=self.tags[start:stop],
                      summary=None if self.summary is None else self.summary[start:stop],
                      content=None if self.content is None else self.content[start:stop])


class ModelFacts(Protocol):
    """The model's own description (``streamtag.contract.ModelInfo`` has these and more)."""

    labels: tuple[str, ...]
    mood_names: tuple[str, ...]
    tag_names: tuple[str, ...]
    sample_rate: int
    window_samples: int
    hop_samples: int


class StreamScorer(Protocol):
    """Scores the windows of one stream; it may keep state between calls (frames or samples it has seen)."""

    shares_frames: bool  # whether each window's front end runs only on the frames it adds

    def score(self, windows: list[tuple[int, np.ndarray]]) -> Scores:
        """``(start_sample, window)`` pairs of this stream, in stream order; one row of scores each."""
        ...

    def reset(self) -> None:
        """A new stream starts: nothing seen so far is reused."""
        ...


class Scorer(Protocol):
    info: ModelFacts

    def stream(self, *, hop_samples: int) -> StreamScorer:
        """A scorer for a new stream whose windows start every ``hop_samples``."""
        ...
