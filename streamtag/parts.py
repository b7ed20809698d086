"""A model's streaming parts: its front end and its network as two sessions, checked against the model.

A model with streaming parts (``contract.StreamingInfo``) names a front end (audio -> log-mel frames) and a
network (a window of frames -> outputs), each a file beside it with its SHA-256; with them a stream computes
each spectrogram frame once (``streams.FrameStream``). A part whose hash differs is refused; a missing one
leaves every window computed whole (docs/streaming-frontend.md).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from streamtag.contract import INPUT_NAME, LOGMEL_NAME, ModelInfo, Part, check_outputs
from streamtag.errors import ModelError

log = logging.getLogger(__name__)

# Which front end runs where, measured on the 2-core reference machine (docs/streaming-frontend.md): ONNX
# Runtime's CPU STFT is an FFT but runs on one thread, so it wins with one intra-op thread (live: 2.4x the
# windows/s of whole windows, against 1.5x for the conv-STFT) and loses to the conv-STFT's multi-threaded
# GEMM with more (offline, batch 8: conv 1.37x, STFT 1.21x). The CUDA provider has no STFT kernel.
def frontend_for(provider: str, threads: int) -> str:
    """"conv" or "stft" for ``provider`` with ``threads`` intra-op threads (0: onnxruntime's default, all cores)."""
    if provider == "cuda":
        return "conv"
    one_thread = threads == 1 or (threads == 0 and (os.cpu_count() or 1) == 1)
    return "stft" if one_thread else "conv"


# Frames per front-end run when a long stretch of audio arrives at once (a file read whole): the conv-STFT's
# intermediate is 2 x 513 floats per frame, so this bounds it to 4 MB.
MAX_FRAMES_PER_RUN = 1024


class StreamingParts:
    """The two sessions of a streaming model: audio -> log-mel frames, and a window of frames -> outputs."""

    def __init__(self, ort, info: ModelInfo, frontend_kind: str, frontend, network, providers: list[str], device: str) -> None:
        self.info = info
        self.streaming = info.streaming
        self.frontend_kind = frontend_kind
        self.frontend = frontend
        self.network = network
        self.providers = providers
        self.device = device
        self.ort = ort

    def logmel(self, audio: list[np.ndarray]) -> list[np.ndarray]:
        """The frames (n, mels) of each piece of audio, which holds exactly the samples of its n frames.

        The pieces come in stream order. One with fewer frames than a window continues the piece before it
        (the next hop of the same stream) and overlaps it by ``span - frame`` samples, so those pieces are
        joined and run as one stretch of audio: one front-end run for a batch of windows, not one each."""
        frame, span = self.streaming.frame_samples, self.streaming.frame_span_samples
        counts = [1 + (len(piece) - span) // frame for piece in audio]
        stretches: list[list[np.ndarray]] = []
        for piece, n_frames in zip(audio, counts, strict=True):
            if stretches and n_frames < self.streaming.frames_per_window:
                stretches[-1].append(piece[span - frame :])
            else:
                stretches.append([piece])
        frames = np.concatenate([self._frames_of(np.concatenate(pieces)) for pieces in stretches])
        return np.split(frames, np.cumsum(counts)[:-1])

    def _frames_of(self, audio: np.ndarray) -> np.ndarray:
        frame, span = self.streaming.frame_samples, self.streaming.frame_span_samples
        n_frames = 1 + (len(audio) - span) // frame
        runs = []
        for first in range(0, n_frames, MAX_FRAMES_PER_RUN):
            last = min(n_frames, first + MAX_FRAMES_PER_RUN) - 1
            chunk = np.ascontiguousarray(audio[None, first * frame : last * frame + span], dtype=np.float32)
            runs.append(self.frontend.run([LOGMEL_NAME], {INPUT_NAME: chunk})[0][0])
        return runs[0] if len(runs) == 1 else np.concatenate(runs)

    def hop_frames(self, hop_samples: int) -> int | None:
        """The frames a hop of ``hop_samples`` adds, where windows that far apart share frames exactly: a
        whole number of frames, no more than a window's; else None."""
        frame, per_window = self.streaming.frame_samples, self.streaming.frames_per_window
        if hop_samples % frame or hop_samples // frame > per_window:
            return None
        return hop_samples // frame

    def run(self, logmel: np.ndarray) -> list[np.ndarray]:
        return self.network.run(list(self.info.outputs), {LOGMEL_NAME: logmel})


def load_parts(
    ort, path: Path, info: ModelInfo, options, providers: list[str], provider: str, kind: str | None, threads: int
) -> StreamingParts | None:
    """``kind``: the front end asked for, or None for the one ``frontend_for`` chooses (where the model has it)."""
    streaming = info.streaming
    if streaming is None:
        return None
    if 1 + (info.window_samples - streaming.frame_span_samples) // streaming.frame_samples != streaming.frames_per_window:
        raise ModelError(f"{path}: its streaming metadata does not frame its own window; re-export the model")
    if kind is None:
        kind = frontend_for(provider, threads)
        kind = kind if kind in streaming.frontends else next(iter(streaming.frontends))
    elif kind not in streaming.frontends:
        raise ModelError(f"{path}: no {kind!r} front end; this model has {', '.join(streaming.frontends)}")
    sessions = []
    for part in (streaming.frontends[kind], streaming.network):
        part_path = path.with_name(part.file)
        if not part_path.is_file():
            log.warning("%s: %s is missing, so every window is computed in full (the same scores, more work); "
                        "keep the files that were exported with the model beside it", path, part.file)
            return None
        sessions.append(ort.InferenceSession(_checked_bytes(path, part_path, part), sess_options=options, providers=providers))
    frontend, network = sessions
    check_outputs(info, {o.name: o.shape for o in network.get_outputs()})
    shape = network.get_inputs()[0].shape
    if network.get_inputs()[0].name != LOGMEL_NAME or list(shape[1:]) != [streaming.frames_per_window, streaming.n_mels]:
        raise ModelError(f"{path}: its network part takes {shape}, not (batch, {streaming.frames_per_window}, "
                         f"{streaming.n_mels}) log-mel frames; re-export the model")
    log.info("streaming parts: %s front end, network", kind)
    return StreamingParts(ort, info, kind, frontend, network, providers, "cuda" if provider == "cuda" else "cpu")


def _checked_bytes(model_path: Path, part_path: Path, part: Part) -> bytes:
    """The part's bytes, read once so that what is checked is what is loaded."""
    data = part_path.read_bytes()
    if hashlib.sha256(data).hexdigest() != part.sha256:
        raise ModelError(
            f"{part_path} does not belong to {model_path} (its SHA-256 differs from the one the model names); "
            "export the model again, or copy the files that were exported with it"
        )
    return data
