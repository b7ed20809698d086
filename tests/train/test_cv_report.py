"""The cross-validation report's contenders, on numbers worked out by hand and on seeded made-up data."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")

from streamtag.train import cv_report  # noqa: E402


def test_genre_mean_taste_takes_the_means_from_the_other_folds():
    genre_probs = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0], [1.0, 0.0]])
    genre = np.array([0, 1, 1, 0])
    like = np.array([0.2, 0.6, 0.8, 0.4])
    fold = np.array([0, 0, 1, 1])
    rival = cv_report.genre_mean_taste(genre_probs, genre, like, fold)
    # fold 0 scored with fold 1's means (genre 0: 0.4, genre 1: 0.8); fold 1 with fold 0's (0.2, 0.6)
    np.testing.assert_allclose(rival, [0.4, 0.5 * 0.4 + 0.5 * 0.8, 0.6, 0.2])


def test_out_of_fold_predictions_never_see_their_own_fold(rng):
    """Labels that only the held-out fold's own rows could teach (each fold's class flipped) are not learned."""
    x = rng.normal(size=(120, 3))
    groups = np.repeat(np.arange(40), 3)  # 40 "artists" of 3 tracks
    fold = groups % 4
    y = (x[:, 0] > 0).astype(int)
    y_flipped = np.where(fold == 0, 1 - y, y)  # fold 0 contradicts the others
    pred = cv_report.probe_genre(x, y_flipped, groups, fold)
    assert np.mean(pred[fold != 0] == y_flipped[fold != 0]) > 0.75  # fold 0 is in their training part
    assert np.mean(pred[fold == 0] == y_flipped[fold == 0]) < 0.25  # it predicts what the other folds taught


def test_svm_learns_a_separable_problem_out_of_fold(rng):
    x = np.concatenate([rng.normal(-2, 1, size=(60, 4)), rng.normal(2, 1, size=(60, 4))])
    y = np.repeat(["a", "b"], 60)
    groups = np.arange(120) // 2
    pred = cv_report.svm_genre(x, y, groups, groups % 5)
    assert np.mean(pred == y) > 0.95


def test_bootstrap_interval_over_artists_covers_the_statistic(rng):
    values = rng.normal(0.3, 1.0, size=200)
    groups = np.arange(200) // 4
    low, high = cv_report.bootstrap_interval(lambda i: values[i].mean(), groups, rounds=500)
    assert low < values.mean() < high
    assert 0.15 < high - low < 0.45  # about 4 standard errors of 1 / sqrt(200) (0.07), groups of 4 iid rows


def test_mean_pearson_by_hand():
    truth = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0]])
    predicted = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]])  # column 0 r = 1, column 1 r = -1
    assert cv_report.mean_pearson(predicted, truth) == pytest.approx(0.0)
