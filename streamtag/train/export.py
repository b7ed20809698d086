"""PyTorch checkpoint -> single-file ONNX model with metadata, checked against PyTorch on real audio."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from streamtag import __version__
from streamtag.contract import FORMAT_VERSION, INPUT_NAME, output_names
from streamtag.errors import ModelError
from streamtag.train.crnn import CRNN, CRNNEnsemble, ModelConfig
from streamtag.train.loop import strict_json

OPSET = 17
# ONNX Runtime and PyTorch sum in different orders; 1e-4 on probabilities is far below any decision threshold.
PARITY_TOLERANCE = 1e-4


@dataclass(frozen=True)
class ExportReport:
    path: Path
    max_abs_diff: float
    fp16_path: Path | None


def load_checkpoint(path: Path) -> tuple[CRNN, dict]:
    """Rebuild the model of a training checkpoint (see streamtag.train.loop) in eval mode."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        model = CRNN(ModelConfig.from_dict(state["model_config"]))
        model.load_state_dict(state["model"])
    except (OSError, KeyError, RuntimeError) as exc:
        raise ModelError(f"{path}: not a streamtag training checkpoint ({exc})") from exc
    return model.eval(), state


def format_of(model: CRNN | CRNNEnsemble) -> str:
    """A model with tags is written in the current format; one without keeps format 1, whose contract it
    meets exactly, so streamtag releases that read only format 1 still load it."""
    return FORMAT_VERSION if model.config.tag_names else "1"


def metadata_for(model: CRNN | CRNNEnsemble, *, name: str, version: str, provenance: dict, hop_samples: int) -> dict[str, str]:
    config = model.config
    tags = {"tag_names": json.dumps(list(config.tag_names))} if config.tag_names else {}
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
        **tags,
    }


def export_onnx(model: CRNN | CRNNEnsemble, out_path: Path, *, metadata: dict[str, str]) -> None:
    """Write ``model`` as a single-file ONNX graph with a dynamic batch axis and ``metadata``."""
    out_path = Path(out_path)
    example = torch.zeros(2, model.config.window_samples)
    outputs = output_names(format_of(model))
    dynamic = {INPUT_NAME: {0: "batch"}} | {name: {0: "batch"} for name in outputs}
    # The TorchScript exporter keeps the GRU as one ONNX GRU node, which both CPU and CUDA providers run.
    torch.onnx.export(
        model.eval(),
        (example,),
        str(out_path),
        input_names=[INPUT_NAME],
        output_names=list(outputs),
        dynamic_axes=dynamic,
        opset_version=OPSET,
        dynamo=False,
    )
    proto = onnx.load(str(out_path))
    _compute_fourier_kernels_in_graph(proto, model.config.frontend.n_fft)
    del proto.metadata_props[:]
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    proto.doc_string = f"streamtag {metadata['name']} {metadata['version']}"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out_path))


def _compute_fourier_kernels_in_graph(proto: onnx.ModelProto, n_fft: int) -> None:
    """Replace the traced Fourier-kernel constant (4 MB at n_fft 1024) by the few ops that compute it.

    ONNX Runtime folds these ops into a constant when it loads the model, so inference costs the same while
    the file shrinks to the size of the learned weights. The phase index ``f * n mod n_fft`` is exact in
    float32, as in ``frontend.fourier_kernels``.
    """
    helper = onnx.helper
    shape = [2 * (1 + n_fft // 2), 1, n_fft]
    graph = proto.graph
    for position, node in enumerate(graph.node):
        if node.op_type == "Constant" and list(node.attribute[0].t.dims) == shape:
            break
    else:
        raise ModelError("export: the front end's Fourier kernels were not found in the traced graph")
    out = node.output[0]
    n = np.arange(n_fft, dtype=np.float32)
    window = (0.5 - 0.5 * np.cos(2 * np.pi * n.astype(np.float64) / n_fft)).astype(np.float32)

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


def to_fp16(src: Path, dst: Path) -> None:
    """Write an fp16 copy for GPUs: weights in half precision, inputs and outputs still float32.

    Only the large initialisers are cast, behind Cast nodes, which keeps the graph valid for every op
    (the GRU and BatchNorm included) without a converter dependency.
    """
    proto = onnx.load(str(src))
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


def parity_max_abs_diff(model: CRNN | CRNNEnsemble, onnx_path: Path, windows: np.ndarray) -> float:
    """Largest absolute difference between ONNX Runtime (CPU) and PyTorch outputs on ``windows``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ort_out = session.run(list(output_names(format_of(model))), {INPUT_NAME: windows.astype(np.float32)})
    with torch.no_grad():
        torch_out = model(torch.from_numpy(windows.astype(np.float32)))
    return max(float(np.abs(a - b.numpy()).max()) for a, b in zip(ort_out, torch_out, strict=True))
