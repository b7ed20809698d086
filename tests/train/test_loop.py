"""Training: the loss falls on real music, and a resumed run continues exactly."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from streamtag.train.checkpoint import CHECKPOINT_BEST, CHECKPOINT_LAST  # noqa: E402
from streamtag.train.config import TrainConfig  # noqa: E402
from streamtag.train.loop import train  # noqa: E402
from streamtag.train.training_set import TrainingSet  # noqa: E402


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


def _together(train_set: TrainingSet, valid_set: TrainingSet) -> TrainingSet:
    """What `train --final` fits on: the train and valid tracks as one training set."""
    return TrainingSet(
        logmels=train_set.logmels + valid_set.logmels,
        **{name: np.concatenate([getattr(train_set, name), getattr(valid_set, name)]) for name in ("genre", "taste", "moods")},
    )


def test_final_run_without_valid_trains_every_epoch_and_keeps_the_last(tiny_sets, tmp_path):
    """`train --final`: train and valid are fitted together, so nothing is validated and nothing stops early."""
    config, train_set, valid_set = tiny_sets
    both = _together(train_set, valid_set)
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


class _Crash(Exception):
    pass


def test_run_resumed_inside_the_averaging_window_equals_an_uninterrupted_one(tiny_sets, tmp_path):
    config, train_set, _ = tiny_sets
    run = TrainConfig(epochs=3, batch_size=8, crops_per_track=2, warmup_epochs=1, seed=5, average_epochs=2, bn_batches=2)
    train(config, run, train_set, None, tmp_path / "straight")

    def crash_after_epoch_2(report):
        if report.epoch == 2:  # after last.pt is written: the average of epoch 2 alone is in it
            raise _Crash

    with pytest.raises(_Crash):
        train(config, run, train_set, None, tmp_path / "resumed", on_epoch=crash_after_epoch_2)
    train(config, run, train_set, None, tmp_path / "resumed", resume=True)
    a = torch.load(tmp_path / "straight" / CHECKPOINT_BEST, weights_only=False)["model"]
    b = torch.load(tmp_path / "resumed" / CHECKPOINT_BEST, weights_only=False)["model"]
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6, msg=name)


def test_with_averaging_the_average_is_kept_whatever_valid_says_and_nothing_stops_early(tiny_sets, tmp_path):
    config, train_set, valid_set = tiny_sets
    run = TrainConfig(epochs=3, batch_size=8, crops_per_track=2, warmup_epochs=1, seed=5, patience=1,
                      average_epochs=2, bn_batches=2)
    reports = train(config, run, train_set, valid_set, tmp_path)
    assert [r.epoch for r in reports] == [1, 2, 3] and reports[-1].improved
    saved = torch.load(tmp_path / CHECKPOINT_BEST, weights_only=False)
    assert saved["epoch"] == 3 and saved["metrics"]["valid_accuracy"] == reports[-1].valid_accuracy


def test_resume_refuses_another_run_in_the_same_folder(tiny_sets, tmp_path):
    from streamtag.errors import StreamtagError

    config, train_set, valid_set = tiny_sets
    run = TrainConfig(epochs=2, batch_size=8, crops_per_track=2, warmup_epochs=1, seed=5)
    train(config, replace(run, epochs=1), train_set, valid_set, tmp_path)
    both = _together(train_set, valid_set)
    with pytest.raises(StreamtagError, match=r"the training tracks \(8 then, 12 now\)"):
        train(config, run, both, None, tmp_path, resume=True)  # `train --final --resume` on a train-only run
    with pytest.raises(StreamtagError, match="changed: mixup_alpha"):
        train(config, replace(run, mixup_alpha=0.0), train_set, valid_set, tmp_path, resume=True)
    assert len(train(config, run, train_set, valid_set, tmp_path, resume=True)) == 2  # longer: allowed


def test_history_of_a_final_run_is_strict_json(tiny_sets, tmp_path):
    import json

    config, train_set, _ = tiny_sets
    train(config, TrainConfig(epochs=1, batch_size=8, crops_per_track=2, warmup_epochs=1), train_set, None, tmp_path)

    def refuse(constant):
        raise ValueError(constant)

    history = json.loads((tmp_path / "history.json").read_text(), parse_constant=refuse)
    assert history[0]["valid_accuracy"] is None and history[0]["train_loss"] > 0


def test_loop_state_reads_a_checkpoint_from_before_averaging_began():
    from dataclasses import asdict

    from streamtag.train.loop import EpochReport, LoopState

    report = EpochReport(epoch=1, train_loss=2.5, valid_accuracy=0.5, valid_taste_spearman=0.1,
                         valid_mood_correlation=0.2, valid_score=0.55, improved=True, seconds=3.0)
    saved = {"epoch": 1, "best_score": 0.55, "since_best": 0, "history": [asdict(report)]}  # no averaging keys yet
    state = LoopState.from_dict(saved)
    assert state == LoopState(epoch=1, best_score=0.55, since_best=0, history=[report], average=None, averaged=0)
    assert LoopState.from_dict(state.to_dict()) == state
