"""What cross-validation promises, measured on the same artist folds for every contender: the CRNN's pooled
out-of-fold predictions, the feature SVM (the old way), a linear probe on the teacher's own features, and
the trivial taste rival (each genre's mean like rate, read through the CRNN's genre probabilities).

Every contender's hyperparameters are chosen inside each training part by an inner artist-grouped
cross-validation, never on the fold it is scored on. Differences come with a 95 % interval from a bootstrap
over artists (tracks of one artist move together), since 315 tracks from 112 artists is a small sample.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from streamtag import metrics
from streamtag.train.baseline import SvmGrid

INNER_FOLDS = 4
# Each training part needs enough artists for the inner folds to hold every class: below this many artists per
# outer fold the contenders are not scored (a small folder dataset gets the CRNN's figures alone).
MIN_ARTISTS_PER_FOLD = 8
BOOTSTRAP_ROUNDS = 2000


def _out_of_fold(make, grid: dict, x: np.ndarray, y: np.ndarray, groups: np.ndarray, fold: np.ndarray,
                 *, proba: bool) -> np.ndarray:
    """Predictions for each track by a model fitted on the other folds, its grid chosen by inner grouped CV."""
    out = None
    for k in np.unique(fold):
        train, test = fold != k, fold == k
        search = GridSearchCV(make(), grid, cv=GroupKFold(INNER_FOLDS))
        search.fit(x[train], y[train], groups=groups[train])
        pred = search.predict_proba(x[test]) if proba else search.predict(x[test])
        if out is None:
            out = np.zeros((len(x), *pred.shape[1:]), dtype=float if pred.dtype.kind == "f" else pred.dtype)
        out[test] = pred
    return out


def svm_genre(x: np.ndarray, y: np.ndarray, groups: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """Out-of-fold genre predictions of the RBF SVM on standardised feature vectors."""
    grid = SvmGrid()
    return _out_of_fold(lambda: make_pipeline(StandardScaler(), SVC(kernel="rbf")),
                        {"svc__C": list(grid.c_values), "svc__gamma": list(grid.gamma_values)},
                        x, y, groups, fold, proba=False)


def probe_genre(x: np.ndarray, y: np.ndarray, groups: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """Out-of-fold genre predictions of a logistic-regression probe (a linear read-out of ``x``)."""
    return _out_of_fold(lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
                        {"logisticregression__C": [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0]},
                        x, y, groups, fold, proba=False)


def ridge_rates(x: np.ndarray, targets: np.ndarray, groups: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """Out-of-fold ridge predictions of one or more rates (moods, like rate) from ``x``."""
    return _out_of_fold(lambda: make_pipeline(StandardScaler(), Ridge()),
                        {"ridge__alpha": [1.0, 10.0, 100.0, 1000.0, 10000.0]}, x, targets, groups, fold, proba=False)


def genre_like_rates(genre: np.ndarray, like_rates: np.ndarray, n_genres: int) -> np.ndarray | None:
    """The mean like rate of the tracks of each genre that have one (NaN: none), or None where a genre has none."""
    known = ~np.isnan(like_rates)
    counts = np.bincount(genre[known], minlength=n_genres)
    if (counts == 0).any():
        return None
    return np.bincount(genre[known], weights=like_rates[known], minlength=n_genres) / counts


def genre_mean_taste(genre_probs: np.ndarray, genre: np.ndarray, like_rate: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """Each track's expected like rate under its predicted genre distribution, the genre means taken from
    the other folds' tracks: the trivial rival of crowd taste, and since 2.4.0 what its head computes."""
    out = np.zeros(len(genre))
    for k in np.unique(fold):
        train, test = fold != k, fold == k
        out[test] = genre_probs[test] @ genre_like_rates(genre[train], like_rate[train], genre_probs.shape[1])
    return out


def mean_pearson(predicted: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([metrics.pearson(predicted[:, j], truth[:, j]) for j in range(truth.shape[1])]))


def bootstrap_interval(statistic, groups: np.ndarray, *, seed: int = 0, rounds: int = BOOTSTRAP_ROUNDS) -> tuple[float, float]:
    """95 % percentile interval of ``statistic(index)`` over resamples of whole groups (artists)."""
    rng = np.random.default_rng(seed)
    names = np.unique(groups)
    members = {name: np.flatnonzero(groups == name) for name in names}
    values = []
    for _ in range(rounds):
        index = np.concatenate([members[name] for name in rng.choice(names, size=len(names))])
        values.append(statistic(index))
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)
