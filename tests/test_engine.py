"""Loading a model: the shipped one works; missing, corrupt or mismatched ones give clear errors."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from streamtag.engine import Engine, default_model_path
from streamtag.errors import ModelError
from tests.conftest import REPO

# The shipped model of format 1 (streamtag-crnn 1.0.0), kept to show that old models still load.
FORMAT_1_MODEL = REPO / "tests" / "fixtures" / "format1-streamtag-crnn-1.0.0.onnx"


def test_a_model_exported_before_identities_is_identified_by_its_file(tmp_path):
    """No weights_sha256 in its metadata: the file's SHA-256 stands in, so it cannot pass for another model of
    the same name and version; a stamp that is not a SHA-256 is refused."""
    import hashlib

    info = Engine(FORMAT_1_MODEL, provider="cpu").info
    assert info.weights_sha256 == hashlib.sha256(FORMAT_1_MODEL.read_bytes()).hexdigest()
    from streamtag.contract import parse_metadata

    meta = {"streamtag.format": "1", "name": "m", "version": "1", "labels": '["a"]', "mood_names": "[]",
            "sample_rate": "22050", "window_samples": "66150", "hop_samples": "33075", "embedding_dim": "64",
            "weights_sha256": "not-a-digest"}
    with pytest.raises(ModelError, match="weights_sha256 'not-a-digest' is not a SHA-256"):
        parse_metadata(FORMAT_1_MODEL, meta)


def test_default_model_is_the_shipped_one(model_path):
    assert default_model_path().resolve() == model_path.resolve()


def test_shipped_model_metadata(model_path):
    engine = Engine(provider="cpu")
    info = engine.info
    assert engine.provider == "cpu"
    assert info.labels == ("classical", "electronic", "pop", "rock")
    assert len(info.mood_names) == 9 and info.mood_names[4] == "calmness"
    assert (info.sample_rate, info.window_samples, info.window_s) == (22050, 66150, 3.0)
    assert info.provenance["dataset"] == "emotify"


def test_run_returns_named_outputs_with_batch_shapes(model_path, rng):
    engine = Engine(model_path, provider="cpu")
    windows = (0.1 * rng.standard_normal((3, 66150))).astype(np.float32)
    scores = engine.run(windows)
    assert scores.genre.shape == (3, 4) and scores.moods.shape == (3, 9)
    assert scores.taste.shape == (3,) and scores.embedding.shape == (3, engine.info.embedding_dim)
    np.testing.assert_allclose(scores.genre.sum(axis=1), 1.0, atol=1e-5)
    assert ((scores.moods >= 0) & (scores.moods <= 1)).all()


def test_wrong_window_length_is_refused(model_path):
    with pytest.raises(ValueError, match=r"\(B, 66150\)"):
        Engine(model_path, provider="cpu").run(np.zeros((1, 1000), np.float32))


def test_missing_model_file(tmp_path):
    with pytest.raises(ModelError, match="model file not found.*--model"):
        Engine(tmp_path / "nope.onnx")


def test_corrupt_model_file(tmp_path, model_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(model_path.read_bytes()[:5000])
    with pytest.raises(ModelError, match="cannot load model.*corrupt"):
        Engine(broken)


def _rewrite(model_path, tmp_path, **changes):
    proto = onnx.load(str(model_path))
    meta = {p.key: p.value for p in proto.metadata_props}
    for key, value in changes.items():
        if value is None:
            meta.pop(key)
        else:
            meta[key] = value
    del proto.metadata_props[:]
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    out = tmp_path / "changed.onnx"
    onnx.save(proto, str(out))
    return out


def test_model_without_streamtag_metadata(model_path, tmp_path):
    with pytest.raises(ModelError, match="not a streamtag model.*labels"):
        Engine(_rewrite(model_path, tmp_path, labels=None))


def test_model_of_a_newer_format(model_path, tmp_path):
    with pytest.raises(ModelError, match="format '3'.*reads formats 1, 2; upgrade streamtag"):
        Engine(_rewrite(model_path, tmp_path, **{"streamtag.format": "3"}))


def test_format_2_needs_tag_names_and_a_tags_output(model_path, tmp_path):
    """The shipped (format 2) model without its tag names is refused; a format-1 graph labelled as format 2
    is refused naming the missing ``tags`` output."""
    assert Engine(model_path).info.format_version == "2"
    with pytest.raises(ModelError, match="must name its tags"):
        Engine(_rewrite(model_path, tmp_path, tag_names=None))
    with pytest.raises(ModelError, match="outputs genre, taste, moods, embedding, tags; found"):
        Engine(_rewrite(FORMAT_1_MODEL, tmp_path, **{"streamtag.format": "2", "tag_names": json.dumps(["rock"])}))


def test_tag_names_must_match_the_tags_output(model_path, tmp_path):
    with pytest.raises(ModelError, match="'tags' has shape.*\\(batch, 2\\)"):
        Engine(_rewrite(model_path, tmp_path, tag_names=json.dumps(["rock", "pop"])))


def test_metadata_that_does_not_match_the_graph(model_path, tmp_path):
    with pytest.raises(ModelError, match="'genre' has shape.*\\(batch, 5\\)"):
        Engine(_rewrite(model_path, tmp_path, labels=json.dumps(["a", "b", "c", "d", "e"])))
    with pytest.raises(ModelError, match="'audio' has shape"):
        Engine(_rewrite(model_path, tmp_path, window_samples="44100"))


def test_cuda_asked_for_where_it_cannot_load_is_an_error_not_a_fallback(model_path):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers() and _has_gpu():
        pytest.skip("a GPU is present: the CUDA provider loads here")
    with pytest.raises(ModelError, match="CUDA.*--provider cpu"):
        Engine(model_path, provider="cuda")


def test_unknown_provider(model_path):
    with pytest.raises(ModelError, match="unknown provider 'tpu'"):
        Engine(model_path, provider="tpu")


def _has_gpu() -> bool:
    from pathlib import Path

    return Path("/proc/driver/nvidia/version").exists()


def test_device_ring_gives_the_same_scores_while_copying_only_new_samples(model_path, data_dir):
    """The CUDA path's ring buffer, exercised with CPU-resident OrtValues (the same IOBinding calls)."""
    from streamtag.audio import load_audio
    from streamtag.core.tagger import Tagger

    audio = load_audio(data_dir / "gtzan/samples/disco.00000.flac", sample_rate=22050)[: 22050 * 9]
    plain = Tagger(Engine(model_path, provider="cpu"), hop_samples=11025, batch_size=1)
    ring_engine = Engine(model_path, provider="cpu", device_ring=True)
    ring = Tagger(ring_engine, hop_samples=11025, batch_size=1)
    sent = []
    device_ring = ring._stream._ring
    advance = device_ring.advance
    device_ring.advance = lambda new: (sent.append(len(new)), advance(new))[1]
    a = [w for i in range(0, audio.size, 700) for w in plain.feed(audio[i : i + 700])]
    b = [w for i in range(0, audio.size, 700) for w in ring.feed(audio[i : i + 700])]
    assert len(a) == len(b) == 1 + (audio.size - 66150) // 11025
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.genre, y.genre)
        np.testing.assert_array_equal(x.embedding, y.embedding)
    assert sent == [11025] * (len(b) - 1)  # after the first window, one hop of samples per window
    ring.reset()  # a new stream: the first window is copied whole again
    [first, *_] = ring.feed(audio[22050:])
    np.testing.assert_allclose(first.genre, Engine(model_path, provider="cpu").run(audio[None, 22050 : 22050 + 66150]).genre[0], atol=1e-6)


def test_ring_shift_graph_shifts_and_matches_its_builder():
    import onnxruntime as ort

    from streamtag.streams import ring_shift_path

    session = ort.InferenceSession(str(ring_shift_path()), providers=["CPUExecutionProvider"])
    ring = np.arange(8, dtype=np.float32)[None]
    new = np.array([[10, 11, 12]], np.float32)
    assert session.run(None, {"ring": ring, "new": new})[0].tolist() == [[3, 4, 5, 6, 7, 10, 11, 12]]
    frames = ort.InferenceSession(str(ring_shift_path("frame_shift.onnx")), providers=["CPUExecutionProvider"])
    ring = np.arange(12, dtype=np.float32).reshape(1, 4, 3)  # 4 frames of 3 mels
    new = -np.arange(6, dtype=np.float32).reshape(1, 2, 3)
    assert frames.run(None, {"ring": ring, "new": new})[0].tolist() == [[[6, 7, 8], [9, 10, 11], [0, -1, -2], [-3, -4, -5]]]
    builder = pytest.importorskip("streamtag.train.ring_shift")
    for name, axes in builder.RINGS.items():
        assert onnx.load(str(ring_shift_path(name))).graph == builder.build_ring_shift(axes).graph


def test_device_ring_after_a_batch_of_several_windows(model_path, data_dir):
    """A multi-window batch bypasses the ring; the next single window must not shift a stale ring."""
    from streamtag.audio import load_audio
    from streamtag.core.tagger import Tagger

    audio = load_audio(data_dir / "gtzan/samples/disco.00000.flac", sample_rate=22050)[: 22050 * 8]
    hop = 11025
    chunks = [audio[:66150], audio[66150 : 66150 + 2 * hop], audio[66150 + 2 * hop : 66150 + 3 * hop]]
    plain = Tagger(Engine(model_path, provider="cpu"), hop_samples=hop)
    ring = Tagger(Engine(model_path, provider="cpu", device_ring=True), hop_samples=hop)
    a = [w for c in chunks for w in plain.feed(c)]
    b = [w for c in chunks for w in ring.feed(c)]
    assert len(a) == len(b) == 4
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x.genre, y.genre, atol=1e-6)
        np.testing.assert_allclose(x.embedding, y.embedding, atol=1e-6)


def test_the_content_head_beside_the_model_is_used_and_one_for_other_weights_is_not(model_path, tmp_path, caplog):
    """The shipped model carries its CNN summary and a content head fitted to it; a copy of the model whose
    head names other weights runs without one, and says how to fix it."""
    import shutil

    engine = Engine(model_path, provider="cpu")
    assert engine.info.summary_dim == 256 and engine.content_head is not None
    audio = np.zeros((1, engine.info.window_samples), np.float32)
    audio[0, ::100] = 0.5
    scores = engine.run(audio)
    assert scores.summary.shape == (1, 256) and scores.content.shape == (1, 3)
    np.testing.assert_allclose(scores.content.sum(axis=1), 1.0, atol=1e-5)
    for path in model_path.parent.glob(f"{model_path.stem}.*"):
        shutil.copy(path, tmp_path / path.name)
    head = tmp_path / f"{model_path.stem}.content.json"
    document = json.loads(head.read_text())
    head.write_text(json.dumps({**document, "model_weights_sha256": "0" * 64}))
    with caplog.at_level("WARNING"):
        other = Engine(tmp_path / model_path.name, provider="cpu")
    assert other.content_head is None and other.run(audio).content is None
    assert "fitted for another model" in caplog.text and "tools/fit_content_head.py" in caplog.text
