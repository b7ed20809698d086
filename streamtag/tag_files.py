"""Whole files through the streaming core: every window of a file, its clip-level tags, its embeddings.

Used by `tag`, `taste learn`, `evaluate` and the tools; decoding is ``streamtag.audio``'s, block by block.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from streamtag.audio import iter_audio
from streamtag.core.scorer import Scorer
from streamtag.core.tagger import Tagger, WindowScores, clip_summary


def file_windows(tagger: Tagger, path: Path) -> tuple[list[WindowScores], int]:
    """Every scored window of one file, and its length in samples; decoded block by block, so memory stays
    bounded even for a 2-hour mix."""
    return block_windows(tagger, iter_audio(path, sample_rate=tagger.info.sample_rate))


def block_windows(tagger: Tagger, blocks: Iterable[np.ndarray]) -> tuple[list[WindowScores], int]:
    """``file_windows`` of a file's blocks decoded elsewhere (``iter_audio``'s, in order)."""
    tagger.reset()
    windows = []
    n_samples = 0
    for block in blocks:
        n_samples += block.size
        windows += tagger.feed(block)
    return windows + tagger.finish(), n_samples


def tag_file(tagger: Tagger, path: Path) -> dict:
    """Clip-level tags of one file: its window scores averaged."""
    return file_tags(tagger, str(path), *file_windows(tagger, path))


def file_tags(tagger: Tagger, file: str, windows: list[WindowScores], n_samples: int) -> dict:
    """The record `tag --json` prints for one file."""
    info = tagger.info
    return {"file": file, "duration_s": round(n_samples / info.sample_rate, 3), **clip_summary(windows, info)}


def embed_file(engine: Scorer, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Window embeddings (n, D) and crowd taste probabilities (n,) of one file, at the model's offline hop."""
    windows, _ = file_windows(Tagger(engine), path)
    return (
        np.stack([w.embedding for w in windows]).astype(np.float32),
        np.array([w.crowd_taste for w in windows], dtype=np.float32),
    )
