"""Dataset layouts and artist-disjoint splits."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
import soundfile

from streamtag.train.data import (
    SPLITS,
    load_dataset,
    load_emotify,
    load_folders,
    load_gtzan,
    load_split,
    save_split,
    split_by_artist,
)


def artists_of(tracks):
    return {t.artist for t in tracks}


def assert_artist_disjoint(split):
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1 :]:
            assert not artists_of(split[a]) & artists_of(split[b]), f"an artist is in both {a} and {b}"


def test_emotify_has_315_tracks_with_targets(data_dir):
    tracks = load_emotify(data_dir / "emotify")
    assert len(tracks) == 315
    assert Counter(t.genre for t in tracks) == {"electronic": 80, "classical": 79, "pop": 79, "rock": 77}
    assert all(0.0 <= t.like_rate <= 1.0 and t.mood_rates.shape == (9,) for t in tracks)
    assert all(t.path.is_file() for t in tracks)


def test_shipped_emotify_split_is_artist_disjoint_and_complete(data_dir):
    from tests.conftest import REPO

    tracks = load_emotify(data_dir / "emotify")
    split = load_split(REPO / "models" / "split-emotify.json", tracks)
    assert_artist_disjoint(split)
    assert sorted(t.track_id for name in SPLITS for t in split[name]) == sorted(t.track_id for t in tracks)
    assert [len(split[name]) for name in SPLITS] == [220, 48, 47]
    for name in ("valid", "test"):  # every genre is tested
        assert set(Counter(t.genre for t in split[name]).values()) <= {11, 12}


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_split_by_artist_is_disjoint_for_any_seed(data_dir, seed):
    tracks = load_emotify(data_dir / "emotify")
    split = split_by_artist(tracks, seed=seed)
    assert_artist_disjoint(split)
    assert sum(len(v) for v in split.values()) == len(tracks)
    assert 0.6 < len(split["train"]) / len(tracks) < 0.8


def test_split_round_trips_through_json(data_dir, tmp_path):
    tracks = load_emotify(data_dir / "emotify")
    split = split_by_artist(tracks, seed=5)
    save_split(tmp_path / "split.json", split, dataset="emotify", seed=5)
    again = load_split(tmp_path / "split.json", tracks)
    assert {k: [t.track_id for t in v] for k, v in again.items()} == {
        k: sorted(t.track_id for t in v) for k, v in split.items()
    }


def test_gtzan_fault_filtered_split_is_artist_disjoint(data_dir):
    """Kereliuk, Sturm and Larsen's filtered split keeps each artist on one side (per Sturm's index)."""
    from streamtag.train.data import _gtzan_artists

    artists = _gtzan_artists(data_dir / "gtzan" / "GTZANindex.txt")
    sides = {}
    for name in SPLITS:
        stems = [line.split("/")[-1].rsplit(".", 1)[0] for line in (data_dir / "gtzan/splits" / f"{name}_filtered.txt").read_text().split()]
        sides[name] = {artists[s] for s in stems if s in artists}
    assert [len(v) > 0 for v in sides.values()] == [True, True, True]
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1 :]:
            assert not sides[a] & sides[b]


def test_gtzan_layout_loads_with_labels_and_artists(gtzan_layout):
    dataset = load_gtzan(gtzan_layout)
    assert dataset.labels == ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
    assert len(dataset.tracks) == 10
    blues = next(t for t in dataset.tracks if t.genre == "blues")
    assert blues.artist == "John Lee Hooker" and blues.track_id == "blues/blues.00000.wav"
    assert dataset.split is None  # no split lists beside it


def test_gtzan_layout_uses_split_lists_beside_it(gtzan_layout, data_dir):
    shutil.copytree(data_dir / "gtzan/splits", gtzan_layout / "splits")
    dataset = load_dataset(gtzan_layout)
    assert dataset.name == "gtzan"
    # Of the 10 clips, the filtered lists name blues.00000 (valid) and some others; none is on two sides.
    named = [t.track_id for name in SPLITS for t in dataset.split[name]]
    assert len(named) == len(set(named)) > 0
    assert "blues/blues.00000.wav" in [t.track_id for t in dataset.split["valid"]]


def test_folder_layout_with_artists_csv(tmp_path, rng):
    for label in ("calm", "loud"):
        (tmp_path / label).mkdir()
        for i in range(3):
            soundfile.write(tmp_path / label / f"{i}.wav", rng.standard_normal(2205).astype(np.float32) * 0.1, 22050)
    (tmp_path / "artists.csv").write_text("file,artist\ncalm/0.wav,A\ncalm/1.wav,A\nloud/0.wav,B\n")
    dataset = load_folders(tmp_path)
    assert dataset.labels == ("calm", "loud")
    assert {t.track_id: t.artist for t in dataset.tracks}["calm/1.wav"] == "A"
    assert {t.track_id: t.artist for t in dataset.tracks}["loud/2.wav"] == "file:loud/2.wav"


def test_logmel_cache_computes_once_and_pads_short_audio(data_dir, tmp_path):
    torch = pytest.importorskip("torch")
    from streamtag.train.crnn import CRNN, ModelConfig
    from streamtag.train.data import LogMelCache, Track

    frontend = CRNN(ModelConfig(labels=("a", "b"))).frontend
    cache = LogMelCache(tmp_path, frontend)
    short = tmp_path / "short.wav"
    soundfile.write(short, np.full(1000, 0.1, np.float32), 22050, subtype="FLOAT")
    clip = Track(path=data_dir / "gtzan/samples/pop.00000.flac", genre="pop", artist="x", track_id="pop")
    first = cache.get(clip, min_samples=66150)
    assert first.shape == (1 + (661504 - 1024) // 512, 96)
    assert len(list(cache.directory.glob("*.npy"))) == 1
    np.testing.assert_array_equal(cache.get(clip, min_samples=66150), first)  # served from the file
    padded = cache.get(Track(path=short, genre="a", artist="y", track_id="s"), min_samples=66150)
    assert padded.shape == (128, 96)
    with torch.no_grad():
        assert np.allclose(padded[0], frontend(torch.from_numpy(np.pad(np.full(1000, 0.1, np.float32), (0, 65150)))[None])[0, 0].numpy(), atol=1e-4)


def test_artist_folds_cover_every_track_once_with_no_artist_in_two_folds(emotify_tracks):
    from streamtag.train.data import artist_folds

    folds = artist_folds(emotify_tracks, k=4, seed=0)
    ids = [t.track_id for fold in folds for t in fold]
    assert sorted(ids) == sorted(t.track_id for t in emotify_tracks)
    artists = [{t.artist for t in fold} for fold in folds]
    for i in range(4):
        for j in range(i + 1, 4):
            assert not artists[i] & artists[j]
    for genre in ("classical", "electronic", "pop", "rock"):  # each fold holds about a quarter of each genre
        counts = [sum(t.genre == genre for t in fold) for fold in folds]
        assert max(counts) - min(counts) <= 8, (genre, counts)


def test_artist_assignment_does_not_depend_on_the_hash_seed(data_dir):
    """Folds trained in separate processes must agree on who is in which fold (str hashing is per process)."""
    code = ("import sys; from pathlib import Path; from streamtag.train.data import load_emotify, artist_folds; "
            "tracks = load_emotify(Path(sys.argv[1])); "
            "print([sorted(t.track_id for t in fold) for fold in artist_folds(tracks, k=4, seed=0)])")
    outputs = {
        subprocess.run([sys.executable, "-c", code, str(data_dir / "emotify")], capture_output=True, text=True,
                       check=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outputs) == 1 and outputs.pop().startswith("[[")
