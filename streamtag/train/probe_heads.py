"""Refit the labelled heads (genre, moods, crowd taste) as linear probes on the trained network's features.

Trained jointly, through mixup and augmentation, on a few hundred labelled tracks, the heads are noisier than
the representation beneath them: on the first cross-validation fold a logistic regression on the same
64 features read genre 6 points better, and ridge regressions read moods and taste better too (models/README.md).
So after training, genre and moods are replaced by regularised linear models fitted on the features of every
window of the labelled training tracks. The probes are folded back into the heads' Linear layers
(standardisation included), and the heads still end in softmax and sigmoids: genre by multinomial logistic
regression, moods by ridge regression of the logits of their rates.

What each of them reads, and its penalty, an inner cross-validation grouped by artist chooses (``HEADS`` lists
the candidates). They are scored as the outer cross-validation scores the model: by the clip means of each
held-out track's windows. Scored per window instead, by a ridge's R^2 (the rule before 2.2.0), moods chose up
to ten times the shrinkage (models/README.md).
- genre reads the CNN's summary (its time mean and max over the 3 frequency bands, 256 numbers): over the
  five folds it read 3.5 points better than the 64-d embedding after the GRU. Its C is chosen by the
  log-likelihood of the true genre under the clip means, not by their accuracy (the rule of 2.2.0): the
  accuracy of 190-odd tracks moves in steps of half a point and tied or flipped on a track or two, and in one
  outer fold it chose C = 0.001, ten times the shrinkage the likelihood chose (models/README.md);
- moods choose between the summary, the same per band (``bands``, 768 numbers) and the bands beside the GRU's
  pooled output (``bands+pooled``, 1024): the bands keep where in the spectrum the timbre lies, the GRU what
  changes over the window. Each mood gets its own alpha;
- crowd taste reads the genre probabilities: its head holds the like rate of each genre among the training
  tracks, and a window's taste is their mean weighted by its genre probabilities. Over the five folds this
  read taste's Spearman 0.296, where 2.3.0's ridge on the embedding read 0.276; within a genre, no feature of
  the network predicted the like rate across artists (models/README.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GroupKFold

from streamtag import metrics
from streamtag.taste.fit import sigmoid
from streamtag.train.crnn import (
    CRNN,
    GENRE_PRIOR,
    RATE_EPSILON,
    bands_of,
    pooled_of,
    sources_of,
)
from streamtag.train.cv_report import genre_like_rates
from streamtag.train.training_set import TrainingSet
from streamtag.train.validation import window_crops

log = logging.getLogger(__name__)

INNER_FOLDS = 4
GENRE_C = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
RIDGE_ALPHAS = (100.0, 300.0, 1000.0, 3000.0, 10000.0, 30000.0, 100000.0)
HOP_FRAMES = 64  # windows every 1.5 s, as validation and `tag` score them


def window_features(model: CRNN, logmels: list[np.ndarray], *, hop_frames: int = HOP_FRAMES) -> dict[str, list[np.ndarray]]:
    """What the heads can read, for each window of each track: ``embedding`` (the ReLU'd embedding layer, before
    normalisation), ``summary`` and ``bands`` (the CNN's time mean and max, over and per frequency band) and
    ``pooled`` (the GRU's time mean and max)."""
    window_frames = model.config.frontend.n_frames(model.config.window_samples)
    captured = {}
    handles = [model.embed.register_forward_hook(lambda module, inputs, output: captured.update(embedding=torch.relu(output))),
               model.cnn.register_forward_hook(lambda module, inputs, output: captured.update(bands=bands_of(output))),
               model.gru.register_forward_hook(lambda module, inputs, output: captured.update(pooled=pooled_of(output[0])))]
    model.eval()
    features = {"embedding": [], "summary": [], "bands": [], "pooled": []}
    try:
        with torch.no_grad():
            for logmel in logmels:
                crops = window_crops(logmel, window_frames=window_frames, hop_frames=hop_frames)
                captured["summary"] = model.forward_logmel(torch.from_numpy(crops))["summary"]
                for name, values in features.items():
                    values.append(captured[name].numpy().copy())
    finally:
        for handle in handles:
            handle.remove()
    return features


def _logit(rates: np.ndarray) -> np.ndarray:
    clipped = np.clip(rates, RATE_EPSILON, 1 - RATE_EPSILON)
    return np.log(clipped / (1 - clipped))


def _fitted_linear(weight: np.ndarray, bias: np.ndarray) -> torch.nn.Linear:
    layer = torch.nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(weight.astype(np.float32)))
        layer.bias.copy_(torch.from_numpy(bias.astype(np.float32)))
    return layer


def _clip_means(values: np.ndarray, windows_of: np.ndarray, n_tracks: int) -> np.ndarray:
    """The mean over each track's windows (``windows_of``: the track of each window, 0..n_tracks-1)."""
    sums = np.zeros((n_tracks, values.shape[1]))
    np.add.at(sums, windows_of, values)
    return sums / np.maximum(np.bincount(windows_of, minlength=n_tracks), 1)[:, None]


@dataclass(frozen=True)
class _Head:
    """How one head is fitted and judged: a probe for a penalty, what its fit predicts for windows, and the
    score (higher is better) of its out-of-fold window predictions, given the windows' fit targets, the track of
    each window and the tracks' targets. A head ``per_output`` scores each output apart, and each output gets
    the penalty that scores it best."""

    penalty: str
    grid: tuple[float, ...]
    inputs: tuple[str, ...]
    make: Callable[[float | tuple[float, ...]], object]
    predict: Callable[[object, np.ndarray], np.ndarray]
    score: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], tuple[float, ...] | np.ndarray]
    per_output: bool = False


def _genre_score(probs: np.ndarray, fit_target: np.ndarray, windows_of: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """The mean log-likelihood of the true genre under the clip means; ties broken by the clips' accuracy, which
    the cross-validation report scores."""
    probs = _clip_means(probs, windows_of, len(truth))
    return float(np.log(probs[np.arange(len(truth)), truth[:, 0]] + 1e-9).mean()), float(np.mean(probs.argmax(axis=1) == truth[:, 0]))


def _rates_score(rates: np.ndarray, fit_target: np.ndarray, windows_of: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The Pearson r of each rate's clip means, whose mean the cross-validation report scores moods by."""
    rates = _clip_means(rates, windows_of, len(truth))
    return np.array([metrics.pearson(rates[:, j], truth[:, j]) for j in range(truth.shape[1])])


HEADS = {
    "genre": _Head("C", GENRE_C, ("summary",), lambda c: LogisticRegression(C=c, max_iter=3000),
                   lambda probe, z: probe.predict_proba(z), _genre_score),
    # Each mood its own alpha: over the five outer folds a shared one read 0.517 and one per mood 0.525
    # (models/README.md); the nine moods are not equally predictable, so they want different shrinkage.
    "moods": _Head("alpha", RIDGE_ALPHAS, ("summary", "bands", "bands+pooled"),
                   lambda a: Ridge(alpha=np.asarray(a, dtype=float)),
                   lambda probe, z: sigmoid(probe.predict(z).reshape(len(z), -1)), _rates_score, per_output=True),
}


def _choose(head: _Head, features: dict, target: np.ndarray, fit_target: np.ndarray, windows_of: np.ndarray,
            groups: np.ndarray) -> tuple[str, float | tuple[float, ...], tuple]:
    """The input and penalty whose out-of-fold predictions score best (``head.score``) in an inner
    cross-validation grouped by artist; a head ``per_output`` gets a penalty per output, and its input by the
    mean of their best scores. Genre and moods are scored per track, as the outer cross-validation scores, not
    per window, where the window-level R^2 of a ridge favours far more shrinkage than the clip means'
    correlation does."""
    n_tracks = len(target)
    track_groups = np.empty(n_tracks, dtype=object)
    track_groups[windows_of] = groups
    best = None
    for source in head.inputs:
        z = features[source]
        scores = []
        for value in head.grid:
            oof = None
            for fit_tracks, _ in GroupKFold(INNER_FOLDS).split(np.arange(n_tracks), groups=track_groups):
                fit = np.isin(windows_of, fit_tracks)
                predicted = head.predict(head.make(value).fit(z[fit], fit_target[fit]), z[~fit])
                oof = np.zeros((len(z), predicted.shape[1])) if oof is None else oof
                oof[~fit] = predicted
            scores.append(head.score(oof, fit_target, windows_of, target))
        if head.per_output:
            per_output = np.array(scores)  # (penalties, outputs)
            value = tuple(head.grid[i] for i in per_output.argmax(axis=0))
            score = (float(per_output.max(axis=0).mean()),)
        else:
            best_at = max(range(len(scores)), key=scores.__getitem__)  # the first of equals, in the grid's order
            value, score = head.grid[best_at], scores[best_at]
        if best is None or score > best[2]:
            best = (source, value, score)
    return best


def _side_by_side(standardised: dict, head_input: str, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The standardised features ``head_input`` names (``bands+pooled``: both, side by side) for ``windows``, and
    the mean and scale they were standardised with."""
    parts = [standardised[source] for source in sources_of(head_input)]
    return (np.concatenate([z[windows] for z, _, _ in parts], axis=1),
            *(np.concatenate([part[i] for part in parts]) for i in (1, 2)))


def refit_heads(model: CRNN, data: TrainingSet, artists: list[str]) -> dict:
    """Replace the genre and mood heads of ``model`` by probes fitted on ``data``'s labelled tracks, each reading
    the input (``HEADS``) and with the penalty that an inner cross-validation grouped by artist chooses, and the
    taste head by the like rates of the genres (the rival that cross-validation scores it against);
    ``model.config.head_inputs`` then says what each reads.

    ``artists`` (one per track of ``data``) group the inner cross-validation. Returns the choices.
    """
    labelled = [i for i in range(len(data.logmels)) if data.genre[i] >= 0]
    per_track = window_features(model, [data.logmels[i] for i in labelled])
    windows_of = np.concatenate([np.full(len(f), j) for j, f in enumerate(per_track["embedding"])])
    groups = np.array(artists)[np.array(labelled)][windows_of]
    standardised = {}
    for source in {part for head in HEADS.values() for head_input in head.inputs for part in sources_of(head_input)}:
        x = np.concatenate(per_track[source])
        mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
        standardised[source] = ((x - mean) / scale).astype(np.float32), mean, scale
    rates = {"genre": data.genre[labelled][:, None], "moods": data.moods[labelled]}
    chosen, heads, inputs = {}, {}, dict(model.config.head_inputs)
    for name, head in HEADS.items():
        target = rates[name]
        known = ~np.isnan(target.astype(np.float64)).any(axis=1)
        if known.sum() < 2 * INNER_FOLDS:
            log.info("%s: too few labelled tracks to refit its head; keeping the trained one", name)
            continue
        keep = known[windows_of]
        renumber = np.cumsum(known) - 1  # the known tracks, numbered 0..n-1
        fit_target = target[windows_of][keep][:, 0] if name == "genre" else _logit(target[windows_of][keep])
        candidates = {source: _side_by_side(standardised, source, keep) for source in head.inputs}
        features = {source: z for source, (z, _, _) in candidates.items()}
        source, value, score = _choose(head, features, target[known], fit_target, renumber[windows_of[keep]], groups[keep])
        chosen.update({f"{name}_input": source, f"{name}_{head.penalty}": value, f"{name}_inner_score": round(score[0], 4)})
        probe = head.make(value).fit(features[source], fit_target)
        _, mean, scale = candidates[source]
        weight = np.atleast_2d(probe.coef_) / scale
        heads[name] = _fitted_linear(weight, np.atleast_1d(probe.intercept_) - weight @ mean)
        inputs[name] = source
    like_rates = genre_like_rates(data.genre[labelled], data.taste[labelled], len(model.config.labels))
    if like_rates is None:
        log.info("taste: a genre has no track with a like rate; keeping the trained head")
    else:
        heads["taste"] = _fitted_linear(like_rates[None, :], np.zeros(1))
        inputs["taste"] = GENRE_PRIOR
        chosen.update(taste_input=GENRE_PRIOR,
                      taste_genre_rates=dict(zip(model.config.labels, like_rates.round(4).tolist(), strict=True)))
    model.config = replace(model.config, head_inputs=tuple(
        (head, source) for head, source in sorted(inputs.items()) if source != "embedding"))
    model.genre_head = heads.get("genre", model.genre_head)
    model.mood_head = heads.get("moods", model.mood_head)
    model.taste_head = heads.get("taste", model.taste_head)
    return chosen


def refit_checkpoint(path, data: TrainingSet, artists: list[str]) -> dict:
    """``refit_heads`` on the model saved in checkpoint ``path``, written back to it with the chosen penalties.

    The heads do not change the features they are fitted on, so refitting a refitted checkpoint gives it again."""
    from streamtag.train.config import ModelConfig

    state = torch.load(path, map_location="cpu", weights_only=False)
    model = CRNN(ModelConfig.from_dict(state["model_config"]))
    model.load_state_dict(state["model"])
    chosen = refit_heads(model, data, artists)
    state["model"], state["model_config"], state["probe_heads"] = model.state_dict(), model.config.to_dict(), chosen
    torch.save(state, path)
    return chosen
