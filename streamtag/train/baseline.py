"""The "old way" baseline the CRNN must beat: time-averaged feature vectors into an RBF SVM.

Features are the 57 columns of GTZAN's feature table (``features.FEATURE_NAMES``), standardised on the train
split. The SVM's C and gamma are chosen on the valid split only (highest accuracy; ties go to the first in grid
order: the smallest C, then gamma in the order listed), the model is refitted on train alone, and the test split
is scored once. For Emotify the same is done on features computed from the audio by ``features.py``, with the
CRNN's artist-disjoint split, plus a ridge regressor on the same features for the crowd like rate (taste).
"""

from __future__ import annotations

import csv
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from streamtag import metrics
from streamtag.audio import load_audio
from streamtag.train import features, spectral
from streamtag.train.data import SPLITS, Track

log = logging.getLogger(__name__)

GTZAN_TABLE = Path("gtzan") / "features_30_sec.csv"
GTZAN_SPLIT_DIR = Path("gtzan") / "splits"


@dataclass(frozen=True)
class SvmGrid:
    """Candidate hyperparameters, tried in this order (the order breaks ties)."""

    c_values: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
    # gamma on standardised features; "scale" is 1 / (n_features * variance) = 1/57 here.
    gamma_values: tuple[float | str, ...] = ("scale", 0.003, 0.01, 0.03, 0.1)


@dataclass(frozen=True)
class RidgeGrid:
    alphas: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0, 1000.0)


@dataclass(frozen=True)
class SplitData:
    ids: tuple[str, ...]
    x: np.ndarray  # (n, n_features)
    labels: np.ndarray  # (n,) str


@dataclass(frozen=True)
class ClassifierResult:
    labels: tuple[str, ...]  # the confusion matrix's row/column order
    c: float
    gamma: float | str
    valid_accuracy: float
    test_accuracy: float
    test_macro_f1: float
    confusion: np.ndarray  # (n_labels, n_labels): rows true, columns predicted, test split
    split_sizes: dict[str, int]


@dataclass(frozen=True)
class TasteResult:
    alpha: float
    valid_spearman: float
    test_spearman: float


def read_feature_table(path: Path) -> dict[str, dict[str, str]]:
    """Rows of GTZAN's feature table keyed by ``filename`` (``blues.00000.wav``)."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        return {row["filename"]: row for row in csv.DictReader(handle)}


def read_split_list(path: Path) -> list[str]:
    """A fault-filtered split list (``blues/blues.00012.wav`` per line) as table filenames (``blues.00012.wav``)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [Path(line.strip()).name for line in lines if line.strip()]


def gtzan_table_splits(table_path: Path, split_dir: Path) -> dict[str, SplitData]:
    """The table's feature vectors for each fault-filtered split."""
    table = read_feature_table(table_path)
    splits = {}
    for name in SPLITS:
        ids = read_split_list(Path(split_dir) / f"{name}_filtered.txt")
        x = np.array([[float(table[i][column]) for column in features.FEATURE_NAMES] for i in ids])
        splits[name] = SplitData(ids=tuple(ids), x=x, labels=np.array([table[i]["label"] for i in ids]))
    return splits


def _svm(c: float, gamma: float | str) -> Pipeline:
    return make_pipeline(StandardScaler(), SVC(C=c, gamma=gamma, kernel="rbf"))


def fit_classifier(
    train: SplitData, valid: SplitData, *, grid: SvmGrid = SvmGrid()
) -> tuple[Pipeline, float, float | str, float]:
    """The SVM with the best valid accuracy over ``grid``, fitted on train: (model, C, gamma, valid accuracy)."""
    best = None
    for c in grid.c_values:
        for gamma in grid.gamma_values:
            accuracy = _svm(c, gamma).fit(train.x, train.labels).score(valid.x, valid.labels)
            log.debug("C=%g gamma=%s: valid accuracy %.4f", c, gamma, accuracy)
            if best is None or accuracy > best[2]:
                best = (c, gamma, accuracy)
    c, gamma, accuracy = best
    return _svm(c, gamma).fit(train.x, train.labels), c, gamma, accuracy


def _genre_scores(true: np.ndarray, predicted: np.ndarray, labels: tuple[str, ...]) -> tuple[float, float, np.ndarray]:
    """Accuracy, macro F1 over ``labels`` and the confusion matrix among them (rows true, columns predicted).

    A true label outside ``labels`` (a genre the classifier never saw) is left out of the matrix but still
    counts against the class it was taken for, as scikit-learn's scores with ``labels`` count it."""
    classes = list(labels) + sorted(set(true) - set(labels))
    index = {label: i for i, label in enumerate(classes)}
    confusion = metrics.confusion_matrix(np.array([index[t] for t in true], dtype=np.int64),
                                         np.array([index[p] for p in predicted], dtype=np.int64), len(classes))
    n = len(labels)
    accuracy = float(np.mean(np.asarray(true) == np.asarray(predicted)))
    return accuracy, float(metrics.f1_scores(confusion)[:n].mean()), confusion[:n, :n]


def _train_and_valid(splits: dict[str, SplitData]) -> SplitData:
    train, valid = splits["train"], splits["valid"]
    return SplitData(ids=train.ids + valid.ids, x=np.concatenate([train.x, valid.x]),
                     labels=np.concatenate([train.labels, valid.labels]))


def evaluate_classifier(splits: dict[str, SplitData], *, grid: SvmGrid = SvmGrid(), refit: bool = False) -> ClassifierResult:
    """Choose on valid, fit on train (or, with ``refit``, on train and valid: as ``train --final``), score test once."""
    model, c, gamma, valid_accuracy = fit_classifier(splits["train"], splits["valid"], grid=grid)
    if refit:
        fitted = _train_and_valid(splits)
        model = _svm(c, gamma).fit(fitted.x, fitted.labels)
    test = splits["test"]
    labels = tuple(sorted(set(splits["train"].labels)))
    accuracy, macro_f1, confusion = _genre_scores(test.labels, model.predict(test.x), labels)
    return ClassifierResult(
        labels=labels,
        c=c,
        gamma=gamma,
        valid_accuracy=valid_accuracy,
        test_accuracy=accuracy,
        test_macro_f1=macro_f1,
        confusion=confusion,
        split_sizes={name: len(split.ids) for name, split in splits.items()},
    )


def evaluate_gtzan(data_dir: Path, *, grid: SvmGrid = SvmGrid(), refit: bool = False) -> ClassifierResult:
    """The baseline on GTZAN's feature table with the fault-filtered split; ``data_dir`` holds ``gtzan/``."""
    splits = gtzan_table_splits(data_dir / GTZAN_TABLE, data_dir / GTZAN_SPLIT_DIR)
    return evaluate_classifier(splits, grid=grid, refit=refit)


def evaluate_taste(
    splits: dict[str, SplitData], like_rates: dict[str, np.ndarray], *, grid: RidgeGrid = RidgeGrid(), refit: bool = False
) -> TasteResult:
    """Ridge regression of the crowd like rate on the standardised features; alpha by valid Spearman."""
    best = None
    for alpha in grid.alphas:
        model = make_pipeline(StandardScaler(), Ridge(alpha=alpha)).fit(splits["train"].x, like_rates["train"])
        rho = metrics.spearman(model.predict(splits["valid"].x), like_rates["valid"])
        if best is None or rho > best[1]:
            best = (alpha, rho)
    alpha, valid_rho = best
    if refit:
        x, y = _train_and_valid(splits).x, np.concatenate([like_rates["train"], like_rates["valid"]])
    else:
        x, y = splits["train"].x, like_rates["train"]
    model = make_pipeline(StandardScaler(), Ridge(alpha=alpha)).fit(x, y)
    return TasteResult(
        alpha=alpha,
        valid_spearman=valid_rho,
        test_spearman=metrics.spearman(model.predict(splits["test"].x), like_rates["test"]),
    )


class FeatureCache:
    """Whole-track feature vectors computed once and kept as .npy files.

    Keyed by the source of ``features.py`` and ``spectral.py`` and the track's path, size and mtime, so a
    changed file or a changed feature definition never serves stale vectors.
    """

    def __init__(self, directory: Path) -> None:
        source = b"".join(Path(module.__file__).read_bytes() for module in (features, spectral))
        self.directory = Path(directory) / f"features-{hashlib.sha1(source).hexdigest()[:10]}"
        self.directory.mkdir(parents=True, exist_ok=True)

    def _key(self, path: Path) -> Path:
        stat = path.stat()
        raw = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        return self.directory / (hashlib.sha1(raw.encode()).hexdigest()[:16] + ".npy")

    def get(self, path: Path) -> np.ndarray:
        key = self._key(path)
        if key.is_file():
            return np.load(key)
        vector = features.feature_vector(load_audio(path, sample_rate=features.SAMPLE_RATE_HZ))
        tmp = key.with_suffix(".tmp.npy")
        np.save(tmp, vector)
        tmp.replace(key)
        return vector


def track_splits(split: dict[str, list[Track]], cache: FeatureCache) -> dict[str, SplitData]:
    """Feature vectors of whole tracks (the full clip, whatever its length) for each split."""
    out = {}
    for name in SPLITS:
        tracks = split[name]
        log.info("features of %d %s tracks", len(tracks), name)
        out[name] = SplitData(
            ids=tuple(t.track_id for t in tracks),
            x=np.stack([cache.get(t.path) for t in tracks]),
            labels=np.array([t.genre for t in tracks]),
        )
    return out


def crossval_tracks(
    split: dict[str, list[Track]], cache: FeatureCache, *, c: float, gamma: float | str, k: int = 4, seed: int = 0
) -> dict:
    """The SVM (C and gamma as chosen on valid) scored by artist k-fold cross-validation over train+valid,
    the folds of ``tools/crossval.py``, so the baseline and the CRNN are compared on the same 268 tracks."""
    from streamtag.train.data import artist_folds

    folds = artist_folds(split["train"] + split["valid"], k=k, seed=seed)
    x = [np.stack([cache.get(t.path) for t in fold]) for fold in folds]
    y = [np.array([t.genre for t in fold]) for fold in folds]
    true, predicted = [], []
    for held_out in range(k):
        others = [i for i in range(k) if i != held_out]
        model = _svm(c, gamma).fit(np.concatenate([x[i] for i in others]), np.concatenate([y[i] for i in others]))
        predicted += list(model.predict(x[held_out]))
        true += list(y[held_out])
    labels = sorted(set(true))
    accuracy, macro_f1, confusion = _genre_scores(np.array(true), np.array(predicted), tuple(labels))
    return {
        "folds": k, "n_tracks": len(true), "accuracy": accuracy, "macro_f1": macro_f1,
        "labels": labels, "confusion": confusion.tolist(),
    }


def evaluate_tracks(
    split: dict[str, list[Track]],
    cache: FeatureCache,
    *,
    grid: SvmGrid = SvmGrid(),
    ridge_grid: RidgeGrid = RidgeGrid(),
    refit: bool = False,
) -> tuple[ClassifierResult, TasteResult | None]:
    """Genre baseline on a track split (e.g. Emotify's artist-disjoint one) and, when every track has a like
    rate, the taste regressor."""
    splits = track_splits(split, cache)
    genre = evaluate_classifier(splits, grid=grid, refit=refit)
    if any(t.like_rate is None for name in SPLITS for t in split[name]):
        return genre, None
    like_rates = {name: np.array([t.like_rate for t in split[name]]) for name in SPLITS}
    return genre, evaluate_taste(splits, like_rates, grid=ridge_grid, refit=refit)
