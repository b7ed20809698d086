"""tools/eval_taste.py on a cross-validation fold: the fold's training tracks give the labels, its held-out
artists the AUC; its sweep chooses the fit settings on the training artists alone."""

from __future__ import annotations

import importlib.util
import json
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


def test_a_folds_sweep_scores_a_quarter_of_its_training_artists(data_dir):
    tracks = load_emotify(data_dir / "emotify")
    training = [t for t in tracks if t.genre != "rock"]  # any fold's training tracks will do
    labels_from, scored = _tool().inner_split(training, seed=0)
    assert sorted(t.track_id for t in labels_from + scored) == sorted(t.track_id for t in training)
    assert not {t.artist for t in labels_from} & {t.artist for t in scored}
    assert 0.2 < len(scored) / len(training) < 0.3
    assert [t.track_id for t in _tool().inner_split(training, seed=0)[1]] == [t.track_id for t in scored]


def test_the_sweep_keeps_the_shipped_profiles_crowd_prior():
    tool = _tool()
    base = tool.FitConfig()
    shipped, readout, plain = (tool.candidates(v, base) for v in (tool.DISTILLED, tool.READOUT, tool.NO_PRIOR))
    assert len(shipped) == len(tool.L2_GRID) * len(tool.AGREEMENT_GRID) and shipped == readout
    assert all(c.crowd_prior for c in shipped) and base in shipped  # the shipped settings are a candidate
    assert {c.l2_agreement for c in plain} == {base.l2_agreement} and len(plain) == len(tool.L2_GRID)
