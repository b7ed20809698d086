"""A tiny real training run, shared by the loop and export tests: 8 Emotify tracks, 2 short epochs."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import soundfile

torch = pytest.importorskip("torch")

from streamtag.audio import load_audio  # noqa: E402
from streamtag.train.config import TrainConfig  # noqa: E402
from streamtag.train.crnn import CRNN, ModelConfig  # noqa: E402
from streamtag.train.data import load_emotify, load_split  # noqa: E402
from streamtag.train.training_set import TrainingSet  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
# One thread: for batches this small, torch's OpenMP threads cost more in synchronisation than they gain,
# and far more when another process is busy on the other core.
torch.set_num_threads(1)

TINY = TrainConfig(epochs=2, batch_size=8, crops_per_track=2, warmup_epochs=1, patience=5, seed=7)
EXCERPT_S = 12  # of each track, to keep the suite fast; the loop does not care how long a track is


@pytest.fixture
def gtzan_layout(data_dir, tmp_path):
    """GTZAN's standard layout, genres/<genre>/<genre>.NNNNN.wav, built from the 10 real clips."""
    return make_gtzan_layout(data_dir, tmp_path / "gtzan", suffix=".wav")


def make_gtzan_layout(data_dir: Path, root: Path, *, suffix: str) -> Path:
    for flac in sorted((data_dir / "gtzan/samples").glob("*.flac")):
        genre = flac.name.split(".")[0]
        (root / "genres" / genre).mkdir(parents=True)
        audio, rate = soundfile.read(flac)
        soundfile.write(root / "genres" / genre / f"{flac.stem}{suffix}", audio, rate)
    shutil.copy(data_dir / "gtzan/GTZANindex.txt", root / "GTZANindex.txt")
    return root


@pytest.fixture(scope="session")
def emotify_tracks(data_dir):
    return load_emotify(data_dir / "emotify")


@pytest.fixture(scope="session")
def emotify_split(emotify_tracks):
    return load_split(REPO / "models" / "split-emotify.json", emotify_tracks)


@pytest.fixture(scope="session")
def tiny_sets(emotify_split):
    """Two tracks per genre to train on, one per genre to validate on: log-mels of 12 s excerpts."""
    config = ModelConfig(labels=("classical", "electronic", "pop", "rock"))
    frontend = CRNN(config).frontend

    def pick(tracks, per_genre):
        chosen = []
        for genre in config.labels:
            chosen += [t for t in tracks if t.genre == genre][:per_genre]
        return chosen

    def logmel_of(track):
        audio = load_audio(track.path, sample_rate=22050)[15 * 22050 : (15 + EXCERPT_S) * 22050]
        with torch.no_grad():
            return frontend(torch.from_numpy(audio)[None])[0].numpy()

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
