"""streamtag.train.flops: FLOPs counted from an ONNX graph, against counts worked out by hand."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from streamtag.errors import ModelError  # noqa: E402
from streamtag.train.flops import count_flops, count_model_flops  # noqa: E402
from tests.conftest import REPO, SHIPPED_MODEL  # noqa: E402

OPSET = 17


def weight(name: str, shape: list[int]):
    return numpy_helper.from_array(np.random.default_rng(0).standard_normal(shape).astype(np.float32), name)


def tiny_model(nodes, inputs, outputs, initializers=(), *, opsets=()) -> onnx.ModelProto:
    """A one-graph model; inputs and outputs are (name, shape) pairs, a str in a shape being a symbolic axis."""
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in inputs],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in outputs],
        list(initializers),
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET), *opsets])


def test_conv_counts_two_flops_per_multiply_add():
    # 10x12 input, 3x5 kernel, stride (1, 2), no padding: Hout = 10 - 3 + 1 = 8, Wout = (12 - 5) // 2 + 1 = 4
    model = tiny_model(
        [helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 5], strides=[1, 2])],
        [("x", [1, 3, 10, 12])], [("y", None)], [weight("w", [8, 3, 3, 5])],
    )
    count = count_model_flops(model)
    assert count.conv == 2 * 8 * 3 * 3 * 5 * 8 * 4 == 23_040
    assert count.total == count.conv
    assert count.matmul == count.gru == count.other == 0


def test_grouped_conv_with_bias_adds_one_flop_per_output_element():
    # 6 channels in 3 groups of 2, 3x3 kernel, padding 1: the output keeps the 7x7 plane
    model = tiny_model(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=3)],
        [("x", [1, 6, 7, 7])], [("y", None)], [weight("w", [6, 2, 3, 3]), weight("b", [6])],
    )
    assert count_model_flops(model).conv == 2 * 6 * 2 * 3 * 3 * 7 * 7 + 6 * 7 * 7 == 10_878


def test_batched_matmul_scales_with_the_batch():
    model = tiny_model(
        [helper.make_node("MatMul", ["a", "b"], ["y"])],
        [("a", ["batch", 4, 5])], [("y", ["batch", 4, 6])], [weight("b", [5, 6])],
    )
    count = count_model_flops(model, batch=3)
    assert count.matmul == 2 * 3 * 4 * 5 * 6 == 720
    assert count.per_window_total == 2 * 4 * 5 * 6
    assert count.to_dict()["mflop_per_window"]["matmul"] == pytest.approx(240e-6)


def test_matmul_counts_every_matrix_of_a_broadcast_batch():
    # (2, 1, 4, 5) x (3, 5, 6) -> (2, 3, 4, 6): six 4x5 by 5x6 products
    model = tiny_model(
        [helper.make_node("MatMul", ["a", "b"], ["y"])],
        [("a", [2, 1, 4, 5]), ("b", [3, 5, 6])], [("y", None)],
    )
    assert count_model_flops(model).matmul == 2 * 6 * 4 * 5 * 6 == 1_440


def test_gemm_with_transposed_weight_and_bias():
    model = tiny_model(
        [helper.make_node("Gemm", ["x", "w", "c"], ["y"], transB=1)],
        [("x", [2, 8])], [("y", None)], [weight("w", [3, 8]), weight("c", [3])],
    )
    assert count_model_flops(model).matmul == 2 * 2 * 8 * 3 + 2 * 3 == 102


def test_bidirectional_gru():
    hidden, inputs, steps = 4, 3, 5
    model = tiny_model(
        [helper.make_node("GRU", ["x", "w", "r"], ["y", "h"], hidden_size=hidden, direction="bidirectional")],
        [("x", [steps, 1, inputs])], [("y", None), ("h", None)],
        [weight("w", [2, 3 * hidden, inputs]), weight("r", [2, 3 * hidden, hidden])],
    )
    count = count_model_flops(model)
    assert count.gru == 2 * 3 * 4 * (3 + 4) * 5 * 2 == 1_680
    assert count.total == count.gru


def test_elementwise_pooling_and_reductions():
    # x: 1x2x4x4 = 32 elements
    model = tiny_model(
        [
            helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["norm"]),  # 2 x 32
            helper.make_node("Relu", ["norm"], ["relu"]),  # 32
            helper.make_node("MaxPool", ["relu"], ["pool"], kernel_shape=[2, 2], strides=[2, 2]),  # 4 x 8
            helper.make_node("ReduceMean", ["pool"], ["mean_out"], axes=[3], keepdims=0),  # 8 in: 1x2x2
            helper.make_node("Flatten", ["mean_out"], ["flat"]),  # no arithmetic: 1x4
            helper.make_node("Softmax", ["flat"], ["y"], axis=1),  # 5 x 4
        ],
        [("x", [1, 2, 4, 4])], [("y", None)],
        [weight("scale", [2]), weight("bias", [2]), weight("mean", [2]), weight("var", [2])],
    )
    assert count_model_flops(model).other == 64 + 32 + 32 + 8 + 20 == 156


def test_work_on_constants_alone_is_folded_and_not_counted():
    # ONNX Runtime computes `scaled` once when the session starts; only the Add runs for every window
    model = tiny_model(
        [
            helper.make_node("Constant", [], ["two"], value=numpy_helper.from_array(np.float32(2.0))),
            helper.make_node("Mul", ["k", "two"], ["scaled"]),
            helper.make_node("Add", ["x", "scaled"], ["y"]),
        ],
        [("x", ["batch", 10])], [("y", ["batch", 10])], [weight("k", [10])],
    )
    assert count_model_flops(model, batch=2).other == 2 * 10


def test_ops_without_shapes_are_counted_as_zero_and_listed():
    # Shape inference knows nothing of a custom domain's op, so the Relu after it has no shape either
    model = tiny_model(
        [
            helper.make_node("Relu", ["x"], ["known"], name="first_relu"),
            helper.make_node("Mystery", ["known"], ["unknown"], name="mystery", domain="example.custom"),
            helper.make_node("Relu", ["unknown"], ["y"], name="last_relu"),
        ],
        [("x", [1, 10])], [("y", None)], opsets=[helper.make_opsetid("example.custom", 1)],
    )
    count = count_model_flops(model)
    assert count.other == 10
    assert [(node.node, node.op_type, node.reason) for node in count.skipped] == [
        ("mystery", "Mystery", "no cost rule for this op"),
        ("last_relu", "Relu", "no inferred shape"),
    ]
    assert count.to_dict()["skipped"][1] == {"node": "last_relu", "op_type": "Relu", "reason": "no inferred shape"}


def test_a_static_batch_cannot_be_counted_as_another():
    model = tiny_model([helper.make_node("Relu", ["x"], ["y"])], [("x", [1, 10])], [("y", None)])
    with pytest.raises(ModelError, match="no dynamic batch axis"):
        count_model_flops(model, batch=2)


def test_unreadable_file_is_a_model_error(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"not a protobuf \xff\xff\xff")
    with pytest.raises(ModelError, match="cannot read"):
        count_flops(path)


@pytest.fixture(scope="module")
def shipped_counts():
    return count_flops(SHIPPED_MODEL), count_flops(SHIPPED_MODEL, batch=4)


def test_shipped_model_front_end_is_mostly_the_conv_stft(shipped_counts):
    count, _ = shipped_counts
    # 1026 output channels (real and imaginary parts of 1 + 1024 / 2 bins), one input channel, a 1024-sample
    # kernel, hop 512 over 66150 samples: (66150 - 1024) // 512 + 1 = 128 frames
    assert count.stft == 2 * 1026 * 1 * 1024 * 128 == 268_959_744
    assert count.skipped == ()
    assert 330e6 < count.total < 420e6
    assert 0.65 < count.frontend / count.total < 0.8
    assert count.frontend + count.network == count.total


def test_shipped_model_network_matches_its_architecture(shipped_counts):
    count, _ = shipped_counts
    # Conv 3x3 blocks of 16, 32, 64, 128 channels on 128x96, 64x48, 32x24, 16x12 planes, with biases
    blocks = [(16, 1, 128 * 96), (32, 16, 64 * 48), (64, 32, 32 * 24), (128, 64, 16 * 12)]
    assert count.conv == count.stft + sum(2 * out * inp * 9 * plane + out * plane for out, inp, plane in blocks)
    # the mel MatMul (128 frames x 513 bins x 96 bands), the 256 -> 64 embedding, the genre head on the CNN's
    # 256-number summary (4), the mood head on its 768 numbers per band beside the GRU's 256 pooled ones (9),
    # the taste head on the 4 genre probabilities (1) and the tag head on the embedding (50)
    assert count.matmul == (2 * 128 * 513 * 96 + (2 * 256 * 64 + 64) + (2 * 256 * 4 + 4) + (2 * 1024 * 9 + 9)
                            + (2 * 4 * 1 + 1) + (2 * 64 * 50 + 50))
    # 64 per direction over 16 steps of 128 features
    assert count.gru == 2 * 3 * 64 * (128 + 64) * 16 * 2


def test_shipped_model_costs_the_same_per_window_at_batch_4(shipped_counts):
    one, four = shipped_counts
    for field in ("conv", "matmul", "gru", "other", "total", "frontend", "stft", "network"):
        assert getattr(four, field) == 4 * getattr(one, field), field
    assert four.to_dict()["mflop_per_window"] == pytest.approx(one.to_dict()["mflop_per_window"])


def test_tool_prints_the_breakdown_as_json():
    result = subprocess.run([sys.executable, str(REPO / "tools/model_flops.py"), str(SHIPPED_MODEL), "--json"],
                            capture_output=True, text=True, check=True)
    report = json.loads(result.stdout)
    assert report["batch"] == 1
    assert report["mflop_per_window"]["stft"] == pytest.approx(268.959744)
