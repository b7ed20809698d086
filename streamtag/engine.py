"""ONNX Runtime sessions for a streamtag model: provider choice, metadata checks, IOBinding on CUDA.

The model's own metadata (labels, sample rate, window, hop, mood names) is the single source of those
parameters at run time; a model without them, or with inputs and outputs of other shapes, is refused here
rather than producing nonsense later.

``Engine`` implements ``core.scorer.Scorer``: ``stream()`` hands each stream its own scorer
(``streamtag.streams``), so one engine serves many streams. A model with streaming parts (``streamtag.parts``)
lets those streams compute each spectrogram frame once.
"""

from __future__ import annotations

import dataclasses
import logging
from importlib import resources
from pathlib import Path

import numpy as np

from streamtag.content_file import load_content_head
from streamtag.contract import INPUT_NAME, SUMMARY_OUTPUT, TAGS_OUTPUT, check_signature, parse_metadata
from streamtag.core.scorer import Scores
from streamtag.errors import ModelError
from streamtag.parts import load_parts
from streamtag.streams import FrameStream, WindowStream

log = logging.getLogger(__name__)

PROVIDERS = ("auto", "cpu", "cuda")
# onnxruntime's log severity: 3 = errors only. Its warnings (e.g. about unused initialisers or memcpy
# nodes) are noise to a user watching live tags.
_ORT_LOG_SEVERITY_ERROR = 3


def default_model_path() -> Path:
    """The model shipped with the package (models/streamtag.onnx in a checkout)."""
    return Path(str(resources.files("streamtag.models").joinpath("streamtag.onnx")))


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
        self.ort, self.providers, self.device = ort, wanted, self.provider
        self.parts = None if full_window else load_parts(
            ort, path, self.info, options, wanted, self.provider, frontend, threads)
        self.content_head = load_content_head(path, self.info)
        log.info("model %s %s on %s", self.info.name, self.info.version, self.provider)

    def stream(self, *, hop_samples: int) -> FrameStream | WindowStream:
        """A scorer for a new stream whose windows start every ``hop_samples``: frame by frame where the
        model has streaming parts and the hop is whole frames, else whole windows."""
        if self.parts is not None and self.parts.hop_frames(hop_samples) is not None:
            return FrameStream(self.parts, self.scores, hop_samples=hop_samples, device_ring=self.device_ring)
        return WindowStream(self, hop_samples=hop_samples, device_ring=self.device_ring)

    def run(self, windows: np.ndarray) -> Scores:
        """Score a batch of windows, float32 of shape (B, window_samples)."""
        windows = np.ascontiguousarray(windows, dtype=np.float32)
        if windows.ndim != 2 or windows.shape[1] != self.info.window_samples:
            raise ValueError(f"expected windows of shape (B, {self.info.window_samples}), got {windows.shape}")
        if self._binding is None:
            outputs = self._session.run(self._outputs, {INPUT_NAME: windows})
        else:
            outputs = self._run_bound(windows)
        return self.scores(outputs)

    def run_bound(self, window) -> Scores:
        """Score one window that already lies in the provider's memory (an OrtValue of shape (1, window))."""
        binding = self._session.io_binding()
        binding.bind_ortvalue_input(INPUT_NAME, window)
        return self.scores(self._run_binding(binding, self.device))

    def scores(self, outputs: list[np.ndarray]) -> Scores:
        """Outputs in the order of ``info.outputs`` -> Scores (tags of width 0 for a model without them)."""
        named = dict(zip(self._outputs, outputs, strict=True))
        tags = named.get(TAGS_OUTPUT)
        if tags is None:
            tags = np.zeros((len(named["genre"]), 0), dtype=np.float32)
        scores = Scores(genre=named["genre"], taste=named["taste"], moods=named["moods"],
                        embedding=named["embedding"], tags=tags, summary=named.get(SUMMARY_OUTPUT))
        if self.content_head is None:
            return scores
        return dataclasses.replace(scores, content=self.content_head.probabilities(scores))

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
