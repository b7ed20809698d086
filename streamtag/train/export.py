"""PyTorch checkpoint -> single-file ONNX model with metadata, checked against PyTorch on real audio."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from streamtag import __version__
from streamtag.contract import FORMAT_VERSION, INPUT_NAME, LOGMEL_NAME, STREAMING_VERSION, WEIGHTS_KEY, output_names
from streamtag.errors import ModelError
from streamtag.train.checkpoint import strict_json
from streamtag.train.config import FrontendConfig
from streamtag.train.crnn import CRNN, CRNNEnsemble, ModelConfig
from streamtag.train.flops import count_model_flops
from streamtag.train.spectral import POWER_FLOOR, hann_window, mel_filterbank

OPSET = 17
# ONNX Runtime and PyTorch sum in different orders; 1e-4 on probabilities is far below any decision threshold.
PARITY_TOLERANCE = 1e-4


def load_checkpoint(path: Path) -> tuple[CRNN, dict]:
    """Rebuild the model of a training checkpoint (see streamtag.train.checkpoint) in eval mode."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        model = CRNN(ModelConfig.from_dict(state["model_config"]))
        model.load_state_dict(state["model"])
    except (OSError, KeyError, RuntimeError) as exc:
        raise ModelError(f"{path}: not a streamtag training checkpoint ({exc})") from exc
    return model.eval(), state


def summary_dim(model: CRNN | CRNNEnsemble) -> int:
    """The width of the ``summary`` output: the members' summaries side by side for an ensemble."""
    members = model.members if isinstance(model, CRNNEnsemble) else [model]
    return sum(member.summary_dim for member in members)


def outputs_of(model: CRNN | CRNNEnsemble) -> tuple[str, ...]:
    """The outputs ``model`` is exported with, in its order: every model has its CNN summary."""
    return output_names(format_of(model), summary=True)


def format_of(model: CRNN | CRNNEnsemble) -> str:
    """A model with tags is written in the current format; one without keeps format 1, whose contract it
    meets exactly, so streamtag releases that read only format 1 still load it."""
    return FORMAT_VERSION if model.config.tag_names else "1"


def metadata_for(
    model: CRNN | CRNNEnsemble, *, name: str, version: str, provenance: dict, hop_samples: int,
    streaming: dict | None = None,
) -> dict[str, str]:
    """``streaming``: what ``export_streaming_parts`` returned, or None for a model that runs every window in full."""
    config = model.config
    optional = {"tag_names": json.dumps(list(config.tag_names))} if config.tag_names else {}
    optional["summary_dim"] = str(summary_dim(model))
    if streaming is not None:
        optional["streaming"] = json.dumps(streaming, sort_keys=True)
    return {
        "streamtag.format": format_of(model),
        "name": name,
        "version": version,
        "labels": json.dumps(list(config.labels)),
        "mood_names": json.dumps(list(config.mood_names)),
        "sample_rate": str(config.frontend.sample_rate),
        "window_samples": str(config.window_samples),
        "hop_samples": str(hop_samples),
        "embedding_dim": str(config.embedding_dim),
        "n_fft": str(config.frontend.n_fft),
        "stft_hop_samples": str(config.frontend.hop_samples),
        "n_mels": str(config.frontend.n_mels),
        "provenance": json.dumps(strict_json(provenance), sort_keys=True, allow_nan=False),
        "streamtag_version": __version__,
        **optional,
    }


def weights_digest(proto: onnx.ModelProto) -> str:
    """The model's identity (contract.WEIGHTS_KEY): SHA-256 over every initialiser and Constant tensor, by name.

    Metadata, doc strings and the order of the graph's lists do not enter it, so re-stamping a model keeps its
    identity and any change to a weight gives a new one."""
    tensors = [(init.name, init) for init in proto.graph.initializer]
    tensors += [(node.output[0], attr.t) for node in proto.graph.node if node.op_type == "Constant"
                for attr in node.attribute if attr.name == "value"]
    digest = hashlib.sha256()
    for name, tensor in sorted(tensors, key=lambda item: item[0]):
        array = numpy_helper.to_array(tensor)
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def export_onnx(model: CRNN | CRNNEnsemble, out_path: Path, *, metadata: dict[str, str]) -> None:
    """Write ``model`` as a single-file ONNX graph with a dynamic batch axis, ``metadata`` and its identity."""
    out_path = Path(out_path)
    proto = _traced(model)
    del proto.metadata_props[:]
    for key, value in {**metadata, WEIGHTS_KEY: weights_digest(proto)}.items():
        proto.metadata_props.add(key=key, value=value)
    proto.doc_string = f"streamtag {metadata['name']} {metadata['version']}"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out_path))


def _traced(model: CRNN | CRNNEnsemble) -> onnx.ModelProto:
    """The whole model (raw audio in) as an ONNX graph with a dynamic batch axis, not yet written."""
    outputs = outputs_of(model)
    proto = _to_onnx(model, torch.zeros(2, model.config.window_samples), inputs={INPUT_NAME: {0: "batch"}},
                     outputs=dict.fromkeys(outputs, {0: "batch"}))
    _compute_fourier_kernels_in_graph(proto, model.config.frontend.n_fft)
    return proto


def _to_onnx(module: nn.Module, example: torch.Tensor, *, inputs: dict[str, dict], outputs: dict[str, dict]) -> onnx.ModelProto:
    """Trace ``module`` on ``example``; ``inputs``/``outputs``: name -> its dynamic axes."""
    buffer = io.BytesIO()
    # The TorchScript exporter keeps the GRU as one ONNX GRU node, which both CPU and CUDA providers run.
    torch.onnx.export(module.eval(), (example,), buffer, input_names=list(inputs), output_names=list(outputs),
                      dynamic_axes=inputs | outputs, opset_version=OPSET, dynamo=False)
    return onnx.load_from_string(buffer.getvalue())


def _compute_fourier_kernels_in_graph(proto: onnx.ModelProto, n_fft: int) -> None:
    """Replace the traced Fourier-kernel constant (4 MB at n_fft 1024) by the few ops that compute it.

    ONNX Runtime folds these ops into a constant when it loads the model, so inference costs the same while
    the file shrinks to the size of the learned weights. The phase index ``f * n mod n_fft`` is exact in
    float32, as in ``frontend.fourier_kernels``.
    """
    helper = onnx.helper
    shape = [2 * (1 + n_fft // 2), 1, n_fft]
    graph = proto.graph
    found = [(i, node) for i, node in enumerate(graph.node)
             if node.op_type == "Constant" and list(node.attribute[0].t.dims) == shape]
    if not found:
        raise ModelError("export: the front end's Fourier kernels were not found in the traced graph")
    position, node = found[0]
    out = node.output[0]
    n = np.arange(n_fft, dtype=np.float32)
    window = hann_window(n_fft).astype(np.float32)

    def const(name: str, value: np.ndarray):
        return helper.make_node("Constant", [], [f"{out}/{name}"], value=numpy_helper.from_array(value, f"{out}/{name}"))

    nodes = [
        const("n", n[None, :]),
        const("f", np.arange(1 + n_fft // 2, dtype=np.float32)[:, None]),
        const("size", np.array(n_fft, dtype=np.float32)),
        const("radians", np.array(2 * np.pi / n_fft, dtype=np.float32)),
        const("window", window[None, :]),
        const("axis", np.array([1], dtype=np.int64)),
        helper.make_node("Mul", [f"{out}/f", f"{out}/n"], [f"{out}/fn"]),
        helper.make_node("Mod", [f"{out}/fn", f"{out}/size"], [f"{out}/index"], fmod=1),
        helper.make_node("Mul", [f"{out}/index", f"{out}/radians"], [f"{out}/phase"]),
        helper.make_node("Cos", [f"{out}/phase"], [f"{out}/cos"]),
        helper.make_node("Sin", [f"{out}/phase"], [f"{out}/sin"]),
        helper.make_node("Neg", [f"{out}/sin"], [f"{out}/minus_sin"]),
        helper.make_node("Concat", [f"{out}/cos", f"{out}/minus_sin"], [f"{out}/basis"], axis=0),
        helper.make_node("Mul", [f"{out}/basis", f"{out}/window"], [f"{out}/windowed"]),
        helper.make_node("Unsqueeze", [f"{out}/windowed", f"{out}/axis"], [out]),
    ]
    graph.node.remove(node)
    for offset, new in enumerate(nodes):
        graph.node.insert(position + offset, new)


class _Network(nn.Module):
    """The model after its front end: a window of log-mel frames in, the model's outputs out."""

    def __init__(self, model: CRNN | CRNNEnsemble) -> None:
        super().__init__()
        self.model = model

    def forward(self, logmel: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.model.scores(logmel)


def part_path(model_path: Path, part: str) -> Path:
    """Where a streaming part of ``model_path`` is written: ``streamtag.onnx`` -> ``streamtag.network.onnx``."""
    return model_path.with_name(f"{model_path.stem}.{part}.onnx")


def export_streaming_parts(model: CRNN | CRNNEnsemble, model_path: Path) -> dict:
    """Write the network and both front ends beside ``model_path``; return the ``streaming`` metadata that
    names them (pass it to ``metadata_for``)."""
    model_path = Path(model_path)
    config = model.config
    frontend = config.frontend
    n_frames = frontend.n_frames(config.window_samples)
    batch = {0: "batch"}
    network = _to_onnx(_Network(model), torch.zeros(2, n_frames, frontend.n_mels), inputs={LOGMEL_NAME: batch},
                       outputs=dict.fromkeys(outputs_of(model), batch))
    conv = _to_onnx(model.frontend, torch.zeros(1, config.window_samples),
                    inputs={INPUT_NAME: {0: "batch", 1: "samples"}}, outputs={LOGMEL_NAME: {0: "batch", 1: "frames"}})
    _compute_fourier_kernels_in_graph(conv, frontend.n_fft)
    parts = {}
    for kind, proto, doc in (("network", network, "the network on a window of log-mel frames"),
                             ("frontend-conv", conv, "log-mel frames by a conv-STFT"),
                             ("frontend-stft", stft_frontend(frontend), "log-mel frames by ONNX STFT")):
        proto.doc_string = f"streamtag part: {doc}"
        onnx.checker.check_model(proto)
        path = part_path(model_path, kind)
        onnx.save(proto, str(path))
        parts[kind] = {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    count = count_model_flops(_traced(model), batch=1)
    return {
        "version": STREAMING_VERSION,
        "frame_samples": frontend.hop_samples,
        "frame_span_samples": frontend.n_fft,
        "frames_per_window": n_frames,
        "n_mels": frontend.n_mels,
        "network": parts["network"],
        "frontends": {"conv": parts["frontend-conv"], "stft": parts["frontend-stft"]},
        "mflop": {
            "window": round(count.total / 1e6, 3),
            "network": round(count.network / 1e6, 3),
            "frontend_frame": round(count.frontend / n_frames / 1e6, 4),
        },
    }


def stft_frontend(config: FrontendConfig) -> onnx.ModelProto:
    """The front end with ONNX's STFT op instead of the conv-STFT: the same frames (no centring, periodic
    Hann, Slaney mel, power in dB), audio (batch, samples) -> logmel (batch, frames, n_mels).

    ONNX Runtime's CPU provider runs STFT as an FFT, measured 1.3-1.6x faster than the conv-STFT on 1 to
    1,024 frames (docs/streaming-frontend.md); its CUDA provider has no STFT kernel, so CUDA keeps the conv."""
    helper = onnx.helper
    mel = mel_filterbank(sample_rate=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels,
                         fmin_hz=config.fmin_hz, fmax_hz=config.fmax_hz or config.sample_rate / 2)
    weights = [
        numpy_helper.from_array(mel.T.copy(), "mel_t"),  # (bins, n_mels)
        numpy_helper.from_array(hann_window(config.n_fft).astype(np.float32), "window"),
        numpy_helper.from_array(np.array(config.hop_samples, np.int64), "frame_step"),
        numpy_helper.from_array(np.array([-1], np.int64), "last_axis"),
        numpy_helper.from_array(np.array(POWER_FLOOR, np.float32), "floor"),
        numpy_helper.from_array(np.array(10.0 / np.log(10.0), np.float32), "db_per_neper"),
    ]
    nodes = [
        helper.make_node("Unsqueeze", [INPUT_NAME, "last_axis"], ["signal"]),  # (B, samples, 1): real input
        helper.make_node("STFT", ["signal", "frame_step", "window"], ["spectrum"], onesided=1),  # (B, T, bins, 2)
        helper.make_node("ReduceSumSquare", ["spectrum", "last_axis"], ["power"], keepdims=0),  # (B, T, bins)
        helper.make_node("MatMul", ["power", "mel_t"], ["mel"]),
        helper.make_node("Max", ["mel", "floor"], ["floored"]),
        helper.make_node("Log", ["floored"], ["nepers"]),
        helper.make_node("Mul", ["nepers", "db_per_neper"], [LOGMEL_NAME]),
    ]
    graph = helper.make_graph(
        nodes, "frontend_stft",
        [helper.make_tensor_value_info(INPUT_NAME, onnx.TensorProto.FLOAT, ["batch", "samples"])],
        [helper.make_tensor_value_info(LOGMEL_NAME, onnx.TensorProto.FLOAT, ["batch", "frames", config.n_mels])],
        initializer=weights,
    )
    # STFT is an opset 17 op; ReduceSumSquare takes its axes as an input from opset 18.
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="streamtag")
    proto.ir_version = 8  # readable by onnxruntime >= 1.13
    return proto


def to_fp16(src: Path, dst: Path) -> None:
    """Write an fp16 copy for GPUs: weights in half precision, inputs and outputs still float32.

    Only the large initialisers are cast, behind Cast nodes, which keeps the graph valid for every op
    (the GRU and BatchNorm included) without a converter dependency. The copy does not name the streaming
    parts, which hold fp32 weights: it computes every window whole. It keeps the fp32 model's identity
    (``weights_sha256``): its scores differ by fp16 rounding only, so a taste profile serves both.
    """
    proto = onnx.load(str(src))
    streaming = [prop for prop in proto.metadata_props if prop.key == "streaming"]
    for prop in streaming:
        proto.metadata_props.remove(prop)
    graph = proto.graph
    new_inits, casts = [], []
    for init in graph.initializer:
        array = numpy_helper.to_array(init)
        if array.dtype == np.float32 and array.size >= 1024:
            half_name = init.name + "__fp16"
            new_inits.append(numpy_helper.from_array(array.astype(np.float16), half_name))
            casts.append(onnx.helper.make_node("Cast", [half_name], [init.name], to=onnx.TensorProto.FLOAT))
        else:
            new_inits.append(init)
    del graph.initializer[:]
    graph.initializer.extend(new_inits)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(dst))


def streaming_max_abs_diff(model_path: Path, audio: np.ndarray) -> dict[str, float]:
    """For each front end: the largest absolute difference between the scores of ``audio``'s windows computed
    frame by frame (the streaming parts) and whole (the model), at the model's hop."""
    from streamtag.core.tagger import Tagger
    from streamtag.engine import Engine

    def scores(engine: Engine) -> np.ndarray:
        windows = Tagger(engine).feed(audio)
        return np.stack([np.concatenate([w.genre, w.moods, w.tags, w.embedding, [w.taste]]) for w in windows])

    whole = scores(Engine(model_path, provider="cpu", full_window=True))
    diffs = {}
    for kind in ("conv", "stft"):
        engine = Engine(model_path, provider="cpu", frontend=kind)
        if engine.parts is None:
            raise ModelError(f"export: {model_path}'s streaming parts did not load")
        diffs[kind] = float(np.abs(scores(engine) - whole).max())
    return diffs


def parity_max_abs_diff(model: CRNN | CRNNEnsemble, onnx_path: Path, windows: np.ndarray) -> float:
    """Largest absolute difference between ONNX Runtime (CPU) and PyTorch outputs on ``windows``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ort_out = session.run(list(outputs_of(model)), {INPUT_NAME: windows.astype(np.float32)})
    with torch.no_grad():
        torch_out = model(torch.from_numpy(windows.astype(np.float32)))
    return max(float(np.abs(a - b.numpy()).max()) for a, b in zip(ort_out, torch_out, strict=True))
