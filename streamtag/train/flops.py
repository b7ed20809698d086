"""Multiply-add work of a streamtag ONNX model, counted from its graph.

A multiply-add counts as 2 FLOPs. The batch axis is fixed, ONNX shape inference gives every tensor a shape,
and each node is costed from the shapes of its inputs and outputs:

- ``conv``: Conv, ``2 * Cout * (Cin / group) * prod(kernel) * prod(output spatial) * N``, plus 1 per output
  element where it has a bias.
- ``matmul``: MatMul and Gemm, ``2 * M * K * N`` for every matrix of a broadcast batch, plus 1 per output
  element for Gemm's C (the heads' biases).
- ``gru``: GRU and LSTM, ``2 * gates * H * (input_size + H)`` per step, direction and sequence (3 gates for a
  GRU, 4 for an LSTM); the gates' elementwise work is left out, as it is about 1 % of the products.
- ``other``: elementwise ops 1 per output element, Softmax 5 per output element (the max, subtract, exp, sum
  and divide), BatchNormalization 2 (a scale and a shift once its statistics are folded), MaxPool and
  AveragePool ``prod(kernel)`` per output element, reductions 1 per input element (ReduceL2 2: square, add).

Data movement (Transpose, Reshape, Slice, Concat...) costs nothing. Nodes whose inputs are all constant are not
counted: ONNX Runtime folds them once when the session starts, so they are no per-window work. In the shipped
model that is the Fourier basis of the STFT, built in the graph from Constant nodes (about 4 MFLOP that would
otherwise be counted again for every window and would not scale with the batch).

The front end is the conv-STFT (the first Conv whose input has rank 3: the raw audio with a channel axis) and
everything the first BatchNormalization depends on (power, mel MatMul, log); the rest is the network.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError
from onnx import shape_inference

from streamtag.errors import ModelError

FLOPS_PER_MFLOP = 1e6
FLOPS_PER_MULTIPLY_ADD = 2
SOFTMAX_FLOPS_PER_ELEMENT = 5
BATCHNORM_FLOPS_PER_ELEMENT = 2
RECURRENT_GATES = {"GRU": 3, "LSTM": 4}
ELEMENTWISE = frozenset({
    "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Log", "Exp", "Relu", "Sigmoid", "Tanh", "Clip", "Neg", "Abs",
    "Max", "Min", "Reciprocal", "Erf", "LeakyRelu", "Softplus", "HardSigmoid", "Cos", "Sin", "Mod",
})
SOFTMAX = frozenset({"Softmax", "LogSoftmax"})
POOLS = frozenset({"MaxPool", "AveragePool"})
REDUCE_FLOPS_PER_INPUT = {
    "ReduceMean": 1, "ReduceMax": 1, "ReduceMin": 1, "ReduceSum": 1, "ReduceL2": 2, "ReduceSumSquare": 2,
    "GlobalAveragePool": 1, "GlobalMaxPool": 1,
}
DATA_MOVEMENT = frozenset({
    "Constant", "ConstantOfShape", "Identity", "Shape", "Size", "Gather", "Reshape", "Flatten", "Squeeze",
    "Unsqueeze", "Transpose", "Concat", "Slice", "Split", "Expand", "Tile", "Pad", "Cast", "Dropout",
})
COSTED = frozenset({"Conv", "MatMul", "Gemm", "BatchNormalization", *RECURRENT_GATES, *ELEMENTWISE, *SOFTMAX,
                    *POOLS, *REDUCE_FLOPS_PER_INPUT})
CATEGORIES = ("conv", "matmul", "gru", "other")


@dataclass(frozen=True)
class SkippedNode:
    """A node counted as 0 FLOPs because its cost could not be worked out."""

    node: str
    op_type: str
    reason: str


@dataclass(frozen=True)
class FlopCount:
    """FLOPs of one run of the graph on ``batch`` windows; `to_dict` reports MFLOP per window."""

    batch: int
    conv: int
    matmul: int
    gru: int
    other: int
    frontend: int  # the conv-STFT, power, mel and log, across the categories above
    stft: int  # the conv-STFT alone, part of `frontend`
    skipped: tuple[SkippedNode, ...] = ()

    @property
    def total(self) -> int:
        return self.conv + self.matmul + self.gru + self.other

    @property
    def network(self) -> int:
        return self.total - self.frontend

    @property
    def per_window_total(self) -> float:
        return self.total / self.batch

    def to_dict(self) -> dict:
        def mflop(flops: int) -> float:
            return flops / self.batch / FLOPS_PER_MFLOP

        parts = {"frontend": self.frontend, "stft": self.stft, "network": self.network, "total": self.total}
        categories = {name: getattr(self, name) for name in CATEGORIES}
        return {
            "batch": self.batch,
            "mflop_per_window": {name: mflop(flops) for name, flops in {**parts, **categories}.items()},
            "skipped": [asdict(node) for node in self.skipped],
        }


def count_flops(path: str | Path, *, batch: int = 1) -> FlopCount:
    """Load the ONNX model at ``path`` and count its FLOPs for a batch of ``batch`` windows."""
    try:
        model = onnx.load(str(path))
    except (OSError, DecodeError) as exc:
        raise ModelError(f"cannot read an ONNX model from {path} ({exc}); check the path") from exc
    return count_model_flops(model, batch=batch)


def count_model_flops(model: onnx.ModelProto, *, batch: int = 1) -> FlopCount:
    """Count the FLOPs of ``model`` for a batch of ``batch`` windows (see the module docstring)."""
    if batch < 1:
        raise ValueError(f"batch must be 1 or more, not {batch}")
    # data_prop carries the values of shape tensors (Shape -> Concat -> ConstantOfShape / Expand), without
    # which the GRU's initial state and the embedding's norm keep a symbolic batch.
    graph = shape_inference.infer_shapes(_with_batch(model, batch=batch), data_prop=True).graph
    shapes = _known_shapes(graph)
    constant = _constant_names(graph)
    frontend, stft = _frontend_nodes(graph, shapes)
    totals = dict.fromkeys(CATEGORIES, 0)
    frontend_flops = stft_flops = 0
    skipped = []
    for index, node in enumerate(graph.node):
        if node.op_type in DATA_MOVEMENT or node.output[0] in constant:  # no arithmetic, or folded at load
            continue
        cost = _node_cost(node, shapes)
        if cost is None:
            reason = "no inferred shape" if node.op_type in COSTED else "no cost rule for this op"
            skipped.append(SkippedNode(node.name or node.output[0], node.op_type, reason))
            continue
        category, flops = cost
        totals[category] += flops
        frontend_flops += flops if index in frontend else 0
        stft_flops += flops if index == stft else 0
    return FlopCount(batch=batch, **totals, frontend=frontend_flops, stft=stft_flops, skipped=tuple(skipped))


def _with_batch(model: onnx.ModelProto, *, batch: int) -> onnx.ModelProto:
    """A copy of ``model`` whose inputs' symbolic first axis, and that symbol wherever it appears, is ``batch``."""
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    graph = fixed.graph
    weights = {init.name for init in graph.initializer}
    symbols = set()
    for info in graph.input:
        dims = info.type.tensor_type.shape.dim
        if info.name in weights or not dims or dims[0].HasField("dim_value"):
            continue
        symbols.add(dims[0].dim_param)
        dims[0].dim_value = batch  # dim_value and dim_param are a oneof: this clears the symbol
    if not symbols and batch != 1:
        raise ModelError(f"the model has no dynamic batch axis, so it cannot be counted with batch={batch}; use 1")
    for info in (*graph.output, *graph.value_info):
        for dim in info.type.tensor_type.shape.dim:
            if dim.HasField("dim_param") and dim.dim_param in symbols:
                dim.dim_value = batch
    return fixed


def _known_shapes(graph: onnx.GraphProto) -> dict[str, tuple[int, ...]]:
    """The shape of every tensor whose dimensions are all known."""
    shapes = {}
    for info in (*graph.input, *graph.value_info, *graph.output):
        tensor = info.type.tensor_type
        if tensor.HasField("shape") and all(dim.HasField("dim_value") for dim in tensor.shape.dim):
            shapes[info.name] = tuple(dim.dim_value for dim in tensor.shape.dim)
    for init in graph.initializer:
        shapes[init.name] = tuple(init.dims)
    return shapes


def _constant_names(graph: onnx.GraphProto) -> set[str]:
    """Tensors that do not depend on a graph input: weights, Constant outputs and what is computed from them."""
    inputs = {info.name for info in graph.input}
    # An initializer that is also a graph input is a default the caller may override, so not a constant.
    constant = {init.name for init in graph.initializer if init.name not in inputs}
    for node in graph.node:  # ONNX keeps nodes in topological order
        if all(name in constant for name in node.input if name):
            constant.update(node.output)
    return constant


def _frontend_nodes(graph: onnx.GraphProto, shapes: dict[str, tuple[int, ...]]) -> tuple[set[int], int | None]:
    """Indices of the front end's nodes, and the index of the conv-STFT (None where there is none)."""
    stft = next(
        (i for i, node in enumerate(graph.node) if node.op_type == "Conv" and len(shapes.get(node.input[0], ())) == 3),
        None,
    )
    frontend = set() if stft is None else {stft}
    norm = next((node for node in graph.node if node.op_type == "BatchNormalization"), None)
    if norm is None:
        return frontend, stft
    producer = {name: i for i, node in enumerate(graph.node) for name in node.output}
    pending = [norm.input[0]]
    while pending:
        index = producer.get(pending.pop())
        if index is not None and index not in frontend:
            frontend.add(index)
            pending.extend(graph.node[index].input)
    return frontend, stft


def _node_cost(node: onnx.NodeProto, shapes: dict[str, tuple[int, ...]]) -> tuple[str, int] | None:
    """(category, FLOPs) of one node; None where its op has no rule or the shapes it needs are unknown."""
    op = node.op_type
    needed = [node.input[0], node.output[0]] + ([node.input[1]] if op in {"Conv", *RECURRENT_GATES} else [])
    if op not in COSTED or any(name not in shapes for name in needed):
        return None
    x, y = shapes[node.input[0]], shapes[node.output[0]]
    if op == "Conv":
        weight = shapes[node.input[1]]  # [Cout, Cin / group, *kernel]
        return "conv", FLOPS_PER_MULTIPLY_ADD * math.prod(weight) * math.prod(y[2:]) * y[0] + _bias_flops(node, y)
    if op == "MatMul":
        return "matmul", FLOPS_PER_MULTIPLY_ADD * math.prod(y) * x[-1]
    if op == "Gemm":
        inner = x[0] if _attribute(node, "transA", 0) else x[-1]
        return "matmul", FLOPS_PER_MULTIPLY_ADD * math.prod(y) * inner + _bias_flops(node, y)
    if op in RECURRENT_GATES:
        gates = RECURRENT_GATES[op]
        # W is [directions, gates * H, input_size]; hidden_size is optional in the spec
        hidden = _attribute(node, "hidden_size", shapes[node.input[1]][1] // gates)
        directions = 2 if _attribute(node, "direction", b"forward") == b"bidirectional" else 1
        steps = x[0] * x[1]  # seq_len * batch, in either layout
        return "gru", FLOPS_PER_MULTIPLY_ADD * gates * hidden * (x[2] + hidden) * steps * directions
    if op in SOFTMAX:
        return "other", SOFTMAX_FLOPS_PER_ELEMENT * math.prod(y)
    if op == "BatchNormalization":
        return "other", BATCHNORM_FLOPS_PER_ELEMENT * math.prod(y)
    if op in POOLS:
        return "other", math.prod(_attribute(node, "kernel_shape", [])) * math.prod(y)
    if op in REDUCE_FLOPS_PER_INPUT:
        return "other", REDUCE_FLOPS_PER_INPUT[op] * math.prod(x)
    return "other", math.prod(y)


def _bias_flops(node: onnx.NodeProto, output: tuple[int, ...]) -> int:
    """Conv's B and Gemm's C, the optional third input, are added once to every output element."""
    return math.prod(output) if len(node.input) > 2 and node.input[2] else 0


def _attribute(node: onnx.NodeProto, name: str, default):
    for attr in node.attribute:
        if attr.name == name:
            return onnx.helper.get_attribute_value(attr)
    return default
