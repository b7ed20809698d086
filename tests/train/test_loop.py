"""Training: the loss falls on real music, and a resumed run continues exactly."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from streamtag.train.loop import CHECKPOINT_BEST, CHECKPOINT_LAST, TrainConfig, TrainingSet, train  # noqa: E402


def test_short_training_run_lowers_the_loss(tiny_sets, tmp_path):
    config, train_set, valid_set = tiny_sets
    run = TrainConfig(epochs=6, batch_size=8, crops_per_track=4, warmup_epochs=1, patience=10, seed=3, learning_rate=3e-3)
    reports = train(config, run, train_set, valid_set, tmp_path)
    losses = [r.train_loss for r in reports]
    assert len(reports) == 6
    assert losses[-1] < losses[0] - 0.2, losses
    assert (tmp_path / CHECKPOINT_BEST).is_file() and (tmp_path / CHECKPOINT_LAST).is_file()


def test_checkpoint_holds_everything_needed_to_resume(tiny_run):
    out, reports = tiny_run
    saved = torch.load(out / CHECKPOINT_LAST, map_location="cpu", weights_only=False)
    assert {"model", "optimizer", "scheduler", "numpy_rng", "torch_rng", "loop", "model_config", "train_config"} <= set(saved)
    assert saved["loop"]["epoch"] == len(reports) == 2
    assert saved["provenance"] == {"dataset": "emotify-tiny"}


def test_resumed_run_equals_an_uninterrupted_one(tiny_sets, tiny_run, tiny_config, tmp_path):
    config, train_set, valid_set = tiny_sets
    straight_dir, straight = tiny_run
    first = train(config, replace(tiny_config, epochs=1), train_set, valid_set, tmp_path)
    assert len(first) == 1
    resumed = train(config, tiny_config, train_set, valid_set, tmp_path, resume=True)
    assert [r.epoch for r in resumed] == [1, 2]
    assert math.isclose(resumed[-1].train_loss, straight[-1].train_loss, rel_tol=1e-6)
    a = torch.load(straight_dir / CHECKPOINT_LAST, weights_only=False)["model"]
    b = torch.load(tmp_path / CHECKPOINT_LAST, weights_only=False)["model"]
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6, msg=name)


def test_final_run_without_valid_trains_every_epoch_and_keeps_the_last(tiny_sets, tmp_path):
    """`train --final`: train and valid are fitted together, so nothing is validated and nothing stops early."""
    config, train_set, valid_set = tiny_sets
    both = TrainingSet(
        logmels=train_set.logmels + valid_set.logmels,
        **{name: np.concatenate([getattr(train_set, name), getattr(valid_set, name)]) for name in ("genre", "taste", "moods")},
    )
    run = TrainConfig(epochs=3, batch_size=8, crops_per_track=2, warmup_epochs=1, patience=1, seed=5)
    reports = train(config, run, both, None, tmp_path)
    assert [r.epoch for r in reports] == [1, 2, 3]  # patience 1 would have stopped a validated run of flat scores
    assert all(math.isnan(r.valid_accuracy) and r.improved for r in reports)
    best = torch.load(tmp_path / CHECKPOINT_BEST, weights_only=False)
    last = torch.load(tmp_path / CHECKPOINT_LAST, weights_only=False)
    assert best["epoch"] == 3
    for name, value in last["model"].items():
        torch.testing.assert_close(best["model"][name], value, rtol=0, atol=0, msg=name)


def test_averaging_makes_the_last_model_the_mean_of_the_last_epochs(tiny_sets, tmp_path):
    config, train_set, _ = tiny_sets
    run = TrainConfig(epochs=3, batch_size=8, crops_per_track=2, warmup_epochs=1, seed=5, average_epochs=2, bn_batches=3)
    raw = []  # the trained (not averaged) weights after each epoch
    train(config, run, train_set, None, tmp_path,
          on_epoch=lambda report: raw.append(torch.load(tmp_path / CHECKPOINT_LAST, weights_only=False)["model"]))
    best = torch.load(tmp_path / CHECKPOINT_BEST, weights_only=False)
    assert best["epoch"] == 3
    for name in ("cnn.0.0.weight", "gru.weight_hh_l0", "genre_head.bias"):
        torch.testing.assert_close(best["model"][name], (raw[1][name] + raw[2][name]) / 2, msg=name)
        assert not torch.equal(best["model"][name], raw[2][name]), name
    # BatchNorm statistics are measured anew for the averaged weights: neither averaged nor the last epoch's
    for name in ("input_norm.running_mean", "cnn.0.1.running_var"):
        assert not torch.allclose(best["model"][name], (raw[1][name] + raw[2][name]) / 2), name
        assert not torch.allclose(best["model"][name], raw[2][name]), name
    assert best["model"]["cnn.0.1.num_batches_tracked"] == 3
