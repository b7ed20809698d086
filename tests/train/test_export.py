"""Export: an ONNX model with metadata and its streaming parts, equal to PyTorch on real audio."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from streamtag.engine import Engine  # noqa: E402
from streamtag.train.checkpoint import CHECKPOINT_BEST  # noqa: E402
from tests.conftest import REPO  # noqa: E402


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    out_dir, _ = tiny_run
    target = tmp_path_factory.mktemp("export") / "tiny.onnx"
    fp16 = target.with_suffix(".fp16.onnx")
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "export_onnx.py"), str(out_dir / CHECKPOINT_BEST), str(target),
         "--version", "0.0.1", "--fp16", str(fp16)],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    return target, fp16, result.stdout


def test_export_reports_parity_below_tolerance(exported):
    _, _, stdout = exported
    diff = float(stdout.split("max abs difference ")[1].split()[0])
    assert diff < 1e-4
    streamed = stdout.split("frame by frame vs whole windows, each front end: max abs difference ")[1].split()
    assert streamed[0] == "conv" and streamed[2] == "stft"
    assert float(streamed[1].rstrip(",")) < 1e-4 and float(streamed[3]) < 1e-4


def test_export_writes_streaming_parts_the_model_names(exported):
    """Three parts beside the model, each named with its SHA-256; the network part costs what the model's
    network does, and the front end's cost per frame is the model's front end over its 128 frames."""
    import hashlib

    from streamtag.train.flops import count_flops

    target, _, _ = exported
    streaming = json.loads({p.key: p.value for p in onnx.load(str(target)).metadata_props}["streaming"])
    assert (streaming["frame_samples"], streaming["frame_span_samples"], streaming["frames_per_window"]) == (512, 1024, 128)
    parts = [streaming["network"], *streaming["frontends"].values()]
    assert sorted(p["file"] for p in parts) == ["tiny.frontend-conv.onnx", "tiny.frontend-stft.onnx", "tiny.network.onnx"]
    for part in parts:
        assert hashlib.sha256((target.parent / part["file"]).read_bytes()).hexdigest() == part["sha256"]
    whole = count_flops(target)
    network = count_flops(target.parent / streaming["network"]["file"])
    assert streaming["mflop"]["network"] == pytest.approx(whole.network / 1e6, abs=1e-3)
    assert network.total == whole.network
    assert streaming["mflop"]["frontend_frame"] == pytest.approx(whole.frontend / 128 / 1e6, abs=1e-4)
    assert Engine(target, provider="cpu", threads=1).parts.frontend_kind == "stft"  # one thread: the FFT
    assert Engine(target, provider="cpu", threads=2).parts.frontend_kind == "conv"  # more: the threaded GEMM


def test_exported_metadata_describes_the_model(exported):
    target, _, _ = exported
    meta = {p.key: p.value for p in onnx.load(str(target)).metadata_props}
    assert json.loads(meta["labels"]) == ["classical", "electronic", "pop", "rock"]
    assert json.loads(meta["mood_names"])[0] == "amazement" and len(json.loads(meta["mood_names"])) == 9
    # 1.5 s rounded to whole frames of 512 samples: 65 frames
    assert (meta["sample_rate"], meta["window_samples"], meta["hop_samples"]) == ("22050", "66150", "33280")
    assert meta["version"] == "0.0.1"
    assert json.loads(meta["provenance"])["dataset"] == "emotify-tiny"


def test_metadata_of_a_run_without_valid_metrics_is_strict_json():
    from streamtag.train.crnn import CRNN, ModelConfig
    from streamtag.train.export import metadata_for

    model = CRNN(ModelConfig(labels=("a", "b")))
    provenance = {"fit_on": "train+valid", "members": [{"valid_metrics": {"valid_accuracy": float("nan"), "epoch": 40}}]}
    meta = metadata_for(model, name="m", version="1", provenance=provenance, hop_samples=33075)

    def refuse(constant):
        raise ValueError(constant)

    parsed = json.loads(meta["provenance"], parse_constant=refuse)  # NaN is not JSON: other languages choke on it
    assert parsed["members"][0]["valid_metrics"] == {"valid_accuracy": None, "epoch": 40}


def test_exported_model_has_a_dynamic_batch_axis(exported, data_dir):
    from streamtag.audio import load_audio

    target, _, _ = exported
    engine = Engine(target, provider="cpu")
    audio = load_audio(data_dir / "gtzan/samples/disco.00000.flac", sample_rate=22050)
    windows = np.stack([audio[i * 66150 : (i + 1) * 66150] for i in range(3)])
    batched = engine.run(windows)
    for i in range(3):
        single = engine.run(windows[i : i + 1])
        np.testing.assert_allclose(single.genre[0], batched.genre[i], atol=1e-5)
    assert batched.genre.shape == (3, 4) and batched.embedding.shape == (3, 64)
    np.testing.assert_allclose(batched.genre.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(batched.embedding, axis=1), 1.0, atol=1e-4)


def test_fp16_copy_agrees_with_fp32(exported, data_dir):
    from streamtag.audio import load_audio

    target, fp16, _ = exported
    audio = load_audio(data_dir / "gtzan/samples/metal.00000.flac", sample_rate=22050)[None, :66150]
    full, half = Engine(target, provider="cpu").run(audio), Engine(fp16, provider="cpu").run(audio)
    assert Engine(fp16, provider="cpu").parts is None  # its parts would be fp32: every window whole
    np.testing.assert_allclose(half.genre, full.genre, atol=5e-3)
    assert fp16.stat().st_size < 0.7 * target.stat().st_size


def test_export_needs_a_version(tiny_run, tmp_path):
    """Without --version every model used to be stamped streamtag-crnn 1.0.0, the shipped model's identity."""
    out_dir, _ = tiny_run
    result = subprocess.run([sys.executable, str(REPO / "tools" / "export_onnx.py"), str(out_dir / CHECKPOINT_BEST),
                             str(tmp_path / "m.onnx")], capture_output=True, text=True, check=False)
    assert result.returncode == 2 and "--version" in result.stderr
    assert not (tmp_path / "m.onnx").exists()


def test_a_models_identity_is_the_digest_of_its_weights(exported, tiny_run, tmp_path, model_path):
    """Export stamps weights_sha256 from the weights themselves: the fp16 copy keeps it (same network), the same
    checkpoint exported under another version keeps it, a weight changed gives another, and the shipped
    model's stamp is the digest of the weights it holds."""
    from streamtag.contract import WEIGHTS_KEY
    from streamtag.train.export import weights_digest

    target, fp16, _ = exported
    stamped = Engine(target, provider="cpu").info.weights_sha256
    assert stamped == weights_digest(onnx.load(str(target))) and len(stamped) == 64
    assert Engine(fp16, provider="cpu").info.weights_sha256 == stamped
    out_dir, _ = tiny_run
    again = tmp_path / "again.onnx"
    subprocess.run([sys.executable, str(REPO / "tools" / "export_onnx.py"), str(out_dir / CHECKPOINT_BEST), str(again),
                    "--version", "9.9.9"], capture_output=True, check=True)
    assert Engine(again, provider="cpu").info.weights_sha256 == stamped
    proto = onnx.load(str(target))
    first = proto.graph.initializer[0]
    weights = onnx.numpy_helper.to_array(first).copy()
    weights.flat[0] += 1e-3
    first.CopyFrom(onnx.numpy_helper.from_array(weights, first.name))
    assert weights_digest(proto) != stamped
    shipped = onnx.load(str(model_path))
    assert {p.key: p.value for p in shipped.metadata_props}[WEIGHTS_KEY] == weights_digest(shipped)
