"""Build the ring-shift graphs that keep the live window on the GPU (``models/ring_shift.onnx`` and
``models/frame_shift.onnx``).

``shifted = concat(ring[:, len(new):], new)`` for a ring of any length and any number of new entries: samples
of a raw window ``(1, samples)``, or log-mel frames ``(1, frames, mels)`` for a model that streams frame by
frame. With both ring buffers bound in device memory, each hop copies only the new samples to the GPU; the
graphs are tiny and independent of the model, so they ship once beside it.
`python -m streamtag.train.ring_shift MODELS_DIR`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import onnx
from onnx import TensorProto, helper

OPSET = 17


# file name -> the names of the ring's axes after the batch axis (the shift runs along the first of them)
RINGS = {"ring_shift.onnx": ["window"], "frame_shift.onnx": ["frames", "mels"]}


def build_ring_shift(axes: list[str]) -> onnx.ModelProto:
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
        [helper.make_tensor_value_info("ring", TensorProto.FLOAT, [1, *axes]),
         helper.make_tensor_value_info("new", TensorProto.FLOAT, [1, "hop", *axes[1:]])],
        [helper.make_tensor_value_info("shifted", TensorProto.FLOAT, [1, *axes])],
        initializer=[one, two],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="streamtag")
    model.ir_version = 8  # readable by onnxruntime >= 1.13
    onnx.checker.check_model(model)
    return model


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "models")
    for name, axes in RINGS.items():
        onnx.save(build_ring_shift(axes), str(out / name))
