"""Frames computed once per stream: the same scores as whole windows, and clear errors for broken parts."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest

from streamtag.audio import load_audio
from streamtag.core.tagger import Tagger
from streamtag.engine import Engine
from streamtag.errors import ModelError
from tests.test_engine import FORMAT_1_MODEL

TOLERANCE = 1e-4  # the bar: the streaming path equals the whole-window path within 1e-4
FRAME = 512
RECORDINGS = ("gtzan/samples/metal.00000.flac", "gtzan/samples/classical.00000.flac", "cc-audio/Kevin_MacLeod_-_Vibe_Ace.ogg")


@pytest.fixture(scope="module")
def whole(model_path):
    return Engine(model_path, provider="cpu", full_window=True)


@pytest.fixture(scope="module", params=["stft", "conv"])
def streamed(model_path, request):
    return Engine(model_path, provider="cpu", frontend=request.param)


@pytest.fixture(scope="module")
def recordings(data_dir):
    return [load_audio(data_dir / name, sample_rate=22050)[: 22050 * 14] for name in RECORDINGS]


def _scores(windows):
    return np.stack([np.concatenate([w.genre, w.moods, w.tags, w.embedding, [w.taste, w.level_dbfs]]) for w in windows])


def _feed(tagger, audio, chunk):
    return [w for i in range(0, audio.size, chunk) for w in tagger.feed(audio[i : i + chunk])] + tagger.finish()


@pytest.mark.parametrize("hop_frames", [1, 22, 65, 128])
def test_frames_once_equals_whole_windows_on_real_recordings(whole, streamed, recordings, hop_frames):
    """Live (1024-sample chunks, batch 1) and offline (the whole file, batches of 8), at hops of 1, 22 (the live
    default), 65 (the offline default) and 128 frames (a hop as long as the window's frames)."""
    hop = hop_frames * FRAME
    for audio in recordings:
        reference = _scores(_feed(Tagger(whole, hop_samples=hop, batch_size=8), audio, audio.size))
        assert len(reference) == 1 + (audio.size - 66150) // hop
        for chunk, batch in ((1024, 1), (audio.size, 8)):
            tagger = Tagger(streamed, hop_samples=hop, batch_size=batch)
            assert tagger.shares_frames
            got = _scores(_feed(tagger, audio, chunk))
            assert got.shape == reference.shape
            assert np.abs(got - reference).max() < TOLERANCE, (hop_frames, chunk)


def test_a_gap_or_a_new_stream_brings_a_whole_window_of_frames(streamed, whole, recordings):
    """After ``reset`` the next window's frames all come from its own samples, not from the last stream's."""
    audio = recordings[0]
    tagger = Tagger(streamed, hop_samples=22 * FRAME, batch_size=1)
    tagger.feed(audio[: 22050 * 5])
    tagger.reset()
    [first, *_] = tagger.feed(audio[22050 * 7 :])
    direct = whole.run(audio[None, 22050 * 7 : 22050 * 7 + 66150])
    assert np.abs(first.genre - direct.genre[0]).max() < TOLERANCE


def test_which_hops_share_frames(model_path, streamed, whole):
    assert Tagger(streamed, hop_samples=22 * FRAME).shares_frames
    assert not Tagger(streamed, hop_samples=11025).shares_frames  # not whole frames: every window whole
    assert not Tagger(streamed, hop_samples=129 * FRAME).shares_frames  # longer than the window's frames
    assert not Tagger(whole, hop_samples=22 * FRAME).shares_frames
    assert not Tagger(Engine(FORMAT_1_MODEL, provider="cpu"), hop_samples=22 * FRAME).shares_frames


def test_hops_are_rounded_to_whole_frames_for_a_streaming_model(streamed):
    info = streamed.info
    assert info.hop_samples_for(0.5) == 22 * FRAME  # 0.511 s
    assert info.hop_samples_for(None) == info.hop_samples == 65 * FRAME
    assert info.hop_samples_for(0.001) == FRAME  # at least one frame
    old = Engine(FORMAT_1_MODEL, provider="cpu").info
    assert old.streaming is None and old.hop_samples_for(0.5) == 11025
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ModelError, match=r"hop \(--hop\) must be a positive number of seconds"):
            info.hop_samples_for(bad)


def test_device_frame_ring_copies_only_new_samples(model_path, whole, recordings):
    """The CUDA path's frame ring, exercised with CPU-resident OrtValues (the same IOBinding calls)."""
    engine = Engine(model_path, provider="cpu", device_ring=True)
    tagger = Tagger(engine, hop_samples=22 * FRAME, batch_size=1)
    ring = tagger._stream.ring
    sent = []
    advance = ring.advance
    ring.advance = lambda audio: (sent.extend(len(a) for a in audio), advance(audio))[1]
    audio = recordings[2]
    got = _scores(_feed(tagger, audio, 1024))
    reference = _scores(_feed(Tagger(whole, hop_samples=22 * FRAME, batch_size=1), audio, 1024))
    assert np.abs(got - reference).max() < TOLERANCE
    # the first window's 128 frames, then 22 new frames (21 hops of 512 + one frame of 1024 samples) a window
    assert sent == [127 * FRAME + 1024] + [21 * FRAME + 1024] * (len(reference) - 1)


def _copy_model(model_path, tmp_path):
    for path in model_path.parent.glob(f"{model_path.stem}.*onnx"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path / model_path.name


def _rewrite_streaming(path, change):
    proto = onnx.load(str(path))
    for prop in proto.metadata_props:
        if prop.key == "streaming":
            prop.value = change(prop.value)
    onnx.save(proto, str(path))


def test_a_missing_part_leaves_every_window_whole(model_path, tmp_path, caplog):
    model = _copy_model(model_path, tmp_path)
    (tmp_path / "streamtag.network.onnx").unlink()
    engine = Engine(model, provider="cpu")
    assert engine.parts is None and not Tagger(engine, hop_samples=22 * FRAME).shares_frames
    assert "streamtag.network.onnx is missing, so every window is computed in full" in caplog.text


def test_a_part_that_is_not_the_models_is_refused(model_path, tmp_path):
    model = _copy_model(model_path, tmp_path)
    other = onnx.load(str(tmp_path / "streamtag.network.onnx"))
    other.doc_string = "changed"
    onnx.save(other, str(tmp_path / "streamtag.network.onnx"))
    with pytest.raises(ModelError, match="streamtag.network.onnx does not belong to .*SHA-256 differs.*export the model again"):
        Engine(model, provider="cpu")


def test_malformed_or_later_streaming_metadata(model_path, tmp_path):
    model = _copy_model(model_path, tmp_path)
    _rewrite_streaming(model, lambda text: json.dumps({**json.loads(text), "version": 2}))
    assert Engine(model, provider="cpu").parts is None  # a later layout: every window whole, still loads
    _rewrite_streaming(model, lambda text: json.dumps({**json.loads(text), "version": 1, "frames_per_window": 120}))
    with pytest.raises(ModelError, match="does not frame its own window"):
        Engine(model, provider="cpu")
    _rewrite_streaming(model, lambda text: "{not json")
    with pytest.raises(ModelError, match="malformed 'streaming' metadata"):
        Engine(model, provider="cpu")
    with pytest.raises(ModelError, match="no 'fft' front end"):
        Engine(model_path, provider="cpu", frontend="fft")


def test_many_streams_scored_together_equal_each_scored_alone(model_path, recordings):
    """The multi-stream server's batches: three streams' windows in one network run, as if each ran alone."""
    from streamtag.streams import score_together

    hop = 22 * FRAME
    engine = Engine(model_path, provider="cpu", device_ring=False)
    alone = [_scores(_feed(Tagger(engine, hop_samples=hop, batch_size=1), audio, 1024)) for audio in recordings]
    taggers = [Tagger(engine, hop_samples=hop, batch_size=1) for _ in recordings]
    together: list[list] = [[] for _ in recordings]
    for offset in range(0, max(a.size for a in recordings), 1024):
        jobs = [(i, tagger.due(audio[offset : offset + 1024])) for i, (tagger, audio) in enumerate(zip(taggers, recordings, strict=True))]
        jobs = [(i, windows) for i, windows in jobs if windows]
        if not jobs:
            continue
        scores = score_together([(taggers[i].stream, windows) for i, windows in jobs])
        for (i, windows), batch in zip(jobs, scores, strict=True):
            together[i] += taggers[i].assemble(windows, batch)
    for i, expected in enumerate(alone):
        got = _scores(together[i])
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() < 1e-5
