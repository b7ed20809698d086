"""Clip-level evaluation of an exported model on raw audio: genre, crowd taste and moods.

It runs the ONNX model through the same streaming core as `streamtag tag`, so the figures describe the
product, not the PyTorch training graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamtag import metrics
from streamtag.core.tagger import Tagger
from streamtag.tag_files import tag_file
from streamtag.train.data import Track


@dataclass(frozen=True)
class Evaluation:
    labels: tuple[str, ...]
    accuracy: float
    macro_f1: float
    per_class_f1: dict[str, float]
    confusion: np.ndarray  # rows: true label, columns: predicted
    n_tracks: int
    taste_spearman: float | None
    taste_auc: float | None  # "liked by more listeners than the median" vs the predicted taste
    mood_correlations: dict[str, float] | None

    def to_dict(self) -> dict:
        return {
            "labels": list(self.labels), "n_tracks": self.n_tracks, "accuracy": self.accuracy, "macro_f1": self.macro_f1,
            "per_class_f1": self.per_class_f1, "confusion": self.confusion.tolist(),
            "taste_spearman": self.taste_spearman, "taste_auc": self.taste_auc, "mood_correlations": self.mood_correlations,
        }


def score_clips(
    labels: tuple[str, ...], tracks: list[Track], genre_probs: np.ndarray, taste: np.ndarray, moods: np.ndarray,
    mood_names: tuple[str, ...],
) -> Evaluation:
    """Metrics from clip-level predictions (one row per track)."""
    index = {label: i for i, label in enumerate(labels)}
    true = np.array([index[t.genre] for t in tracks])
    pred = genre_probs.argmax(1)
    confusion = metrics.confusion_matrix(true, pred, len(labels))
    f1 = metrics.f1_scores(confusion)
    like = np.array([np.nan if t.like_rate is None else t.like_rate for t in tracks])
    known = ~np.isnan(like)
    spearman = auc = mood_corr = None
    if known.sum() >= 3:
        spearman = metrics.spearman(taste[known], like[known])
        auc = metrics.roc_auc(taste[known], like[known] > np.median(like[known]))
    with_moods = [i for i, t in enumerate(tracks) if t.mood_rates is not None]
    if len(with_moods) >= 3:
        truth = np.stack([tracks[i].mood_rates for i in with_moods])
        mood_corr = {name: metrics.pearson(moods[with_moods, j], truth[:, j]) for j, name in enumerate(mood_names)}
    return Evaluation(
        labels=labels, accuracy=float(np.mean(pred == true)), macro_f1=float(f1.mean()),
        per_class_f1={label: float(v) for label, v in zip(labels, f1, strict=True)}, confusion=confusion,
        n_tracks=len(tracks), taste_spearman=spearman, taste_auc=auc, mood_correlations=mood_corr,
    )


def evaluate_model(tagger: Tagger, tracks: list[Track], *, on_track=None) -> Evaluation:
    """Tag every track's audio with the exported model and score the clip-level results."""
    info = tagger.info
    missing = sorted({t.genre for t in tracks} - set(info.labels))
    if missing:
        raise ValueError(f"the model has no label for {', '.join(missing)}; its labels are {', '.join(info.labels)}")
    genre, taste, moods = [], [], []
    for track in tracks:
        result = tag_file(tagger, track.path)
        genre.append([result["genre"][label] for label in info.labels])
        taste.append(result["taste"])
        moods.append([result["moods"][name] for name in info.mood_names])
        if on_track:
            on_track(track)
    return score_clips(info.labels, tracks, np.array(genre), np.array(taste), np.array(moods), info.mood_names)


def save_confusion_png(evaluation: Evaluation, path: Path, *, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: render to a file
    import matplotlib.pyplot as plt

    labels = evaluation.labels
    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2, 1.1 * len(labels) + 1.5), dpi=120)
    ax.imshow(evaluation.confusion, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    peak = evaluation.confusion.max()
    for (i, j), count in np.ndenumerate(evaluation.confusion):
        ax.text(j, i, str(count), ha="center", va="center", color="white" if count > peak / 2 else "black")
    ax.set_title(f"{title}\naccuracy {evaluation.accuracy:.1%}, macro F1 {evaluation.macro_f1:.3f}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
