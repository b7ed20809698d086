"""ONNX Runtime sessions for a streamtag model: provider choice, metadata checks, IOBinding on CUDA.

The model's own metadata (labels, sample rate, window, hop, mood names) is the single source of those
parameters at run time; a model without them, or with inputs and outputs of other shapes, is refused here
rather than producing nonsense later.

A model with streaming parts (``contract.StreamingInfo``) also loads its front end and its network as two
sessions, so that a stream computes each spectrogram frame once (``frame_ring``); the parts are checked
against the SHA-256 the model names, and a model whose parts are missing runs every window in full.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from streamtag.contract import (
    INPUT_NAME, LOGMEL_NAME, TAGS_OUTPUT, ModelInfo, Part, check_outputs, check_signature, parse_metadata,
)
from streamtag.errors import ModelError

log = logging.getLogger(__name__)

PROVIDERS = ("auto", "cpu", "cuda")
# onnxruntime's log severity: 3 = errors only. Its warnings (e.g. about unused initialisers or memcpy
# nodes) are noise to a user watching live tags.
_ORT_LOG_SEVERITY_ERROR = 3


def default_model_path() -> Path:
    """The model shipped with the package (models/streamtag.onnx in a checkout)."""
    return Path(str(resources.files("streamtag.models").joinpath("streamtag.onnx")))


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


def ring_shift_path(name: str = "ring_shift.onnx") -> Path:
    """A tiny graph that shifts a window kept in device memory (built by streamtag.train.ring_shift):
    ``ring_shift.onnx`` for raw samples, ``frame_shift.onnx`` for log-mel frames."""
    return Path(str(resources.files("streamtag.models").joinpath(name)))


@dataclass(frozen=True)
class Scores:
    """One batch of model outputs: genre (B, G), taste (B,), moods (B, M), embedding (B, D), tags (B, T).

    A format 1 model has no tags: T is 0."""

    genre: np.ndarray
    taste: np.ndarray
    moods: np.ndarray
    embedding: np.ndarray
    tags: np.ndarray


def _providers_for(choice: str, available: list[str]) -> list[str]:
    if choice not in PROVIDERS:
        raise ModelError(f"unknown provider {choice!r}; choose one of {', '.join(PROVIDERS)}")
    if choice == "cpu":
        return ["CPUExecutionProvider"]
    if choice == "cuda":
        if "CUDAExecutionProvider" not in available:
            raise ModelError(
                "CUDA was asked for, but this onnxruntime has no CUDA provider "
                f"(available: {', '.join(available)}); install onnxruntime-gpu, or use --provider cpu"
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if "CUDAExecutionProvider" in available and _cuda_device_present():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _cuda_device_present() -> bool:
    """Whether an NVIDIA driver is there at all: asking ORT to load CUDA without one only logs errors."""
    return Path("/proc/driver/nvidia/version").exists() or Path("C:/Windows/System32/nvcuda.dll").exists()


class Engine:
    """Runs a streamtag ONNX model on batches of raw audio windows."""

    def __init__(
        self, path: str | Path | None = None, *, provider: str = "auto", threads: int = 0,
        device_ring: bool | None = None, full_window: bool = False, frontend: str | None = None,
    ) -> None:
        """``device_ring``: keep the live window in the provider's memory and copy only new samples each hop;
        on by default with CUDA. (On the CPU there is nothing to save; it can be switched on there to test it.)
        ``full_window``: leave the streaming parts unused, so every window's spectrogram is computed whole
        (for comparison; the scores are the same). ``frontend``: the streaming front end to run, "conv" or
        "stft" (default: the faster one for the provider and threads, ``frontend_for``)."""
        import onnxruntime as ort

        path = Path(path) if path is not None else default_model_path()
        if not path.is_file():
            raise ModelError(
                f"model file not found: {path}; pass --model PATH, or reinstall streamtag to get the shipped model"
            )
        ort.set_default_logger_severity(_ORT_LOG_SEVERITY_ERROR)
        options = ort.SessionOptions()
        options.log_severity_level = _ORT_LOG_SEVERITY_ERROR
        if threads:
            options.intra_op_num_threads = threads
        # Idle intra-op threads would otherwise spin-wait for the next run: between live hops, and beside
        # the audio thread on a small machine, that burns a core for nothing and slows the next run.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        wanted = _providers_for(provider, ort.get_available_providers())
        if wanted[0] == "CUDAExecutionProvider" and hasattr(ort, "preload_dlls"):
            try:
                ort.preload_dlls()  # CUDA/cuDNN from pip packages (nvidia-*), where they are installed
            except Exception as exc:  # noqa: BLE001 - a missing optional library only matters if CUDA then fails
                log.debug("onnxruntime.preload_dlls failed: %s", exc)
        try:
            self._session = ort.InferenceSession(str(path), sess_options=options, providers=wanted)
        except Exception as exc:  # onnxruntime raises its own untyped errors for corrupt files
            raise ModelError(f"{path}: cannot load model ({exc}); the file may be corrupt, re-download or re-export it") from exc
        if provider == "cuda" and "CUDAExecutionProvider" not in self._session.get_providers():
            raise ModelError(
                "CUDA was asked for, but onnxruntime could not load its CUDA provider (CUDA 12/13 and cuDNN 9 "
                "libraries must be installed); use --provider cpu"
            )
        self.info = parse_metadata(path, self._session.get_modelmeta().custom_metadata_map)
        check_signature(self.info, {i.name: i.shape for i in self._session.get_inputs()},
                        {o.name: o.shape for o in self._session.get_outputs()})
        self._outputs = list(self.info.outputs)
        self.provider = "cuda" if self._session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
        self._binding = self._session.io_binding() if self.provider == "cuda" else None
        self.device_ring = self.provider == "cuda" if device_ring is None else device_ring
        self._ring = _DeviceRing(ort, self.info.window_samples, self.provider, wanted) if self.device_ring else None
        self.parts = None if full_window else _load_parts(
            ort, path, self.info, options, wanted, self.provider, frontend, threads)
        log.info("model %s %s on %s", self.info.name, self.info.version, self.provider)

    def frame_ring(self) -> HostFrameRing | DeviceFrameRing | None:
        """A new stream's ring of log-mel frames, which scores each window from the frames it adds; None
        where the model has no streaming parts (or ``full_window`` was asked for)."""
        if self.parts is None:
            return None
        return DeviceFrameRing(self.parts, self._scores) if self.device_ring else HostFrameRing(self.parts, self._scores)

    def run(self, windows: np.ndarray) -> Scores:
        """Score a batch of windows, float32 of shape (B, window_samples)."""
        windows = np.ascontiguousarray(windows, dtype=np.float32)
        if windows.ndim != 2 or windows.shape[1] != self.info.window_samples:
            raise ValueError(f"expected windows of shape (B, {self.info.window_samples}), got {windows.shape}")
        if self._binding is None:
            outputs = self._session.run(self._outputs, {INPUT_NAME: windows})
        else:
            outputs = self._run_bound(windows)
        return self._scores(outputs)

    def run_next(self, window: np.ndarray, *, new_samples: int) -> Scores:
        """Score one window of a stream whose previous window ended ``new_samples`` before this one's end.

        With the device ring, only those new samples cross to the device; a full window is copied the first
        time and whenever ``new_samples`` is the whole window (a gap in the stream).
        """
        if self._ring is None:
            return self.run(window[None])
        window = np.ascontiguousarray(window, dtype=np.float32)
        if not self._ring.primed or new_samples >= self.info.window_samples:
            self._ring.load(window)
        else:
            self._ring.advance(window[-new_samples:])
        binding = self._session.io_binding()
        binding.bind_ortvalue_input(INPUT_NAME, self._ring.window)
        return self._scores(self._run_binding(binding, self._ring.device))

    def _scores(self, outputs: list[np.ndarray]) -> Scores:
        named = dict(zip(self._outputs, outputs, strict=True))
        tags = named.get(TAGS_OUTPUT)
        if tags is None:
            tags = np.zeros((len(named["genre"]), 0), dtype=np.float32)
        return Scores(genre=named["genre"], taste=named["taste"], moods=named["moods"],
                      embedding=named["embedding"], tags=tags)

    def forget_stream(self) -> None:
        """The next ``run_next`` starts a new stream: it copies a whole window."""
        if self._ring is not None:
            self._ring.primed = False

    def _run_bound(self, windows: np.ndarray) -> list[np.ndarray]:
        # IOBinding: the input is copied to the device once and the outputs stay there until read, so no
        # intermediate host round trips happen inside the graph.
        binding = self._binding
        binding.clear_binding_inputs()
        binding.clear_binding_outputs()
        binding.bind_cpu_input(INPUT_NAME, windows)
        return self._run_binding(binding, "cuda")

    def _run_binding(self, binding, device: str) -> list[np.ndarray]:
        """Run with the outputs bound on ``device``, then copy them (a few hundred floats) to the host."""
        for name in self._outputs:
            binding.bind_output(name, device)
        self._session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()


class _DeviceRing:
    """The current window, kept in device memory in one of two buffers that take turns.

    Each hop the ring-shift graph reads one buffer and the new samples (the only host-to-device copy) and
    writes the shifted window into the other; the model then reads that buffer where it lies.
    """

    def __init__(self, ort, window_samples: int, provider: str, providers: list[str]) -> None:
        self.device = "cuda" if provider == "cuda" else "cpu"
        try:
            self._shift = ort.InferenceSession(str(ring_shift_path()), providers=providers)
        except Exception as exc:  # noqa: BLE001 - onnxruntime's errors are untyped
            raise ModelError(f"{ring_shift_path()}: cannot load the ring-shift graph ({exc}); reinstall streamtag") from exc
        self._buffers = [
            ort.OrtValue.ortvalue_from_shape_and_type([1, window_samples], np.float32, self.device, 0) for _ in range(2)
        ]
        self._current = 0
        self.primed = False

    @property
    def window(self):
        return self._buffers[self._current]

    def load(self, window: np.ndarray) -> None:
        self._buffers[self._current].update_inplace(window[None])
        self.primed = True

    def advance(self, new: np.ndarray) -> None:
        binding = self._shift.io_binding()
        binding.bind_ortvalue_input("ring", self._buffers[self._current])
        binding.bind_cpu_input("new", np.ascontiguousarray(new[None], dtype=np.float32))
        binding.bind_ortvalue_output("shifted", self._buffers[1 - self._current])
        self._shift.run_with_iobinding(binding)
        self._current = 1 - self._current


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

    def run(self, logmel: np.ndarray) -> list[np.ndarray]:
        return self.network.run(list(self.info.outputs), {LOGMEL_NAME: logmel})


def _load_parts(
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


ScoresOf = Callable[[list[np.ndarray]], Scores]


class HostFrameRing:
    """One stream's current window of log-mel frames, in host memory.

    ``advance`` takes, for each next window in stream order, the audio of the frames it adds (all of a
    window's frames for the first window or after a gap, else the last hop's), and scores those windows in
    one network run."""

    def __init__(self, parts: StreamingParts, scores_of: ScoresOf) -> None:
        self._parts = parts
        self._scores_of = scores_of
        self._frames_per_window = parts.streaming.frames_per_window
        self.reset()

    def reset(self) -> None:
        self._window: np.ndarray | None = None

    def advance(self, new_audio: list[np.ndarray]) -> Scores:
        windows = []
        for frames in self._parts.logmel(new_audio):
            if len(frames) >= self._frames_per_window or self._window is None:
                self._window = frames[-self._frames_per_window :]
            else:
                self._window = np.concatenate([self._window[len(frames) :], frames])
            windows.append(self._window)
        return self._scores_of(self._parts.run(np.stack(windows)))


class DeviceFrameRing:
    """One stream's current window of log-mel frames, kept in the provider's memory.

    Each window's new audio is the only host-to-device copy: the front end's frames stay on the device, the
    frame-shift graph writes the shifted window into the other of two buffers, and the network reads it there.
    """

    def __init__(self, parts: StreamingParts, scores_of: ScoresOf) -> None:
        ort, device = parts.ort, parts.device
        try:
            self._shift = ort.InferenceSession(str(ring_shift_path("frame_shift.onnx")), providers=parts.providers)
        except Exception as exc:  # noqa: BLE001 - onnxruntime's errors are untyped
            raise ModelError(f"cannot load the frame-shift graph ({exc}); reinstall streamtag") from exc
        streaming = parts.streaming
        shape = [1, streaming.frames_per_window, streaming.n_mels]
        self._buffers = [ort.OrtValue.ortvalue_from_shape_and_type(shape, np.float32, device, 0) for _ in range(2)]
        self._parts = parts
        self._scores_of = scores_of
        self._device = device
        self._current = 0

    def reset(self) -> None:
        """Nothing to forget: a stream's first window brings all its frames, which replace the whole ring."""

    def advance(self, new_audio: list[np.ndarray]) -> Scores:
        parts = self._parts
        outputs = []
        for audio in new_audio:
            front = parts.frontend.io_binding()
            front.bind_cpu_input(INPUT_NAME, np.ascontiguousarray(audio[None], dtype=np.float32))
            front.bind_output(LOGMEL_NAME, self._device)
            parts.frontend.run_with_iobinding(front)
            shift = self._shift.io_binding()
            shift.bind_ortvalue_input("ring", self._buffers[self._current])
            shift.bind_ortvalue_input("new", front.get_outputs()[0])
            shift.bind_ortvalue_output("shifted", self._buffers[1 - self._current])
            self._shift.run_with_iobinding(shift)
            self._current = 1 - self._current
            network = parts.network.io_binding()
            network.bind_ortvalue_input(LOGMEL_NAME, self._buffers[self._current])
            for name in parts.info.outputs:
                network.bind_output(name, self._device)
            parts.network.run_with_iobinding(network)
            outputs.append(network.copy_outputs_to_cpu())
        return self._scores_of([np.concatenate(column) for column in zip(*outputs, strict=True)])
