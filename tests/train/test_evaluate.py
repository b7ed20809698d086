"""Clip-level metrics by hand, and `streamtag evaluate` on a few real tracks."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from streamtag.metrics import confusion_matrix, f1_scores
from streamtag.train.data import Track
from streamtag.train.evaluate import score_clips


def test_confusion_and_f1_by_hand():
    true = np.array([0, 0, 1, 1, 2])
    pred = np.array([0, 1, 1, 1, 0])
    matrix = confusion_matrix(true, pred, 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    # class 0: precision 1/2, recall 1/2 -> 0.5; class 1: 2/3 and 1 -> 0.8; class 2: 0
    np.testing.assert_allclose(f1_scores(matrix), [0.5, 0.8, 0.0])


def test_score_clips_taste_and_moods():
    tracks = [
        Track(path=None, genre=g, artist="a", track_id=str(i), like_rate=r, mood_rates=np.full(2, r, np.float32))
        for i, (g, r) in enumerate([("x", 0.1), ("x", 0.2), ("y", 0.3), ("y", 0.4)])
    ]
    genre = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.4, 0.6]])
    taste = np.array([0.1, 0.3, 0.2, 0.4])
    moods = np.array([[0.1, 0.4], [0.2, 0.3], [0.3, 0.2], [0.4, 0.1]])
    result = score_clips(("x", "y"), tracks, genre, taste, moods, ("m1", "m2"))
    assert result.accuracy == 0.75 and result.n_tracks == 4
    assert result.taste_spearman == pytest.approx(0.8)  # ranks 1,3,2,4 against 1,2,3,4
    # above the median like rate: scores 0.2 and 0.4; below: 0.1 and 0.3 -> 3 of 4 pairs ordered right
    assert result.taste_auc == 0.75
    assert result.mood_correlations == pytest.approx({"m1": 1.0, "m2": -1.0})


def test_evaluate_command_on_a_small_split(data_dir, model_path, tmp_path):
    from tests.conftest import REPO

    shipped = json.loads((REPO / "models/split-emotify.json").read_text())
    small = dict(shipped, test=[t for t in shipped["test"] if t.endswith(("/1.ogg", "/10.ogg", "/2.ogg"))][:4])
    assert len(small["test"]) >= 2
    (tmp_path / "split.json").write_text(json.dumps(small))
    result = subprocess.run(
        [sys.executable, "-m", "streamtag", "evaluate", str(model_path), str(data_dir / "emotify"),
         "--split", str(tmp_path / "split.json"), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "out/metrics-emotify-test.json").read_text())
    assert metrics["n_tracks"] == len(small["test"])
    assert sum(map(sum, metrics["confusion"])) == len(small["test"])
    assert (tmp_path / "out/confusion-emotify-test.png").read_bytes()[:4] == b"\x89PNG"
    assert "clip accuracy" in result.stdout and "macro F1" in result.stdout
