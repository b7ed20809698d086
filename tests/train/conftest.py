"""A tiny real training run, shared by the loop and export tests: 8 Emotify tracks, 2 short epochs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from streamtag.train.crnn import CRNN, ModelConfig  # noqa: E402
from streamtag.train.data import LogMelCache, load_emotify, load_split  # noqa: E402
from streamtag.train.loop import TrainConfig, TrainingSet  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TINY = TrainConfig(epochs=2, batch_size=8, crops_per_track=2, warmup_epochs=1, patience=5, seed=7)


@pytest.fixture(scope="session")
def emotify_tracks(data_dir):
    return load_emotify(data_dir / "emotify")


@pytest.fixture(scope="session")
def emotify_split(emotify_tracks):
    return load_split(REPO / "models" / "split-emotify.json", emotify_tracks)


@pytest.fixture(scope="session")
def tiny_sets(emotify_split, tmp_path_factory):
    """Two tracks per genre to train on, one per genre to validate on, cached once per session."""
    config = ModelConfig(labels=("classical", "electronic", "pop", "rock"))
    cache = LogMelCache(tmp_path_factory.mktemp("logmel"), CRNN(config).frontend)

    def pick(tracks, per_genre):
        chosen = []
        for genre in config.labels:
            chosen += [t for t in tracks if t.genre == genre][:per_genre]
        return chosen

    def logmel_of(track):
        return cache.get(track, min_samples=config.window_samples)

    train_set = TrainingSet.build(pick(emotify_split["train"], 2), config.labels, len(config.mood_names), logmel_of)
    valid_set = TrainingSet.build(pick(emotify_split["valid"], 1), config.labels, len(config.mood_names), logmel_of)
    return config, train_set, valid_set


@pytest.fixture(scope="session")
def tiny_run(tiny_sets, tmp_path_factory):
    """Checkpoints and reports of a 2-epoch run."""
    from streamtag.train.loop import train

    config, train_set, valid_set = tiny_sets
    out = tmp_path_factory.mktemp("run")
    reports = train(config, TINY, train_set, valid_set, out, extra_state={"provenance": {"dataset": "emotify-tiny"}})
    return out, reports


@pytest.fixture
def tiny_config():
    return TINY


__all__ = ["TINY", "replace"]
