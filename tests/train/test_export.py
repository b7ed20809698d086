"""Export: a single-file ONNX model with metadata, equal to PyTorch on real audio."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from streamtag.engine import Engine  # noqa: E402
from streamtag.train.loop import CHECKPOINT_BEST  # noqa: E402
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


def test_exported_metadata_describes_the_model(exported):
    target, _, _ = exported
    meta = {p.key: p.value for p in onnx.load(str(target)).metadata_props}
    assert json.loads(meta["labels"]) == ["classical", "electronic", "pop", "rock"]
    assert json.loads(meta["mood_names"])[0] == "amazement" and len(json.loads(meta["mood_names"])) == 9
    assert (meta["sample_rate"], meta["window_samples"], meta["hop_samples"]) == ("22050", "66150", "33075")
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
    np.testing.assert_allclose(half.genre, full.genre, atol=5e-3)
    assert fp16.stat().st_size < 0.7 * target.stat().st_size


def test_export_needs_a_version(tiny_run, tmp_path):
    """Without --version every model used to be stamped streamtag-crnn 1.0.0, the shipped model's identity."""
    out_dir, _ = tiny_run
    result = subprocess.run([sys.executable, str(REPO / "tools" / "export_onnx.py"), str(out_dir / CHECKPOINT_BEST),
                             str(tmp_path / "m.onnx")], capture_output=True, text=True, check=False)
    assert result.returncode == 2 and "--version" in result.stderr
    assert not (tmp_path / "m.onnx").exists()
