"""Per-stream scorers that the engine hands out (``Engine.stream``): what one stream keeps between windows.

One engine serves any number of streams; each stream's state lives here, not in the engine:

- ``WindowStream`` scores whole windows. With the device ring (CUDA), the live window stays in device
  memory and only each hop's new samples cross to it.
- ``FrameStream`` runs the front end only on the frames a hop adds and keeps the window's log-mel frames in a
  ring: on the host (``HostFrameRing``), or in device memory (``DeviceFrameRing``), where each window's new
  audio is the only host-to-device copy.

Both take windows of one stream in stream order, and a window that does not follow the one before by exactly
one hop (the first, or after a gap) is taken whole, so their scores equal a whole-window run's.

``score_together`` scores the windows of many streams in one model run (the multi-stream server's batches):
each stream turns its windows into model inputs (raw windows, or log-mel windows from its frame ring), the
inputs of streams that share a model are stacked, run once, and split back.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from streamtag.contract import INPUT_NAME, LOGMEL_NAME
from streamtag.core.scorer import Scores
from streamtag.core.windows import new_frame_audio
from streamtag.errors import ModelError
from streamtag.parts import StreamingParts

if TYPE_CHECKING:
    from streamtag.engine import Engine

ScoresOf = Callable[[list[np.ndarray]], Scores]


def ring_shift_path(name: str = "ring_shift.onnx") -> Path:
    """A tiny graph that shifts a window kept in device memory (built by streamtag.train.ring_shift):
    ``ring_shift.onnx`` for raw samples, ``frame_shift.onnx`` for log-mel frames."""
    return Path(str(resources.files("streamtag.models").joinpath(name)))


class _TwoBuffers:
    """A window kept in device memory in one of two buffers that take turns: the ring-shift graph ``graph``
    reads the current buffer and the new entries and writes the shifted window into the other, which becomes
    the current one. Both device rings (samples and frames) keep their window so."""

    def __init__(self, ort, graph: str, *, providers: list[str], shape: list[int], device: str) -> None:
        try:
            self._shift = ort.InferenceSession(str(ring_shift_path(graph)), providers=providers)
        except Exception as exc:  # noqa: BLE001 - onnxruntime's errors are untyped
            raise ModelError(f"{ring_shift_path(graph)}: cannot load the ring-shift graph ({exc}); reinstall streamtag") from exc
        self._buffers = [ort.OrtValue.ortvalue_from_shape_and_type(shape, np.float32, device, 0) for _ in range(2)]
        self._current = 0

    @property
    def current(self):
        return self._buffers[self._current]

    def shift(self, new) -> None:
        """``new``: a host array (copied to the device, the only copy) or an OrtValue already there."""
        binding = self._shift.io_binding()
        binding.bind_ortvalue_input("ring", self.current)
        if isinstance(new, np.ndarray):
            binding.bind_cpu_input("new", np.ascontiguousarray(new, dtype=np.float32))
        else:
            binding.bind_ortvalue_input("new", new)
        binding.bind_ortvalue_output("shifted", self._buffers[1 - self._current])
        self._shift.run_with_iobinding(binding)
        self._current = 1 - self._current


class _Contiguity:
    """Whether each window follows the one before it by exactly one hop."""

    def __init__(self, hop_samples: int) -> None:
        self.hop_samples = hop_samples
        self.reset()

    def reset(self) -> None:
        self._last_start: int | None = None

    def follows(self, start: int) -> bool:
        follows = self._last_start is not None and start - self._last_start == self.hop_samples
        self._last_start = start
        return follows


class WindowStream:
    """Whole windows, batched; with a device ring, single windows of a live stream reuse the last one."""

    shares_frames = False

    def __init__(self, engine: Engine, *, hop_samples: int, device_ring: bool) -> None:
        self._engine = engine
        self._contiguity = _Contiguity(hop_samples)
        self._ring = _DeviceWindowRing(engine, hop_samples=hop_samples) if device_ring else None

    def reset(self) -> None:
        self._contiguity.reset()
        if self._ring is not None:
            self._ring.primed = False

    def score(self, windows: list[tuple[int, np.ndarray]]) -> Scores:
        follows = [self._contiguity.follows(start) for start, _ in windows]
        if self._ring is None or len(windows) > 1:
            if self._ring is not None:
                self._ring.primed = False  # the ring did not see these windows
            return self._engine.run(np.stack([window for _, window in windows]))
        return self._ring.score(windows[0][1], follows=follows[0])

    @property
    def batch_key(self) -> object:
        return self._engine

    def inputs(self, windows: list[tuple[int, np.ndarray]]) -> np.ndarray:
        """The model inputs of ``windows`` for a batch shared with other streams: the windows themselves."""
        for start, _ in windows:
            self._contiguity.follows(start)
        if self._ring is not None:
            self._ring.primed = False
        return np.stack([window for _, window in windows])

    def run_batch(self, inputs: np.ndarray) -> Scores:
        return self._engine.run(inputs)


class _DeviceWindowRing:
    """The current window, kept in device memory in one of two buffers that take turns.

    Each hop the ring-shift graph reads one buffer and the new samples (the only host-to-device copy) and
    writes the shifted window into the other; the model then reads that buffer where it lies.
    """

    def __init__(self, engine: Engine, *, hop_samples: int) -> None:
        self._engine = engine
        self._hop_samples = hop_samples
        self._buffers = _TwoBuffers(engine.ort, "ring_shift.onnx", providers=engine.providers,
                                    shape=[1, engine.info.window_samples], device=engine.device)
        self.primed = False

    def score(self, window: np.ndarray, *, follows: bool) -> Scores:
        window = np.ascontiguousarray(window, dtype=np.float32)
        if not self.primed or not follows or self._hop_samples >= window.size:
            self._buffers.current.update_inplace(window[None])  # a whole window crosses
            self.primed = True
        else:
            self.advance(window[-self._hop_samples :])
        return self._engine.run_bound(self._buffers.current)

    def advance(self, new: np.ndarray) -> None:
        self._buffers.shift(new[None])


class FrameStream:
    """The front end only on the frames each window adds; the window's frames kept in a ring."""

    shares_frames = True

    def __init__(self, parts: StreamingParts, scores_of: ScoresOf, *, hop_samples: int, device_ring: bool) -> None:
        streaming = parts.streaming
        self._hop_frames = parts.hop_frames(hop_samples)
        if self._hop_frames is None:
            raise ValueError(f"a hop of {hop_samples} samples is not whole frames of {streaming.frame_samples}")
        self._framing = dict(frame_samples=streaming.frame_samples, frame_span_samples=streaming.frame_span_samples,
                             frames_per_window=streaming.frames_per_window)
        self._contiguity = _Contiguity(hop_samples)
        self._parts, self._scores_of = parts, scores_of
        self.ring = (DeviceFrameRing if device_ring else HostFrameRing)(parts, scores_of)

    def reset(self) -> None:
        self._contiguity.reset()
        self.ring.reset()

    def score(self, windows: list[tuple[int, np.ndarray]]) -> Scores:
        return self.ring.advance(self._pieces(windows))

    def _pieces(self, windows: list[tuple[int, np.ndarray]]) -> list[np.ndarray]:
        pieces = []
        for start, window in windows:
            new_frames = self._hop_frames if self._contiguity.follows(start) else self._framing["frames_per_window"]
            pieces.append(new_frame_audio(window, new_frames=new_frames, **self._framing))
        return pieces

    @property
    def batch_key(self) -> object:
        return self._parts

    def inputs(self, windows: list[tuple[int, np.ndarray]]) -> np.ndarray:
        """The model inputs of ``windows`` for a batch shared with other streams: their log-mel windows."""
        if not isinstance(self.ring, HostFrameRing):
            raise ValueError("a stream whose frames stay in device memory is scored on its own; "
                             "open the engine with device_ring=False to batch streams together")
        return self.ring.logmels(self._pieces(windows))

    def run_batch(self, inputs: np.ndarray) -> Scores:
        return self._scores_of(self._parts.run(inputs))


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
        return self._scores_of(self._parts.run(self.logmels(new_audio)))

    def logmels(self, new_audio: list[np.ndarray]) -> np.ndarray:
        """The log-mel windows (k, frames, mels) that these pieces complete, in order; the ring moves on."""
        windows = []
        for frames in self._parts.logmel(new_audio):
            if len(frames) >= self._frames_per_window or self._window is None:
                self._window = frames[-self._frames_per_window :]
            else:
                self._window = np.concatenate([self._window[len(frames) :], frames])
            windows.append(self._window)
        return np.stack(windows)


class DeviceFrameRing:
    """One stream's current window of log-mel frames, kept in the provider's memory.

    Each window's new audio is the only host-to-device copy: the front end's frames stay on the device, the
    frame-shift graph writes the shifted window into the other of two buffers, and the network reads it there.
    """

    def __init__(self, parts: StreamingParts, scores_of: ScoresOf) -> None:
        streaming = parts.streaming
        self._buffers = _TwoBuffers(parts.ort, "frame_shift.onnx", providers=parts.providers,
                                    shape=[1, streaming.frames_per_window, streaming.n_mels], device=parts.device)
        self._parts = parts
        self._scores_of = scores_of
        self._device = parts.device

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
            self._buffers.shift(front.get_outputs()[0])
            network = parts.network.io_binding()
            network.bind_ortvalue_input(LOGMEL_NAME, self._buffers.current)
            for name in parts.info.outputs:
                network.bind_output(name, self._device)
            parts.network.run_with_iobinding(network)
            outputs.append(network.copy_outputs_to_cpu())
        return self._scores_of([np.concatenate(column) for column in zip(*outputs, strict=True)])


Job = tuple["FrameStream | WindowStream", list[tuple[int, np.ndarray]]]


def score_together(jobs: list[Job]) -> list[Scores]:
    """Each job's scores, from one model run per model: the windows of many streams, batched.

    Each stream's windows must come in its stream order, as for ``score``; the jobs of one batch may come in
    any order, and a stream may have several (they are taken in the order given)."""
    inputs = [stream.inputs(windows) for stream, windows in jobs]
    by_model: dict[int, list[int]] = {}
    for i, (stream, _) in enumerate(jobs):
        by_model.setdefault(id(stream.batch_key), []).append(i)
    scores: list[Scores | None] = [None] * len(jobs)
    for members in by_model.values():
        batch = jobs[members[0]][0].run_batch(np.concatenate([inputs[i] for i in members]))
        offset = 0
        for i in members:
            scores[i] = batch.rows(offset, offset + len(inputs[i]))
            offset += len(inputs[i])
    return scores
