"""tools/crossval.py: artist folds trained in separate processes, pooled, with the test split left out."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import defaultdict

import numpy as np
import pytest
import soundfile

from streamtag.audio import load_audio
from streamtag.train.data import load_emotify, save_split
from tests.conftest import REPO

pytest.importorskip("torch")


def run(*args):
    return subprocess.run([sys.executable, str(REPO / "tools/crossval.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def small_dataset(data_dir, tmp_path):
    """Eight real Emotify excerpts (6 s), two genres, three artists each (one with two tracks), as <label>/
    folders with artists.csv."""
    root = tmp_path / "music"
    rows = []
    tracks = load_emotify(data_dir / "emotify")
    for genre in ("classical", "rock"):
        (root / genre).mkdir(parents=True)
        by_artist = defaultdict(list)
        for track in tracks:
            if track.genre == genre:
                by_artist[track.artist].append(track)
        twice = next(a for a in sorted(by_artist) if len(by_artist[a]) >= 2)
        chosen = by_artist[twice][:2] + [by_artist[a][0] for a in sorted(by_artist) if a != twice][:2]
        for i, track in enumerate(chosen):
            name = f"{genre}/{i}.wav"
            soundfile.write(root / name, load_audio(track.path, sample_rate=22050)[20 * 22050 : 26 * 22050], 22050)
            rows.append((name, track.artist))
    with (root / "artists.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([("file", "artist"), *rows])
    return root, dict(rows)


def test_folds_cover_train_and_valid_by_artist_and_never_read_test(small_dataset, tmp_path):
    from streamtag.train.data import load_folders

    root, artist_of = small_dataset
    dataset = load_folders(root)
    by_id = {t.track_id: t for t in dataset.tracks}
    test_ids = ["classical/3.wav", "rock/3.wav"]
    split = {"train": [t for t in dataset.tracks if t.track_id not in test_ids], "valid": [],
             "test": [by_id[i] for i in test_ids]}
    save_split(tmp_path / "split.json", split, dataset="folders", seed=None)
    common = (root, "--split", tmp_path / "split.json", "--folds", "2", "--epochs", "1", "--out", tmp_path / "cv",
              "--cache", tmp_path / "cache")
    for fold in (0, 1):
        done = run(*common, "--fold", fold)
        assert done.returncode == 0, done.stderr
    report = run(*common, "--report")
    assert report.returncode == 0, report.stderr
    pooled = json.loads(report.stdout)
    assert pooled["folds"] == [0, 1] and pooled["n_tracks"] == 6
    assert "too few" in pooled["contenders_skipped"] and "taste_genre_mean_rival" not in pooled  # no crowd labels
    crnn = pooled["crnn"]
    assert sum(map(sum, crnn["confusion"])) == 6

    folds = [json.loads((tmp_path / f"cv/fold-{k}/predictions.json").read_text()) for k in (0, 1)]
    ids = [set(fold["track_ids"]) for fold in folds]
    assert not ids[0] & ids[1] and (ids[0] | ids[1]) == set(by_id) - set(test_ids)
    assert not {artist_of[i] for i in ids[0]} & {artist_of[i] for i in ids[1]}
    labels = folds[0]["labels"]

    def right(fold):  # the folder name is the true genre
        return [labels[int(np.argmax(p))] == i.split("/")[0] for i, p in zip(fold["track_ids"], fold["genre"], strict=True)]

    assert crnn["fold_accuracy"] == pytest.approx([np.mean(right(fold)) for fold in folds])
    assert crnn["accuracy"] == pytest.approx(np.mean(right(folds[0]) + right(folds[1])))

    history = (tmp_path / "cv/fold-0/history.json").read_text()
    again = run(*common, "--fold", 0)  # a finished fold is scored again, not retrained
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "cv/fold-0/history.json").read_text() == history
    assert json.loads((tmp_path / "cv/fold-0/predictions.json").read_text()) == folds[0]

    # a second member of an ensemble: the same folds, other initial weights; the report averages the members
    member = tuple(tmp_path / "cv2" if a == tmp_path / "cv" else a for a in common)
    for fold in (0, 1):
        done = run(*member, "--fold", fold, "--train-seed", 1)
        assert done.returncode == 0, done.stderr
    seconds = [json.loads((tmp_path / f"cv2/fold-{k}/predictions.json").read_text()) for k in (0, 1)]
    assert seconds[0]["genre"] != folds[0]["genre"]  # another seed, another model
    both = run(*common[:-2], "--out", tmp_path / "cv", tmp_path / "cv2", "--cache", tmp_path / "cache", "--report")
    assert both.returncode == 0, both.stderr
    ensemble = json.loads((tmp_path / "cv/ensemble-report.json").read_text())
    assert ensemble["runs"] == [str(tmp_path / "cv"), str(tmp_path / "cv2")]
    mean = [np.mean([f["genre"], g["genre"]], axis=0) for f, g in zip(folds, seconds, strict=True)]
    truth = [[i.split("/")[0] for i in f["track_ids"]] for f in folds]
    expected = [np.mean([labels[int(np.argmax(p))] == t for p, t in zip(m, ts, strict=True)]) for m, ts in zip(mean, truth, strict=True)]
    assert ensemble["crnn"]["fold_accuracy"] == pytest.approx(expected)
    mixed = run(*common[:-2], "--out", tmp_path / "cv", tmp_path / "cv2", "--cache", tmp_path / "cache", "--fold", 0)
    assert mixed.returncode != 0 and "several are for --report" in mixed.stderr


def test_a_fold_folder_from_other_settings_is_refused_not_reused(small_dataset, tmp_path):
    root, _ = small_dataset
    from streamtag.train.data import load_folders

    dataset = load_folders(root)
    save_split(tmp_path / "split.json", {"train": dataset.tracks, "valid": [], "test": []}, dataset="folders", seed=None)
    common = (root, "--split", tmp_path / "split.json", "--folds", "2", "--epochs", "1", "--out", tmp_path / "cv",
              "--cache", tmp_path / "cache", "--fold", "0")
    assert run(*common).returncode == 0
    other = run(*common, "--average-last", "1")
    assert other.returncode != 0
    assert "cannot resume a different run (changed: average_epochs)" in other.stderr
