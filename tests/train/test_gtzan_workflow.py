"""What an ML user does with their own GTZAN copy: train, export, evaluate and tag, on the standard layout.

The 10 real GTZAN clips here, written as the original archive's .au files under genres/<genre>/, with the
fault-filtered split lists beside them (they name 3 of the clips for train, 5 for valid, 2 for test).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.train.conftest import make_gtzan_layout

GENRES = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]


def run(*args, **kwargs):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=600, **kwargs)


@pytest.mark.slow
def test_train_export_evaluate_and_tag_on_the_gtzan_layout(data_dir, tmp_path):
    root = make_gtzan_layout(data_dir, tmp_path / "GTZAN", suffix=".au")
    shutil.copytree(data_dir / "gtzan/splits", root / "splits")

    trained = run("-m", "streamtag", "train", root, "--out", tmp_path / "run", "--cache", tmp_path / "cache",
                  "--epochs", "1")
    assert trained.returncode == 0, trained.stderr
    assert "gtzan: 10 tracks" in trained.stderr
    assert "the dataset's own split lists (train 3, valid 5, test 2)" in " ".join(trained.stderr.split())
    split = json.loads((tmp_path / "run/split.json").read_text())
    assert split["test"] == ["hiphop/hiphop.00000.au", "pop/pop.00000.au"]

    model = tmp_path / "gtzan.onnx"
    exported = run(REPO / "tools/export_onnx.py", tmp_path / "run/best.pt", model, "--version", "0.0.1")
    assert exported.returncode == 0, exported.stderr

    evaluated = run("-m", "streamtag", "evaluate", model, root, "--out", tmp_path / "eval")
    assert evaluated.returncode == 0, evaluated.stderr
    metrics = json.loads((tmp_path / "eval/metrics-gtzan-test.json").read_text())
    assert metrics["labels"] == GENRES and metrics["n_tracks"] == 2
    assert metrics["taste_spearman"] is None  # GTZAN has no listener data: taste is not scored

    tagged = run("-m", "streamtag", "tag", "--json", "--model", model, root / "genres/pop/pop.00000.au")
    assert tagged.returncode == 0, tagged.stderr
    result = json.loads(tagged.stdout)
    assert list(result["genre"]) == GENRES and result["duration_s"] == pytest.approx(30.0, abs=0.1)
