"""The taste profile: labels plus the model fitted to them, and the JSON document that holds them.

The document holds the format version, the model it was made for (name, version, embedding_dim and the
weights' SHA-256, its identity), the fit settings and every label with its source, its embeddings (float16,
base64), crowd logits and, for a live label, the name of its stored clip, so it can be refitted without audio
and carried to another model by re-embedding. Where it is written, and how, is store.py's business.

Format 1 (before models were identified by their weights) is read too: its model has no digest, and
store.py adopts it for the model whose name, version and embedding_dim it names.
"""

from __future__ import annotations

import base64
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import numpy as np

from streamtag.core.messages import LABEL_VALUES
from streamtag.errors import ProfileError
from streamtag.taste.fit import (
    KIND_FILE,
    KIND_LIVE,
    MAX_WINDOWS_PER_LABEL,
    FitConfig,
    Label,
    TasteModel,
    cross_validated_auc,
    fit_model,
    now_iso,
)

log = logging.getLogger(__name__)

PROFILE_FORMAT = 2
READABLE_PROFILE_FORMATS = (1, 2)
# At most this many labels: the newest are kept. A person labels a few songs a day, so this is years of
# labels, and it bounds what a flood (a script on the feed) can do: about 2 MB on disk and a 50 ms refit.
MAX_LABELS = 1000
CLIP_NAME = re.compile(r"[0-9a-f]{64}\.flac")  # a stored clip: the SHA-256 of its samples


@dataclass(frozen=True)
class ModelIdentity:
    """The model a profile's embeddings came from: another one means another embedding space."""

    name: str
    version: str
    embedding_dim: int
    weights_sha256: str | None = None  # None: a format 1 profile, made before models carried their digest

    @classmethod
    def from_info(cls, info) -> ModelIdentity:
        """From a ``contract.ModelInfo`` (or anything with name, version, embedding_dim and weights_sha256)."""
        return cls(name=str(info.name), version=str(info.version), embedding_dim=int(info.embedding_dim),
                   weights_sha256=str(info.weights_sha256))

    @property
    def short_id(self) -> str:
        return (self.weights_sha256 or "unknown")[:12]

    def describe(self) -> str:
        return f"{self.name} {self.version} (weights {self.short_id}, embedding_dim {self.embedding_dim})"

    def names(self, model: ModelIdentity) -> bool:
        """A format 1 identity (no digest) that gives ``model``'s name, version and embedding_dim: all such a
        profile recorded of its model, and so all there is to go by."""
        return self.weights_sha256 is None and (self.name, self.version, self.embedding_dim) == (
            model.name, model.version, model.embedding_dim)


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

    def add(self, label: Label, *, refit: bool = True) -> int:
        """Add a label; a file labelled again replaces its earlier label (the latest verdict counts). Returns how
        many of the oldest labels went to keep ``MAX_LABELS``."""
        self._check(label)
        if label.kind == KIND_FILE:
            self._labels = [lab for lab in self._labels if not (lab.kind == KIND_FILE and lab.source == label.source)]
        self._labels.append(label)
        dropped = self._keep_newest()
        if refit:
            self.refit()
        return dropped

    def _keep_newest(self) -> int:
        dropped = max(0, len(self._labels) - MAX_LABELS)
        if dropped:
            log.info("taste profile: %d oldest labels dropped to keep the newest %d", dropped, MAX_LABELS)
            del self._labels[:dropped]
        return dropped

    def forget(self, source: str) -> int:
        """Remove the labels of a file source (an absolute path) or a live time; returns how many went."""
        before = len(self._labels)
        self._labels = [lab for lab in self._labels if lab.source != source]
        removed = before - len(self._labels)
        if removed:
            self.refit()
        return removed

    def replace_labels(self, labels: Iterable[Label]) -> int:
        """Labels in place of the profile's, the newest ``MAX_LABELS`` of them; returns how many older ones went."""
        self._labels = []
        for label in labels:
            self._check(label)
            self._labels.append(label)
        dropped = self._keep_newest()
        self.refit()
        return dropped

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

    def for_model(self, identity: ModelIdentity) -> Profile:
        """The same labels and settings as the profile of ``identity`` (a format 1 profile it ``names``)."""
        return Profile(identity, self._labels, config=self.config, created=self.created)

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
                "weights_sha256": self.identity.weights_sha256,
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
                    **({"clip": lab.clip} if lab.clip else {}),
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
        digest = model.get("weights_sha256")
        identity = ModelIdentity(str(model["name"]), str(model["version"]), int(model["embedding_dim"]),
                                 None if digest is None else str(digest))
        fit = data.get("fit", {})
        values = {k: _fit_value(k, v) for k, v in fit.items() if k in FitConfig().to_dict()}
        if fit and "l2_agreement" not in fit:  # saved before the prior's weight was fitted: it was fixed
            values["l2_agreement"] = None
        config = replace(FitConfig(), **values)
        if config in FORMER_DEFAULTS:  # a profile that only ever had the defaults of its day gets today's
            config = FitConfig()
        labels = []
        for item in data["labels"]:
            n = int(item["n_windows"])
            if not 1 <= n <= MAX_WINDOWS_PER_LABEL:  # 0 divided by zero in every fit that read it
                raise ValueError(f"a label with {n} windows (1..{MAX_WINDOWS_PER_LABEL} are possible)")
            emb = _decode(item["embeddings_f16"], "<f2").astype(np.float32).reshape(n, identity.embedding_dim)
            crowd = _decode(item["crowd_logits_f32"], "<f4").astype(np.float32).reshape(n)
            if item["value"] not in LABEL_VALUES or item["kind"] not in (KIND_FILE, KIND_LIVE):
                raise ValueError(f"bad label value/kind {item['value']!r}/{item['kind']!r}")
            if not (np.isfinite(emb).all() and np.isfinite(crowd).all()):
                raise ValueError(f"non-finite numbers in label {item['source']!r}")
            clip = item.get("clip")
            if clip is not None and not CLIP_NAME.fullmatch(str(clip)):  # it becomes a file name: no paths
                raise ValueError(f"bad clip name {clip!r}")
            labels.append(Label(item["value"], item["kind"], str(item["source"]), str(item["added"]), emb, crowd,
                                clip=None if clip is None else str(clip)))
        return cls(identity, labels, config=config, created=str(data.get("created", now_iso())))


# Every set of fit settings streamtag once had as defaults (l2, l2_bias, l2_agreement; None: before the prior's
# weight was fitted), written out in full: today's defaults are not theirs. A profile saved with them never
# chose them, so it is fitted with the current defaults; one whose settings someone changed keeps them.
# (l2_bias 0.03 and l2_agreement 0.01 let one like turn every sound 92 % liked; l2 30 with l2_agreement 0.3
# held back listeners who disagree with the crowd: docs/taste.md.)
FORMER_DEFAULTS = tuple(
    FitConfig(l2=l2, l2_bias=bias, anchor_l2=0.01, l2_agreement=agreement, crowd_prior=True, max_iter=50, tol=1e-8)
    for l2, bias, agreement in ((0.03, 0.03, None), (3.0, 0.03, 0.01), (10.0, 0.03, 0.01), (30.0, 0.03, 0.01),
                                (30.0, 3.0, 0.3), (1.0, 3.0, 10.0))
)


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
