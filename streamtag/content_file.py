"""The content head's file beside a model (``streamtag.onnx`` -> ``streamtag.content.json``), read for the engine.

A model without one still runs: it has no speech or "other" state, only music and unsure. A head fitted for
another model's weights, or one that cannot be read, is left out with a warning that says what to do: its
numbers would mean nothing on this model's outputs, and the music must go on.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from streamtag.contract import ModelInfo
from streamtag.core.content import ContentHead

log = logging.getLogger(__name__)


def content_head_path(model_path: Path) -> Path:
    return model_path.with_name(f"{model_path.stem}.content.json")


def load_content_head(model_path: Path, info: ModelInfo) -> ContentHead | None:
    path = content_head_path(Path(model_path))
    if not path.is_file():
        return None
    widths = {"summary": info.summary_dim, "embedding": info.embedding_dim, "tags": len(info.tag_names), "genre": len(info.labels),
              "moods": len(info.mood_names)}
    try:
        head = ContentHead.from_dict(json.loads(path.read_text(encoding="utf-8")), widths=widths)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s: not a usable content head (%s); speech is not told from music. Refit it with "
                    "tools/fit_content_head.py, or delete it", path, exc)
        return None
    if head.model_weights_sha256 != info.weights_sha256:
        log.warning("%s was fitted for another model (weights %s, this one %s); speech is not told from music. "
                    "Refit it with tools/fit_content_head.py", path, head.model_weights_sha256[:12],
                    info.weights_sha256[:12])
        return None
    return head
