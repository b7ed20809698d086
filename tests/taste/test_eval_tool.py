"""tools/eval_taste.py on a cross-validation fold: the fold's training tracks give the labels, its held-out
artists the AUC, and what cannot be done is said before any model is loaded."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from streamtag.train.data import load_emotify

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "eval_taste.py"


def _tool():
    spec = importlib.util.spec_from_file_location("eval_taste", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_fold_is_its_training_tracks_and_its_held_out_ones(data_dir, tmp_path):
    tracks = load_emotify(data_dir / "emotify")
    held = [t.track_id for t in tracks if t.artist == tracks[0].artist]
    train = [t.track_id for t in tracks if t.artist != tracks[0].artist][:40]
    (tmp_path / "predictions.json").write_text(json.dumps({"track_ids": held, "train_track_ids": train}))
    split = _tool().fold_split(tmp_path, tracks)
    assert [t.track_id for t in split["train"]] == train and [t.track_id for t in split["test"]] == held
    assert split["valid"] == []


def test_a_fold_of_other_data_or_unfinished_is_refused(data_dir, tmp_path):
    tracks = load_emotify(data_dir / "emotify")
    with pytest.raises(SystemExit, match="not a finished fold of tools/crossval.py"):
        _tool().fold_split(tmp_path, tracks)
    (tmp_path / "predictions.json").write_text(json.dumps({"track_ids": ["gtzan/rock.00000.flac"], "train_track_ids": []}))
    with pytest.raises(SystemExit, match="1 of its tracks are not in the data .* --data"):
        _tool().fold_split(tmp_path, tracks)


def test_a_fold_has_no_valid_split_to_sweep_on(tmp_path):
    result = subprocess.run([sys.executable, str(TOOL), "--fold", str(tmp_path), "--sweep"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2 and "a cross-validation fold has none" in result.stderr
