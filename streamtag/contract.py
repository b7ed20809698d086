"""The model contract: what a streamtag ONNX file holds, written by export and checked by the engine.

Format 2 (this streamtag writes it) adds the output ``tags`` ``[batch, n_tags]`` with its names in the
metadata key ``tag_names``: the tags a pretrained teacher taught the model. Format 1 models (no tags) still
load: their ``tag_names`` is empty and the engine reports tags of width 0.

The optional metadata key ``streaming`` names the parts that let a stream compute each spectrogram frame once
(docs/streaming-frontend.md): a front end (audio -> log-mel frames) and the network (a window of frames ->
the outputs above), each a file beside the model with its SHA-256. The model itself is unchanged, so a
streamtag that ignores the key still loads it, and a model without the key runs every window in full.

A model may also have the output ``summary`` ``[batch, summary_dim]`` (metadata ``summary_dim``): the time mean and
max of its last convolution block, which the content head reads (``core/content.py``). A model without it
still loads; it has no content head.

The metadata key ``weights_sha256`` is the model's identity: a digest of its weights, written by export (never
passed in), which taste profiles are keyed by. A model exported before it existed is identified by the SHA-256
of its file instead, so it too can never be mistaken for another model that shares its name and version.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from streamtag.errors import ModelError

FORMAT_VERSION = "2"
READABLE_FORMATS = ("1", "2")
INPUT_NAME = "audio"
BASE_OUTPUTS = ("genre", "taste", "moods", "embedding")
TAGS_OUTPUT = "tags"
SUMMARY_OUTPUT = "summary"  # optional: present when the metadata gives summary_dim
LOGMEL_NAME = "logmel"  # the front end's output and the network's input: (batch, frames, n_mels)
STREAMING_VERSION = 1  # of the ``streaming`` metadata; another version is ignored (every window in full)
WEIGHTS_KEY = "weights_sha256"
_SHA256 = re.compile(r"[0-9a-f]{64}")
REQUIRED_METADATA = (
    "streamtag.format", "name", "version", "labels", "mood_names", "sample_rate", "window_samples",
    "hop_samples", "embedding_dim",
)


def output_names(format_version: str, *, summary: bool = False) -> tuple[str, ...]:
    """The outputs a model of ``format_version`` has (with ``summary``: and the CNN summary), in the order the
    engine reads them."""
    names = BASE_OUTPUTS if format_version == "1" else (*BASE_OUTPUTS, TAGS_OUTPUT)
    return (*names, SUMMARY_OUTPUT) if summary else names


@dataclass(frozen=True)
class Part:
    """A graph that travels with the model: its file name (beside the model) and its SHA-256."""

    file: str
    sha256: str


@dataclass(frozen=True)
class StreamingInfo:
    """How the model's front end frames the audio, and the parts that run it frame by frame."""

    frame_samples: int  # the STFT hop: frame k starts at sample k * frame_samples
    frame_span_samples: int  # the STFT frame length (n_fft)
    frames_per_window: int
    n_mels: int
    network: Part
    frontends: dict[str, Part]  # by kind: "conv" (a Conv1d over the Fourier basis) and/or "stft" (ONNX STFT)
    mflop: dict[str, float]  # counted from the graphs at export: "window", "network", "frontend_frame"


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
    streaming: StreamingInfo | None = None
    weights_sha256: str = ""  # the model's identity (module docstring); "" only for a ModelInfo built by hand
    summary_dim: int = 0  # width of the optional ``summary`` output; 0: the model has none

    @property
    def window_s(self) -> float:
        return self.window_samples / self.sample_rate

    @property
    def hop_s(self) -> float:
        return self.hop_samples / self.sample_rate

    @property
    def outputs(self) -> tuple[str, ...]:
        return output_names(self.format_version, summary=self.summary_dim > 0)

    def hop_samples_for(self, hop_s: float | None) -> int:
        """The hop in samples for ``hop_s`` seconds (None: the model's own hop).

        For a model with streaming parts the hop is rounded to whole spectrogram frames (at least one), so
        that consecutive windows share frames exactly: 0.5 s at 22050 Hz becomes 22 frames of 512 samples,
        0.511 s."""
        if hop_s is None:
            return self.hop_samples
        if not hop_s > 0 or hop_s == float("inf"):
            raise ModelError(f"the hop (--hop) must be a positive number of seconds, got {hop_s}")
        if self.streaming is None:
            return max(1, round(hop_s * self.sample_rate))
        frame = self.streaming.frame_samples
        return frame * max(1, round(hop_s * self.sample_rate / frame))


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
            streaming=_parse_streaming(path, meta.get("streaming")),
            weights_sha256=_identity(path, meta.get(WEIGHTS_KEY)),
            summary_dim=int(meta.get("summary_dim", 0)),
        )
    except (ValueError, TypeError) as exc:
        raise ModelError(f"{path}: malformed streamtag metadata ({exc}); re-export the model") from exc
    if not info.labels or info.sample_rate <= 0 or info.window_samples <= 0 or info.hop_samples <= 0:
        raise ModelError(f"{path}: metadata has empty labels or non-positive rates/lengths; re-export the model")
    if not all(isinstance(name, str) for name in info.labels + info.mood_names + info.tag_names):
        raise ModelError(f"{path}: labels, mood names and tag names must be strings; re-export the model")
    return info


def _identity(path: Path, stamped: str | None) -> str:
    if stamped is None:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()  # exported before models were stamped
    if not _SHA256.fullmatch(stamped):
        raise ValueError(f"{WEIGHTS_KEY} {stamped!r} is not a SHA-256 in hex")
    return stamped


def _parse_streaming(path: Path, text: str | None) -> StreamingInfo | None:
    if text is None:
        return None
    try:
        data = json.loads(text)
        if data.get("version") != STREAMING_VERSION:
            return None  # written by a later streamtag: this one runs every window in full
        return StreamingInfo(
            frame_samples=int(data["frame_samples"]),
            frame_span_samples=int(data["frame_span_samples"]),
            frames_per_window=int(data["frames_per_window"]),
            n_mels=int(data["n_mels"]),
            network=Part(**data["network"]),
            frontends={kind: Part(**part) for kind, part in data["frontends"].items()},
            mflop={key: float(value) for key, value in data.get("mflop", {}).items()},
        )
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ModelError(f"{path}: malformed 'streaming' metadata ({exc}); re-export the model") from exc


def check_signature(info: ModelInfo, inputs: dict[str, list], outputs: dict[str, list]) -> None:
    """``inputs``/``outputs``: name -> shape, as the ONNX session reports them."""
    if INPUT_NAME not in inputs:
        raise ModelError(f"{info.path}: a streamtag model has the input {INPUT_NAME!r}; found inputs {sorted(inputs)}")
    shape = inputs[INPUT_NAME]
    if len(shape) != 2 or shape[1] != info.window_samples:
        raise ModelError(f"{info.path}: {INPUT_NAME!r} has shape {shape}, but its metadata implies (batch, {info.window_samples})")
    check_outputs(info, outputs)


def check_outputs(info: ModelInfo, outputs: dict[str, list]) -> None:
    """The outputs of the model, or of its network part, against the sizes its metadata implies."""
    expected_outputs = info.outputs
    if set(expected_outputs) - set(outputs):
        raise ModelError(
            f"{info.path}: a format {info.format_version} model has the outputs {', '.join(expected_outputs)}; "
            f"found {sorted(outputs)}"
        )
    expected = {
        "genre": (outputs["genre"], len(info.labels)),
        "moods": (outputs["moods"], len(info.mood_names)),
        "embedding": (outputs["embedding"], info.embedding_dim),
    }
    if TAGS_OUTPUT in expected_outputs:
        expected[TAGS_OUTPUT] = (outputs[TAGS_OUTPUT], len(info.tag_names))
    if SUMMARY_OUTPUT in expected_outputs:
        expected[SUMMARY_OUTPUT] = (outputs[SUMMARY_OUTPUT], info.summary_dim)
    for name, (shape, size) in expected.items():
        if len(shape) != 2 or shape[1] != size:
            raise ModelError(f"{info.path}: {name!r} has shape {shape}, but its metadata implies (batch, {size})")
