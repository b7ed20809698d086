"""What is playing, from the model's own outputs: music, speech, or something else. Pure.

A ``ContentHead`` is a multinomial logistic regression over a window's outputs (the features its document
names, of ``summary``, ``embedding``, ``tags``, ``genre`` and ``moods``), standardised, to three classes: ``music``, ``speech``,
``other`` (animals, ambience, sound effects). It is fitted on real recordings by ``tools/fit_content_head.py``
for one model, whose ``weights_sha256`` its document carries: on another model's outputs it would mean
nothing. ``smoothing.py`` turns its probabilities into the shown state, with hysteresis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamtag.core.scorer import Scores

CONTENT_CLASSES = ("music", "speech", "other")
FEATURES = ("summary", "embedding", "tags", "genre", "moods")
DOCUMENT_KIND = "streamtag-content-head"
DOCUMENT_VERSION = 1


@dataclass(frozen=True)
class ContentHead:
    features: tuple[str, ...]  # which Scores fields, concatenated in this order
    mean: np.ndarray  # (F,)
    scale: np.ndarray  # (F,)
    weights: np.ndarray  # (F, 3)
    bias: np.ndarray  # (3,)
    model_weights_sha256: str

    def probabilities(self, scores: Scores) -> np.ndarray:
        """(B, 3): P(music), P(speech), P(other) for each window of ``scores``."""
        return self.probabilities_of(np.concatenate(
            [np.asarray(getattr(scores, name), dtype=np.float64).reshape(len(scores.genre), -1) for name in self.features],
            axis=1))

    def probabilities_of(self, x: np.ndarray) -> np.ndarray:
        """The same for the features already side by side, (B, F)."""
        logits = ((np.asarray(x, dtype=np.float64) - self.mean) / self.scale) @ self.weights + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)

    def to_dict(self, provenance: dict | None = None) -> dict:
        return {
            "kind": DOCUMENT_KIND, "version": DOCUMENT_VERSION, "classes": list(CONTENT_CLASSES),
            "model_weights_sha256": self.model_weights_sha256, "features": list(self.features),
            "mean": self.mean.tolist(), "scale": self.scale.tolist(), "weights": self.weights.tolist(),
            "bias": self.bias.tolist(), "provenance": provenance or {},
        }

    @classmethod
    def from_dict(cls, data: dict, *, widths: dict[str, int]) -> ContentHead:
        """Parse a document for a model whose outputs have ``widths`` (name -> width); ValueError if malformed."""
        if not isinstance(data, dict) or data.get("kind") != DOCUMENT_KIND:
            raise ValueError("not a streamtag content head")
        if data.get("version") != DOCUMENT_VERSION or tuple(data.get("classes", ())) != CONTENT_CLASSES:
            raise ValueError(f"content head version {data.get('version')!r} or classes {data.get('classes')!r} "
                             "are not this streamtag's")
        features = tuple(str(name) for name in data["features"])
        if not features or any(name not in FEATURES for name in features):
            raise ValueError(f"unknown features {features}")
        width = sum(widths[name] for name in features)
        mean, scale = (np.asarray(data[key], dtype=np.float64) for key in ("mean", "scale"))
        weights, bias = np.asarray(data["weights"], dtype=np.float64), np.asarray(data["bias"], dtype=np.float64)
        if mean.shape != (width,) or scale.shape != (width,) or weights.shape != (width, 3) or bias.shape != (3,):
            raise ValueError(f"content head shapes do not fit the model's {width} features")
        if not all(np.isfinite(a).all() for a in (mean, scale, weights, bias)) or not (scale > 0).all():
            raise ValueError("content head holds non-finite numbers or a scale that is not positive")
        return cls(features, mean, scale, weights, bias, str(data["model_weights_sha256"]))
