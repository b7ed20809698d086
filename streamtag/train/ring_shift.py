"""Build the ring-shift graph that keeps the live window on the GPU (``models/ring_shift.onnx``).

``shifted = concat(ring[:, len(new):], new)`` for a ring of any length and any number of new samples. With
both ring buffers bound in device memory, each hop copies only the new samples to the GPU; the graph is tiny
and independent of the model, so it ships once beside it. `python -m streamtag.train.ring_shift OUT`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import onnx
from onnx import TensorProto, helper

OPSET = 17


def build_ring_shift() -> onnx.ModelProto:
    one = helper.make_tensor("one", TensorProto.INT64, [1], [1])
    two = helper.make_tensor("two", TensorProto.INT64, [1], [2])
    nodes = [
        helper.make_node("Shape", ["new"], ["new_shape"]),
        helper.make_node("Shape", ["ring"], ["ring_shape"]),
        helper.make_node("Slice", ["new_shape", "one", "two"], ["n_new"]),  # new.shape[1], as [1]
        helper.make_node("Slice", ["ring_shape", "one", "two"], ["n_ring"]),
        helper.make_node("Slice", ["ring", "n_new", "n_ring", "one"], ["kept"]),  # ring[:, n_new:]
        helper.make_node("Concat", ["kept", "new"], ["shifted"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "ring_shift",
        [helper.make_tensor_value_info("ring", TensorProto.FLOAT, [1, "window"]),
         helper.make_tensor_value_info("new", TensorProto.FLOAT, [1, "hop"])],
        [helper.make_tensor_value_info("shifted", TensorProto.FLOAT, [1, "window"])],
        initializer=[one, two],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="streamtag")
    model.ir_version = 8  # readable by onnxruntime >= 1.13
    onnx.checker.check_model(model)
    return model


if __name__ == "__main__":
    onnx.save(build_ring_shift(), sys.argv[1] if len(sys.argv) > 1 else str(Path("models") / "ring_shift.onnx"))
