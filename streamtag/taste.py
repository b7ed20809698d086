"""Personal taste profile: a small model on the CRNN's embedding, fitted to the user's likes and dislikes.

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

Persistence
-----------
One JSON file (``taste-profile.json`` in ``platformdirs.user_data_dir("streamtag")``, or in ``$STREAMTAG_HOME``)
holding the format version, the model it was made for (name, version, embedding_dim), the fit settings and
every label with its source and its embeddings (float16, base64) and crowd logits, so it can be refitted
without audio and rebuilt (re-embedded) when the model changes. Writes are atomic: a temporary file in the
same folder, fsync, ``os.replace``, fsync of the folder. A profile that cannot be parsed is renamed
``*.corrupt-<timestamp>`` and reported; one made for another model is reported with the command that fixes it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from streamtag.errors import ProfileError
from streamtag.metrics import roc_auc

log = logging.getLogger(__name__)

PROFILE_FORMAT = 1
PROFILE_FILENAME = "taste-profile.json"
HOME_ENV = "STREAMTAG_HOME"
# Test hook: seconds to sleep after the temporary file is written and synced, before it replaces the profile,
# so a test can kill the writer at the worst moment.
WRITE_PAUSE_ENV = "STREAMTAG_PROFILE_WRITE_PAUSE_S"

LIKE = "like"
DISLIKE = "dislike"
LABEL_VALUES = (LIKE, DISLIKE)
KIND_FILE = "file"
KIND_LIVE = "live"

MAX_WINDOWS_PER_LABEL = 64  # evenly spaced windows kept per file: a 5-minute song counts as much as a 30 s one
LIVE_LABEL_S = 8.0  # a live label covers the audio of the last seconds
MIN_LABELS_PER_CLASS_FOR_CV = 3  # cross-validated AUC is shown from 3 likes and 3 dislikes on
MAX_CV_FOLDS = 10


@dataclass(frozen=True)
class ModelIdentity:
    """The model a profile's embeddings came from: another one means another embedding space."""

    name: str
    version: str
    embedding_dim: int

    @classmethod
    def from_info(cls, info) -> ModelIdentity:
        """From an ``contract.ModelInfo`` (or anything with name, version and embedding_dim)."""
        return cls(name=str(info.name), version=str(info.version), embedding_dim=int(info.embedding_dim))

    def describe(self) -> str:
        return f"{self.name} {self.version} (embedding_dim {self.embedding_dim})"


@dataclass(frozen=True)
class FitConfig:
    """Regularisation of the profile; the defaults were chosen on Emotify's validation split (docs/taste.md)."""

    l2: float = 30.0  # pull of the window weights towards the crowd prior
    l2_bias: float = 0.03  # pull of the bias towards the crowd prior's
    anchor_l2: float = 0.01  # ridge penalty of the crowd read-out
    l2_agreement: float | None = 0.01  # None: the crowd prior's weight is fixed at 1; else its change is
    # fitted too, with this penalty, so a listener who disagrees with the crowd can turn it down or around
    crowd_prior: bool = True  # False: plain L2 logistic regression towards zero (for comparisons)
    max_iter: int = 50
    tol: float = 1e-8

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
    value: str, *, kind: str, source: str, embeddings: np.ndarray, crowd_probs: np.ndarray, added: str | None = None
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
    )


def _evenly_spaced(n: int, k: int) -> np.ndarray:
    if n <= k:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, k)).astype(int))


# --------------------------------------------------------------------------------------------------------------
# Fitting (pure numpy)


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
    penalties = np.full(x.shape[1] + 1, config.l2)
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
        train = [lab for lab, f in zip(labels, fold) if f != k]
        model = fit_model(train, config)
        for i in np.flatnonzero(fold == k):
            scores[i] = label_score(model, labels[i])
    return roc_auc(scores, y)


# --------------------------------------------------------------------------------------------------------------
# The profile


class Profile:
    """Labels plus the model fitted to them, for one embedding model.

    ``scorer`` is the callable the Tagger takes as ``taste_scorer`` (embeddings (B, D) -> probabilities (B,));
    it reads the current fit at every call, so ``add``/``forget`` followed by ``refit`` (which they do
    themselves) change the very next window's score. The fit is swapped in as one immutable object, so a
    scorer running on another thread sees either the old fit or the new one, never a mix.
    """

    def __init__(
        self, identity: ModelIdentity, labels: Iterable[Label] = (), *, config: FitConfig | None = None,
        created: str | None = None,
    ) -> None:
        self.identity = identity
        self.config = config or FitConfig()
        self.created = created or now_iso()
        self._labels: list[Label] = []
        self._model: TasteModel | None = None
        self._fit_ms = 0.0
        for label in labels:
            self._check(label)
            self._labels.append(label)
        self.refit()

    # -- labels -------------------------------------------------------------------------------------------
    @property
    def labels(self) -> tuple[Label, ...]:
        return tuple(self._labels)

    @property
    def n_likes(self) -> int:
        return sum(lab.liked for lab in self._labels)

    @property
    def n_dislikes(self) -> int:
        return len(self._labels) - self.n_likes

    @property
    def active(self) -> bool:
        """Whether the profile has any label, so that its score means something."""
        return self._model is not None

    @property
    def fit_ms(self) -> float:
        """Wall time of the last fit, in milliseconds."""
        return self._fit_ms

    def _check(self, label: Label) -> None:
        if label.embeddings.ndim != 2 or label.embeddings.shape[1] != self.identity.embedding_dim:
            raise ProfileError(
                f"{label.source}: embeddings of shape {label.embeddings.shape}, but the profile's model has "
                f"embedding_dim {self.identity.embedding_dim}"
            )

    def add(self, label: Label, *, refit: bool = True) -> None:
        """Add a label; a file labelled again replaces its earlier label (the latest verdict counts)."""
        self._check(label)
        if label.kind == KIND_FILE:
            self._labels = [lab for lab in self._labels if not (lab.kind == KIND_FILE and lab.source == label.source)]
        self._labels.append(label)
        if refit:
            self.refit()

    def forget(self, source: str) -> int:
        """Remove the labels of a file source (an absolute path) or a live time; returns how many went."""
        before = len(self._labels)
        self._labels = [lab for lab in self._labels if lab.source != source]
        removed = before - len(self._labels)
        if removed:
            self.refit()
        return removed

    def replace_labels(self, labels: Iterable[Label]) -> None:
        self._labels = []
        for label in labels:
            self._check(label)
            self._labels.append(label)
        self.refit()

    # -- fit and score --------------------------------------------------------------------------------------
    def refit(self) -> None:
        if not self._labels:
            self._model = None
            return
        start = time.perf_counter()
        model = fit_model(self._labels, self.config)
        self._fit_ms = (time.perf_counter() - start) * 1000.0
        self._model = model
        log.debug("taste profile refitted on %d labels in %.1f ms", len(self._labels), self._fit_ms)

    def score(self, embeddings: np.ndarray) -> np.ndarray:
        """Probabilities (B,) that the user likes each window, from embeddings (B, D)."""
        model = self._model
        embeddings = np.asarray(embeddings)
        if model is None:
            raise ProfileError("the taste profile has no labels yet: teach it with 'streamtag taste learn'")
        if embeddings.ndim != 2 or embeddings.shape[1] != self.identity.embedding_dim:
            raise ProfileError(
                f"embeddings of shape {embeddings.shape} do not fit this profile's model "
                f"{self.identity.describe()}: run 'streamtag taste rebuild'"
            )
        return model.probs(embeddings)

    @property
    def scorer(self) -> Callable[[np.ndarray], np.ndarray]:
        """The Tagger's ``taste_scorer``: a bound method that always uses the current fit."""
        return self.score

    def cross_validated_auc(self) -> float | None:
        return cross_validated_auc(self._labels, self.config)

    def describe(self) -> str:
        """Whose taste is shown, for the display and the feed's hello message."""
        n = len(self._labels)
        return f"personal ({n} label{'' if n == 1 else 's'}: {self.n_likes} liked, {self.n_dislikes} disliked)"

    # -- serialisation ------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": PROFILE_FORMAT,
            "kind": "streamtag-taste-profile",
            "model": {
                "name": self.identity.name,
                "version": self.identity.version,
                "embedding_dim": self.identity.embedding_dim,
            },
            "created": self.created,
            "updated": now_iso(),
            "fit": self.config.to_dict(),
            "labels": [
                {
                    "value": lab.value,
                    "kind": lab.kind,
                    "source": lab.source,
                    "added": lab.added,
                    "n_windows": lab.n_windows,
                    "embeddings_f16": _encode(lab.embeddings.astype("<f2")),
                    "crowd_logits_f32": _encode(lab.crowd_logits.astype("<f4")),
                }
                for lab in self._labels
            ],
        }

    @classmethod
    def from_dict(cls, data: dict) -> Profile:
        """Parse a profile document; raises ValueError/KeyError/TypeError on a malformed one."""
        if not isinstance(data, dict) or data.get("kind") != "streamtag-taste-profile":
            raise ValueError("not a streamtag taste profile")
        model = data["model"]
        identity = ModelIdentity(str(model["name"]), str(model["version"]), int(model["embedding_dim"]))
        fit = data.get("fit", {})
        config = replace(FitConfig(), **{k: _fit_value(k, v) for k, v in fit.items() if k in FitConfig().to_dict()})
        labels = []
        for item in data["labels"]:
            n = int(item["n_windows"])
            emb = _decode(item["embeddings_f16"], "<f2").astype(np.float32).reshape(n, identity.embedding_dim)
            crowd = _decode(item["crowd_logits_f32"], "<f4").astype(np.float32).reshape(n)
            if item["value"] not in LABEL_VALUES or item["kind"] not in (KIND_FILE, KIND_LIVE):
                raise ValueError(f"bad label value/kind {item['value']!r}/{item['kind']!r}")
            if not (np.isfinite(emb).all() and np.isfinite(crowd).all()):
                raise ValueError(f"non-finite numbers in label {item['source']!r}")
            labels.append(Label(item["value"], item["kind"], str(item["source"]), str(item["added"]), emb, crowd))
        return cls(identity, labels, config=config, created=str(data.get("created", now_iso())))


def _fit_value(key: str, value):
    if value is None:
        if key != "l2_agreement":
            raise ValueError(f"fit setting {key!r} is null")
        return None
    kind = {"crowd_prior": bool, "max_iter": int}.get(key, float)
    return kind(value)


def _encode(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def _decode(text: str, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text.encode("ascii"), validate=True), dtype=dtype)


# --------------------------------------------------------------------------------------------------------------
# Files: where, read, write


def profile_home() -> Path:
    """``$STREAMTAG_HOME`` if set, else the platform's user data folder for streamtag."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("streamtag"))


def default_profile_path() -> Path:
    return profile_home() / PROFILE_FILENAME


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")


def set_aside(path: Path, reason: str) -> Path:
    """Rename ``path`` to ``<path>.<reason>-<timestamp>`` and return the new path."""
    target = path.with_name(f"{path.name}.{reason}-{_stamp()}")
    os.replace(path, target)
    _fsync_dir(path.parent)
    return target


def read_profile(path: Path, *, set_aside_corrupt: bool = True) -> Profile:
    """Read a profile file without checking which model it was made for (rebuild and import need that).

    A file that cannot be parsed is set aside as ``*.corrupt-<timestamp>`` (unless ``set_aside_corrupt`` is
    False: a file being imported is the user's own) and ProfileError says where it went; a file from a newer
    streamtag is left alone and ProfileError says to upgrade.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read the taste profile ({exc})") from exc
    try:
        data = json.loads(raw.decode("utf-8"))
        fmt = data.get("format") if isinstance(data, dict) else None
        if isinstance(fmt, int) and fmt > PROFILE_FORMAT:
            raise ProfileError(
                f"{path}: taste profile format {fmt} was written by a newer streamtag (this one reads format "
                f"{PROFILE_FORMAT}); upgrade streamtag, or run 'streamtag taste reset' to start over"
            )
        if fmt != PROFILE_FORMAT:
            raise ValueError(f"unknown format {fmt!r}")
        return Profile.from_dict(data)
    except ProfileError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        if not set_aside_corrupt:
            raise ProfileError(f"{path}: not a valid taste profile ({type(exc).__name__}: {exc})") from exc
        aside = set_aside(path, "corrupt")
        raise ProfileError(
            f"{path}: the taste profile is corrupt ({type(exc).__name__}: {exc}); it was kept aside as {aside}. "
            "Teach a new one with 'streamtag taste learn', or restore a copy with 'streamtag taste import'"
        ) from exc


def check_compatible(profile: Profile, identity: ModelIdentity, path: Path) -> None:
    if profile.identity != identity:
        raise ProfileError(
            f"{path}: the taste profile was made for model {profile.identity.describe()}, but the model in use is "
            f"{identity.describe()}; run 'streamtag taste rebuild' to re-embed its labelled files with this model "
            "(live labels cannot be re-embedded and are dropped), or 'streamtag taste reset' to start over"
        )


def load_profile(identity: ModelIdentity, path: Path | None = None, *, create: bool = False) -> Profile:
    """The profile at ``path`` (default: the user's), checked against ``identity``.

    Missing: a new empty profile when ``create``, else ProfileError. Corrupt: set aside, ProfileError.
    Made for another model: ProfileError naming ``streamtag taste rebuild``; the file is left as it is.
    """
    path = path or default_profile_path()
    try:
        profile = read_profile(path)
    except FileNotFoundError:
        if create:
            return Profile(identity)
        raise ProfileError(f"no taste profile at {path}: teach one with 'streamtag taste learn --like ...'") from None
    check_compatible(profile, identity, path)
    return profile


def load_active_profile(info, path: Path | None = None) -> Profile | None:
    """For ``tag`` and ``live``: the user's profile for this model if it exists and has labels, else None.

    ``info`` is the engine's ModelInfo. A corrupt or mismatched profile raises ProfileError (a StreamtagError)
    with the fix in its message: the caller should let it reach the user rather than fall back silently.
    """
    path = path or default_profile_path()
    if not path.exists():
        return None
    profile = load_profile(ModelIdentity.from_info(info), path)
    return profile if profile.active else None


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return  # Windows cannot open a directory for fsync; os.replace is atomic there all the same
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_profile(profile: Profile, path: Path | None = None) -> Path:
    """Write the profile atomically: temp file in the same folder, fsync, os.replace, fsync the folder.

    A crash at any point leaves either the old file or the new one, never a torn one; a temp file left by a
    crash is ignored by readers and removed by the next successful write.
    """
    path = path or default_profile_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(profile.to_dict(), separators=(",", ":")).encode("utf-8")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        pause_s = float(os.environ.get(WRITE_PAUSE_ENV) or 0.0)
        if pause_s > 0:
            log.warning("pausing %.1f s before replacing %s (%s is set)", pause_s, path, WRITE_PAUSE_ENV)
            time.sleep(pause_s)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _remove_stale_temps(path)
    return path


def _remove_stale_temps(path: Path) -> None:
    """Delete temp files that writers killed mid-write left behind (older than a minute, so not in flight)."""
    cutoff = time.time() - 60.0
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(OSError):
            if stale.stat().st_mtime < cutoff:
                stale.unlink()


@contextlib.contextmanager
def profile_lock(path: Path | None = None, *, wait_s: float | None = None) -> Iterator[None]:
    """Serialise read-modify-write of the profile between processes (``taste learn`` while ``live`` runs).

    ``wait_s``: give up after this long with a ProfileError ("busy") instead of waiting however long the
    other writer takes; live labelling runs on the event loop and must not stall the audio.
    """
    path = path or default_profile_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here; the last writer wins
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a+b") as handle:
        if wait_s is None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        else:
            deadline = time.monotonic() + wait_s
            while True:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise ProfileError(
                            "the taste profile is busy (another streamtag is writing it); try again in a moment"
                        ) from None
                    time.sleep(0.01)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# --------------------------------------------------------------------------------------------------------------
# Live teaching

LIVE_LOCK_WAIT_S = 0.25  # at most half a hop of stalled audio when another process holds the profile


class LiveTeacher:
    """Labels the last seconds of live audio from a key press or a feed message, and persists at once.

    ``observe(windows)`` is given every batch of WindowScores the Tagger produces (it keeps the last
    ``label_s`` seconds); ``on_label("like" | "dislike")`` turns those windows into a label, refits the profile
    (in place, so the Tagger's scorer sees it on its next batch), writes it atomically and returns a line for
    the user. When a Tagger is attached, its ``taste_scorer`` is switched from the crowd's (None) to the
    profile's as soon as the profile has a label.
    """

    def __init__(
        self,
        profile: Profile,
        *,
        path: Path | None = None,
        sample_rate: int,
        label_s: float = LIVE_LABEL_S,
        tagger=None,
    ) -> None:
        self.profile = profile
        self.path = path or default_profile_path()
        self.sample_rate = int(sample_rate)
        self.label_s = float(label_s)
        self._recent: deque = deque()
        self._lock = threading.Lock()
        self._tagger = tagger
        self._seen_on_disk = self.path.exists()
        self._attach()

    @classmethod
    def open(cls, info, *, path: Path | None = None, tagger=None, label_s: float = LIVE_LABEL_S) -> LiveTeacher:
        """The teacher for the user's profile for model ``info`` (a new empty one if none exists yet)."""
        path = path or default_profile_path()
        profile = load_profile(ModelIdentity.from_info(info), path, create=True)
        return cls(profile, path=path, sample_rate=info.sample_rate, label_s=label_s, tagger=tagger)

    @property
    def scorer(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """The Tagger's taste_scorer: the profile's once it has labels, else None (the crowd's taste)."""
        return self.profile.scorer if self.profile.active else None

    def describe(self) -> str:
        return self.profile.describe() if self.profile.active else "crowd"

    def _attach(self) -> None:
        if self._tagger is not None:
            self._tagger.taste_scorer = self.scorer

    def observe(self, windows: Iterable) -> None:
        """Remember the windows (WindowScores) that lie within the last ``label_s`` seconds of the stream.

        A label then covers exactly the audio heard in those seconds (at least the newest window, when
        ``label_s`` is shorter than one window).
        """
        with self._lock:
            for window in windows:
                self._recent.append(window)
            if self._recent:
                horizon = self._recent[-1].end_sample - int(round(self.label_s * self.sample_rate))
                while len(self._recent) > 1 and self._recent[0].start_sample < horizon:
                    self._recent.popleft()

    def on_label(self, value: str) -> str:
        """Label the recent audio ``value`` ("like" or "dislike"), refit, persist; returns a confirmation."""
        if value not in LABEL_VALUES:
            raise ProfileError(f"unknown label {value!r}: use {LIKE!r} or {DISLIKE!r}")
        with self._lock:
            recent = list(self._recent)
        if not recent:
            raise ProfileError("nothing heard yet to label: wait until the first window has been scored")
        label = make_label(
            value,
            kind=KIND_LIVE,
            source=now_iso(),
            embeddings=np.stack([w.embedding for w in recent]),
            crowd_probs=np.array([w.crowd_taste for w in recent], dtype=np.float32),
        )
        with profile_lock(self.path, wait_s=LIVE_LOCK_WAIT_S):
            # Another process may have changed the file since we read it ('taste learn', 'forget', 'reset'):
            # start from what is on disk. A file that has gone since we last saw it was reset: start empty.
            if self.path.exists():
                labels = list(load_profile(self.profile.identity, self.path).labels)
            else:
                labels = [] if self._seen_on_disk else list(self.profile.labels)
            labels.append(label)
            start = time.perf_counter()
            self.profile.replace_labels(labels)
            save_profile(self.profile, self.path)
            self._seen_on_disk = True
            elapsed_ms = (time.perf_counter() - start) * 1000.0
        self._attach()
        seconds = (recent[-1].end_sample - recent[0].start_sample) / self.sample_rate
        verb = "Liked" if value == LIKE else "Disliked"
        return (
            f"{verb} the last {seconds:.0f} s ({len(recent)} windows); taste is now "
            f"{self.profile.describe()}, saved in {elapsed_ms:.0f} ms"
        )
