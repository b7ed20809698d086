"""The model contract: what a streamtag ONNX file holds, written by export and checked by the engine.

Format 2 (this streamtag writes it) adds the output ``tags`` ``[batch, n_tags]`` with its names in the
metadata key ``tag_names``: the tags a pretrained teacher taught the model. Format 1 models (no tags) still
load: their ``tag_names`` is empty and the engine reports tags of width 0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from streamtag.errors import ModelError

FORMAT_VERSION = "2"
READABLE_FORMATS = ("1", "2")
INPUT_NAME = "audio"
BASE_OUTPUTS = ("genre", "taste", "moods", "embedding")
TAGS_OUTPUT = "tags"
REQUIRED_METADATA = (
    "streamtag.format", "name", "version", "labels", "mood_names", "sample_rate", "window_samples",
    "hop_samples", "embedding_dim",
)


def output_names(format_version: str) -> tuple[str, ...]:
    """The outputs a model of ``format_version`` has, in the order the engine reads them."""
    return BASE_OUTPUTS if format_version == "1" else (*BASE_OUTPUTS, TAGS_OUTPUT)


@dataclass(frozen=True)
class ModelInfo:
    path: Path | None
    name: str
    version: str
    labels: tuple[str, ...]
    mood_names: tuple[str, ...]
    sample_rate: int
    window_samples: int
    hop_samples: int
    embedding_dim: int
    provenance: dict
    tag_names: tuple[str, ...] = ()
    format_version: str = FORMAT_VERSION

    @property
    def window_s(self) -> float:
        return self.window_samples / self.sample_rate

    @property
    def hop_s(self) -> float:
        return self.hop_samples / self.sample_rate

    @property
    def outputs(self) -> tuple[str, ...]:
        return output_names(self.format_version)


def parse_metadata(path: Path, meta: dict[str, str]) -> ModelInfo:
    missing = [key for key in REQUIRED_METADATA if key not in meta]
    if missing:
        raise ModelError(
            f"{path}: not a streamtag model (metadata lacks {', '.join(missing)}); "
            "export one with tools/export_onnx.py or use the shipped model"
        )
    version = meta["streamtag.format"]
    if version not in READABLE_FORMATS:
        raise ModelError(
            f"{path}: model format {version!r}, but this streamtag reads formats "
            f"{', '.join(READABLE_FORMATS)}; upgrade streamtag or re-export the model"
        )
    if version != "1" and "tag_names" not in meta:
        raise ModelError(f"{path}: a format {version} model must name its tags (metadata 'tag_names'); re-export it")
    try:
        info = ModelInfo(
            path=path,
            name=meta["name"],
            version=meta["version"],
            labels=tuple(json.loads(meta["labels"])),
            mood_names=tuple(json.loads(meta["mood_names"])),
            sample_rate=int(meta["sample_rate"]),
            window_samples=int(meta["window_samples"]),
            hop_samples=int(meta["hop_samples"]),
            embedding_dim=int(meta["embedding_dim"]),
            provenance=json.loads(meta.get("provenance", "{}")),
            tag_names=tuple(json.loads(meta.get("tag_names", "[]"))),
            format_version=version,
        )
    except (ValueError, TypeError) as exc:
        raise ModelError(f"{path}: malformed streamtag metadata ({exc}); re-export the model") from exc
    if not info.labels or info.sample_rate <= 0 or info.window_samples <= 0 or info.hop_samples <= 0:
        raise ModelError(f"{path}: metadata has empty labels or non-positive rates/lengths; re-export the model")
    if not all(isinstance(name, str) for name in info.labels + info.mood_names + info.tag_names):
        raise ModelError(f"{path}: labels, mood names and tag names must be strings; re-export the model")
    return info


def check_signature(info: ModelInfo, inputs: dict[str, list], outputs: dict[str, list]) -> None:
    """``inputs``/``outputs``: name -> shape, as the ONNX session reports them."""
    expected_outputs = info.outputs
    if INPUT_NAME not in inputs or set(expected_outputs) - set(outputs):
        raise ModelError(
            f"{info.path}: a format {info.format_version} model has input {INPUT_NAME!r} and outputs "
            f"{', '.join(expected_outputs)}; found inputs {sorted(inputs)} and outputs {sorted(outputs)}"
        )
    expected = {
        INPUT_NAME: (inputs[INPUT_NAME], info.window_samples),
        "genre": (outputs["genre"], len(info.labels)),
        "moods": (outputs["moods"], len(info.mood_names)),
        "embedding": (outputs["embedding"], info.embedding_dim),
    }
    if TAGS_OUTPUT in expected_outputs:
        expected[TAGS_OUTPUT] = (outputs[TAGS_OUTPUT], len(info.tag_names))
    for name, (shape, size) in expected.items():
        if len(shape) != 2 or shape[1] != size:
            raise ModelError(f"{info.path}: {name!r} has shape {shape}, but its metadata implies (batch, {size})")
