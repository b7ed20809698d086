"""Labels and the fit of the taste model to them (numpy only, no I/O: arrays in, arrays out).

The model
---------
The score of a window with embedding ``e`` (L2-normalised, D values) is

    p(like | e) = sigmoid(w . e + b),    w = (1 + c) w_crowd + dw,    b = (1 + c) b_crowd + db

``(w_crowd, b_crowd)`` is the *crowd prior*: a ridge-regression read-out of the crowd taste logit from the
embedding, distilled from the labelled windows themselves (each stores the crowd logit the model gave it).
``(dw, db)`` is fitted by L2-regularised logistic regression (Newton's method, D + 1 parameters) with the prior's
logit as a fixed offset, so the penalty ``l2 * |dw|^2`` pulls the profile towards the crowd's head rather than
towards "no opinion". With few labels the profile therefore stays close to the crowd, and it departs from it
only as far as the labels demand. The prior's own weight is fitted as well (``w = (1 + c) w_crowd + dw``,
lightly penalised), so a listener who disagrees with the crowd turns it down or around after a few labels
(docs/taste.md: the prior adds 0.04-0.06 AUC at 2-20 labels for a crowd-like listener and costs a reverse one
nothing measurable).

Why a read-out and not the crowd logit itself: the Tagger's ``taste_scorer`` receives embeddings only (see
docs/architecture.md), and the CRNN's taste head is linear in the *unnormalised* hidden layer, so the crowd
logit is not exactly a function of the normalised embedding. A linear read-out of it is the closest prior a
scorer of embeddings can carry, and it is re-derived whenever the labels change.

Labels are per track (or per live snippet); each contributes up to ``MAX_WINDOWS_PER_LABEL`` window embeddings,
weighted ``1 / n_windows`` so that a long file counts as one example, like a short one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from streamtag.core.messages import DISLIKE, LABEL_VALUES, LIKE
from streamtag.errors import ProfileError
from streamtag.metrics import roc_auc

KIND_FILE = "file"
KIND_LIVE = "live"

MAX_WINDOWS_PER_LABEL = 64  # evenly spaced windows kept per file: a 5-minute song counts as much as a 30 s one
MAX_FIT_ITERATIONS = 1000  # Newton converges in under 20 on every profile measured; this only bounds a bad file
MIN_LABELS_PER_CLASS_FOR_CV = 3  # cross-validated AUC is shown from 3 likes and 3 dislikes on
MAX_CV_FOLDS = 10


@dataclass(frozen=True)
class FitConfig:
    """Regularisation of the profile. ``l2`` and ``l2_agreement``: the lowest log loss in the cross-validation
    folds' nested sweeps (tools/eval_taste.py --fold --sweep) among the settings under which two likes and two
    dislikes against the crowd turn it around; ``l2_bias``: what one like should do (docs/taste.md)."""

    l2: float = 1.0  # pull of the window weights towards the crowd prior
    l2_bias: float = 3.0  # pull of the bias towards the crowd prior's
    anchor_l2: float = 0.01  # ridge penalty of the crowd read-out
    l2_agreement: float | None = 1.0  # None: the crowd prior's weight is fixed at 1; else its change is
    # fitted too, with this penalty, so a listener who disagrees with the crowd can turn it down or around
    crowd_prior: bool = True  # False: plain L2 logistic regression towards zero (for comparisons)
    max_iter: int = 50
    tol: float = 1e-8

    def __post_init__(self) -> None:
        """Settings that could not fit (negative or infinite penalties), or would run without end (an attack run
        had ``tol: -1, max_iter: 1e9`` hang every command that reads the profile), are refused."""
        penalties = {"l2": self.l2, "l2_bias": self.l2_bias, "anchor_l2": self.anchor_l2}
        if self.l2_agreement is not None:
            penalties["l2_agreement"] = self.l2_agreement
        for name, value in penalties.items():
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"fit setting {name} must be a finite number >= 0, not {value}")
        if not 1 <= self.max_iter <= MAX_FIT_ITERATIONS:
            raise ValueError(f"fit setting max_iter must be 1..{MAX_FIT_ITERATIONS}, not {self.max_iter}")
        if not (math.isfinite(self.tol) and 0 < self.tol < 1):
            raise ValueError(f"fit setting tol must be between 0 and 1, not {self.tol}")

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("l2", "l2_bias", "anchor_l2", "l2_agreement", "crowd_prior", "max_iter", "tol")}


@dataclass(frozen=True)
class Label:
    """One labelled track or live snippet: its windows' embeddings (n, D) and crowd logits (n,)."""

    value: str  # LIKE or DISLIKE
    kind: str  # KIND_FILE or KIND_LIVE
    source: str  # absolute file path, or the live time (ISO 8601)
    added: str  # ISO 8601, UTC
    embeddings: np.ndarray = field(repr=False)
    crowd_logits: np.ndarray = field(repr=False)
    clip: str | None = None  # a live label's audio, stored beside the profiles (store.py): it can be re-embedded

    @property
    def liked(self) -> bool:
        return self.value == LIKE

    @property
    def n_windows(self) -> int:
        return int(self.embeddings.shape[0])


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def logit(p: np.ndarray, *, eps: float = 1e-6) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1.0 - eps)
    return np.log(p) - np.log1p(-p)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))


def make_label(
    value: str, *, kind: str, source: str, embeddings: np.ndarray, crowd_probs: np.ndarray, added: str | None = None,
    clip: str | None = None,
) -> Label:
    """A label from window embeddings (n, D) and the crowd's probabilities (n,), thinned and rounded as stored.

    Embeddings are kept as float16 (what the file holds), so a profile fitted in memory and one read back
    from disk give the same scores.
    """
    if value not in LABEL_VALUES:
        raise ProfileError(f"unknown label {value!r}: use {LIKE!r} or {DISLIKE!r}")
    embeddings = np.asarray(embeddings, dtype=np.float32)
    crowd_probs = np.asarray(crowd_probs, dtype=np.float32).reshape(-1)
    if embeddings.ndim != 2 or embeddings.shape[0] == 0 or embeddings.shape[0] != crowd_probs.shape[0]:
        raise ProfileError(f"{source}: no windows to learn from (embeddings {embeddings.shape})")
    keep = _evenly_spaced(embeddings.shape[0], MAX_WINDOWS_PER_LABEL)
    return Label(
        value=value,
        kind=kind,
        source=source,
        added=added or now_iso(),
        embeddings=embeddings[keep].astype(np.float16).astype(np.float32),
        crowd_logits=logit(crowd_probs[keep]).astype(np.float32),
        clip=clip,
    )


def _evenly_spaced(n: int, k: int) -> np.ndarray:
    if n <= k:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, k)).astype(int))


# OpenBLAS runs a product on all cores once it is large enough; on a busy 2-core machine (live tagging running
# beside a fit) that made a 400-window Hessian take 170 ms instead of 2, and a 12,800-window one 1.5 s instead
# of 80 ms. Products over blocks of at most this many rows stay on its single-threaded path. Measured on the
# 2-core reference machine under load; the block sums cost nothing measurable when cores are free.
_ROW_BLOCK = 128


class _RowBlocks:
    """A matrix (n, k) kept as row blocks, with the three products the fits need, each block by block."""

    def __init__(self, x: np.ndarray) -> None:
        self.n, self.k = x.shape
        self.blocks = [np.ascontiguousarray(x[i : i + _ROW_BLOCK]) for i in range(0, self.n, _ROW_BLOCK)]

    def dot(self, v: np.ndarray) -> np.ndarray:  # x @ v, (n,)
        return np.concatenate([b @ v for b in self.blocks])

    def tdot(self, r: np.ndarray) -> np.ndarray:  # x.T @ r, (k,)
        out = np.zeros(self.k)
        for i, b in enumerate(self.blocks):
            out += b.T @ r[i * _ROW_BLOCK : i * _ROW_BLOCK + len(b)]
        return out

    def gram(self, w: np.ndarray) -> np.ndarray:  # x.T @ diag(w) @ x, (k, k)
        out = np.zeros((self.k, self.k))
        for i, b in enumerate(self.blocks):
            out += b.T @ (w[i * _ROW_BLOCK : i * _ROW_BLOCK + len(b), None] * b)
        return out


def fit_ridge(x: np.ndarray, z: np.ndarray, weights: np.ndarray, *, l2: float) -> tuple[np.ndarray, float]:
    """Weighted ridge regression z ~ x . w + b (the bias unpenalised); returns (w, b)."""
    sw = weights / weights.sum()
    x_mean = _RowBlocks(x).tdot(sw)
    z_mean = float(np.sum(sw * z))
    rows = _RowBlocks(x - x_mean)
    w = np.linalg.solve(rows.gram(sw) + l2 * np.eye(x.shape[1]), rows.tdot(sw * (z - z_mean)))
    return w, z_mean - float(x_mean @ w)


def fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    offset: np.ndarray,
    *,
    l2: float | np.ndarray,
    l2_bias: float,
    max_iter: int = 50,
    tol: float = 1e-8,
) -> tuple[np.ndarray, float]:
    """L2-regularised weighted logistic regression with a fixed offset, by Newton's method.

    Minimises ``sum_i weights_i * logloss(y_i, x_i . w + b + offset_i) + l2/2 |w|^2 + l2_bias/2 b^2`` and
    returns (w, b); ``l2`` may be one penalty per column of ``x``. The problem is strictly convex (both penalties > 0), so Newton with step halving converges
    in a handful of iterations; with D + 1 <= a few hundred parameters each costs well under a millisecond.
    """
    n, d = x.shape
    xa = _RowBlocks(np.hstack([x, np.ones((n, 1))]))  # (n, D+1)
    penalty = np.empty(d + 1, dtype=np.float64)
    penalty[:-1] = l2
    penalty[-1] = l2_bias
    theta = np.zeros(d + 1)

    def objective(t: np.ndarray) -> float:
        eta = xa.dot(t) + offset
        return float(np.sum(weights * (np.logaddexp(0.0, eta) - y * eta)) + 0.5 * penalty @ (t * t))

    current = objective(theta)
    for _ in range(max_iter):
        p = sigmoid(xa.dot(theta) + offset)
        grad = xa.tdot(weights * (p - y)) + penalty * theta
        hess = xa.gram(weights * p * (1.0 - p)) + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        scale = 1.0
        while True:
            candidate = theta - scale * step
            value = objective(candidate)
            if value <= current or scale < 1e-6:
                break
            scale *= 0.5
        theta, previous, current = candidate, current, value
        if previous - current <= tol * max(1.0, abs(current)):
            break
    return theta[:-1], float(theta[-1])


@dataclass(frozen=True)
class TasteModel:
    """The fitted linear scorer: p = sigmoid(embedding . w + b). Immutable, so swapping it in is atomic."""

    w: np.ndarray
    b: float

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        return np.asarray(embeddings, dtype=np.float64) @ self.w + self.b

    def probs(self, embeddings: np.ndarray) -> np.ndarray:
        return sigmoid(self.logits(embeddings)).astype(np.float32)


def _stack(labels: Sequence[Label]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x = np.concatenate([lab.embeddings for lab in labels]).astype(np.float64)
    z = np.concatenate([lab.crowd_logits for lab in labels]).astype(np.float64)
    y = np.concatenate([np.full(lab.n_windows, 1.0 if lab.liked else 0.0) for lab in labels])
    weights = np.concatenate([np.full(lab.n_windows, 1.0 / lab.n_windows) for lab in labels])
    return x, z, y, weights


def fit_model(labels: Sequence[Label], config: FitConfig, *, prior: TasteModel | None = None) -> TasteModel:
    """Fit the profile to ``labels`` (at least one); see the module docstring for the model.

    ``prior``: a crowd read-out fitted elsewhere (on many more windows than the user labelled) to use instead
    of the one distilled from the labelled windows; tools/eval_taste.py measures what that would gain.
    """
    if not labels:
        raise ValueError("fit_model needs at least one label")
    x, z, y, weights = _stack(labels)
    if prior is not None:
        w0, b0 = prior.w, prior.b
    elif config.crowd_prior:
        w0, b0 = fit_ridge(x, z, weights, l2=config.anchor_l2)
    else:
        w0, b0 = np.zeros(x.shape[1]), 0.0
    offset = _RowBlocks(x).dot(w0) + b0
    if config.l2_agreement is None or not (config.crowd_prior or prior is not None):
        dw, db = fit_logistic(
            x, y, weights, offset, l2=config.l2, l2_bias=config.l2_bias, max_iter=config.max_iter, tol=config.tol
        )
        return TasteModel(w=w0 + dw, b=b0 + db)
    # The prior's logit as one more feature: its coefficient c scales the crowd's opinion to (1 + c) times.
    penalties = np.full(x.shape[1] + 1, config.l2, dtype=np.float64)  # an int l2 would cut l2_agreement to 0
    penalties[-1] = config.l2_agreement
    theta, db = fit_logistic(
        np.hstack([x, offset[:, None]]), y, weights, offset, l2=penalties, l2_bias=config.l2_bias,
        max_iter=config.max_iter, tol=config.tol,
    )
    dw, c = theta[:-1], float(theta[-1])
    return TasteModel(w=(1.0 + c) * w0 + dw, b=(1.0 + c) * b0 + db)


def label_score(model: TasteModel, label: Label) -> float:
    """A track's score: the mean logit of its windows."""
    return float(model.logits(label.embeddings).mean())


def cross_validated_auc(labels: Sequence[Label], config: FitConfig, *, seed: int = 0) -> float | None:
    """AUC of held-out labels (stratified k-fold over labels, at most MAX_CV_FOLDS), or None with too few."""
    y = np.array([lab.liked for lab in labels], dtype=bool)  # bool even when empty: `~` needs it
    n_like, n_dislike = int(y.sum()), int((~y).sum())
    if min(n_like, n_dislike) < MIN_LABELS_PER_CLASS_FOR_CV:
        return None
    n_folds = min(MAX_CV_FOLDS, n_like, n_dislike)
    rng = np.random.default_rng(seed)
    fold = np.empty(len(labels), dtype=int)
    for cls in (True, False):
        idx = np.flatnonzero(y == cls)
        fold[rng.permutation(idx)] = np.arange(len(idx)) % n_folds
    scores = np.empty(len(labels))
    for k in range(n_folds):
        train = [lab for lab, f in zip(labels, fold, strict=True) if f != k]
        model = fit_model(train, config)
        for i in np.flatnonzero(fold == k):
            scores[i] = label_score(model, labels[i])
    return roc_auc(scores, y)
