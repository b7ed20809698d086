"""Distillation: the teacher's window alignment worked by hand, its cached targets for real tracks (fixtures
written by tools/teacher_targets.py), a short real training run whose distillation loss falls, and the export
of the new ``tags`` output."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from streamtag.audio import load_audio  # noqa: E402
from streamtag.train.checkpoint import CHECKPOINT_BEST  # noqa: E402
from streamtag.train.config import (
    FrontendConfig,  # noqa: E402
    TrainConfig,  # noqa: E402
)
from streamtag.train.crnn import CRNN, ModelConfig  # noqa: E402
from streamtag.train.distill import (  # noqa: E402
    Framing,
    TeacherCache,
    content_key,
    teacher_start_frame,
    window_starts,
)
from streamtag.train.loop import train  # noqa: E402
from streamtag.train.training_set import TrainingSet  # noqa: E402
from tests.conftest import REPO  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "teacher"  # MSD_musicnn on 8 Emotify training tracks, every 64 frames
FIXTURE_HOP_FRAMES = 64
LABELS = ("classical", "electronic", "pop", "rock")


def test_teacher_patch_starts_where_the_student_window_starts():
    framing = Framing()
    # student frame k starts at k * 512 / 22050 s; the teacher's frame j at j * 256 / 16000 s
    assert teacher_start_frame(0, framing) == 0
    assert teacher_start_frame(16, framing) == 23  # 0.371519 s * 62.5 frames/s = 23.22
    assert teacher_start_frame(64, framing) == 93  # 1.486077 s -> 92.88
    assert teacher_start_frame(2455, framing) == 3563  # 57.0068 s -> 3562.93


def test_window_starts_and_frame_counts_by_hand():
    framing = Framing()
    frontend = FrontendConfig()
    assert framing.student_window_frames == frontend.n_frames(66150) == 128  # 1 + (66150 - 1024) // 512
    assert frontend.n_frames(1023) == 0
    assert frontend.n_frames(1_323_000) == 2582  # 60 s: 1 + 1_321_976 // 512
    starts = window_starts(2582, hop_frames=64, framing=framing)
    assert starts[0] == 0 and starts[-1] == 2432 and len(starts) == 39  # last start <= 2582 - 128 = 2454
    assert len(window_starts(127, hop_frames=64, framing=framing)) == 0


@pytest.fixture(scope="module")
def fixture_tracks(emotify_split):
    cache = TeacherCache(FIXTURES, frontend=FrontendConfig(), window_samples=66150)
    tracks = [t for t in emotify_split["train"] if cache.get(t.path) is not None]
    return cache, tracks


def test_fixture_targets_cover_each_track_window_by_window(fixture_tracks):
    cache, tracks = fixture_tracks
    assert len(tracks) == 8 and {t.genre for t in tracks} == set(LABELS)
    assert cache.teacher == "MSD_musicnn" and len(cache.tag_names) == 50 and cache.n_features == 200
    assert {"rock", "pop", "electronic", "jazz", "Hip-Hop"} <= set(cache.tag_names)
    for track in tracks[:2]:
        targets = cache.get(track.path)
        n_frames = FrontendConfig().n_frames(load_audio(track.path, sample_rate=22050).size)
        np.testing.assert_array_equal(targets.starts, window_starts(n_frames, hop_frames=FIXTURE_HOP_FRAMES, framing=Framing()))
        assert targets.tags.shape == (len(targets.starts), 50) and targets.features.shape == (len(targets.starts), 200)
        assert 0 <= targets.tags.min() and targets.tags.max() <= 1


def test_teacher_tells_classical_from_rock_on_the_fixtures(fixture_tracks):
    """The targets are the teacher's real judgement: its 'rock' tag is higher on rock than on classical."""
    cache, tracks = fixture_tracks
    rock = cache.tag_names.index("rock")
    mean = {g: np.mean([cache.get(t.path).tags[:, rock].mean() for t in tracks if t.genre == g]) for g in LABELS}
    assert mean["rock"] > 2 * mean["classical"], mean


def test_a_file_that_changed_is_not_found(tmp_path, fixture_tracks):
    cache, tracks = fixture_tracks
    copy = tmp_path / "copy.ogg"
    copy.write_bytes(tracks[0].path.read_bytes() + b"\0")
    assert content_key(copy) != content_key(tracks[0].path)
    assert cache.get(copy) is None


def _whole_track_set(tracks, config: ModelConfig, cache: TeacherCache, *, unlabel: bool = False) -> TrainingSet:
    frontend = CRNN(config).frontend

    def logmel_of(track):
        with torch.no_grad():
            return frontend(torch.from_numpy(load_audio(track.path, sample_rate=22050))[None])[0].numpy()

    chosen = [t if not unlabel else type(t)(path=t.path, genre=None, artist=t.artist, track_id=t.track_id) for t in tracks]
    return TrainingSet.build(chosen, config.labels, len(config.mood_names), logmel_of, lambda t: cache.get(t.path))


def _distillation_bce(model: CRNN, data: TrainingSet) -> float:
    """Mean BCE between the model's tags and the teacher's on every cached window of ``data``."""
    model.eval()
    losses = []
    with torch.no_grad():
        for logmel, targets in zip(data.logmels, data.teacher, strict=True):
            crops = torch.from_numpy(np.stack([logmel[s : s + 128] for s in targets.starts]))
            logits = model.forward_logmel(crops)["tag_logits"]
            losses.append(torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.from_numpy(targets.tags)).item())
    return float(np.mean(losses))


@pytest.fixture(scope="module")
def distilled(fixture_tracks, tmp_path_factory):
    """A short real run on the 8 fixture tracks, the pop and rock ones unlabelled (taught by the teacher only)."""
    cache, tracks = fixture_tracks
    torch.manual_seed(0)
    config = ModelConfig(labels=LABELS, tag_names=cache.tag_names, teacher_features=cache.n_features)
    labelled = [t for t in tracks if t.genre in ("classical", "electronic")]
    unlabelled = [t for t in tracks if t.genre in ("pop", "rock")]
    data = TrainingSet(**{
        name: (lambda a, b: a + b if isinstance(a, list) else np.concatenate([a, b]))(
            getattr(_whole_track_set(labelled, config, cache), name), getattr(_whole_track_set(unlabelled, config, cache, unlabel=True), name))
        for name in ("logmels", "genre", "taste", "moods", "teacher")
    })
    before = _distillation_bce(CRNN(config), data)
    out = tmp_path_factory.mktemp("distilled")
    run = TrainConfig(epochs=5, batch_size=8, crops_per_track=4, warmup_epochs=1, seed=1, learning_rate=3e-3)
    reports = train(config, run, data, None, out)
    model = CRNN(config)
    model.load_state_dict(torch.load(out / CHECKPOINT_BEST, weights_only=False)["model"])
    return data, before, _distillation_bce(model, data), reports, out


def test_distillation_loss_falls_in_a_short_real_run(distilled):
    data, before, after, reports, _ = distilled
    assert list(data.genre) == [0, 0, 1, 1, -1, -1, -1, -1]  # unlabelled tracks teach the tags alone
    assert np.isnan(data.taste[-1]) and not np.isnan(data.taste[0])
    assert after < before - 0.1, (before, after)
    assert all(np.isfinite(r.train_loss) for r in reports)


def test_exported_tags_output_matches_pytorch_and_loads(distilled, tmp_path, data_dir):
    *_, out = distilled
    target = tmp_path / "distilled.onnx"
    result = subprocess.run([sys.executable, str(REPO / "tools" / "export_onnx.py"), str(out / CHECKPOINT_BEST),
                             str(target), "--version", "0.0.2"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert float(result.stdout.split("max abs difference ")[1].split()[0]) < 1e-4  # all five outputs, tags included
    onnx = pytest.importorskip("onnx")
    meta = {p.key: p.value for p in onnx.load(str(target)).metadata_props}
    assert meta["streamtag.format"] == "2" and len(json.loads(meta["tag_names"])) == 50

    from streamtag.engine import Engine

    engine = Engine(target, provider="cpu")
    assert engine.info.tag_names[:2] == ("rock", "pop") and engine.info.format_version == "2"
    audio = load_audio(data_dir / "gtzan/samples/rock.00000.flac", sample_rate=22050)
    scores = engine.run(np.stack([audio[:66150], audio[66150:132300]]))
    assert scores.tags.shape == (2, 50) and ((0 < scores.tags) & (scores.tags < 1)).all()


def test_a_format_1_model_still_loads_without_tags(data_dir):
    from streamtag.core.tagger import Tagger, clip_summary
    from streamtag.engine import Engine

    engine = Engine(REPO / "tests" / "fixtures" / "format1-streamtag-crnn-1.0.0.onnx", provider="cpu")
    assert engine.info.format_version == "1" and engine.info.tag_names == ()
    tagger = Tagger(engine)
    windows = tagger.feed(load_audio(data_dir / "gtzan/samples/classical.00000.flac", sample_rate=22050))
    summary = clip_summary(windows, engine.info)
    assert windows[0].tags.shape == (0,) and summary["tags"] == {}
    assert summary["top"] == "classical"


# TensorFlow cannot share the suite's environment (musicnn needs NumPy 1): the tool is checked where a
# teacher environment is named, e.g. STREAMTAG_TEACHER_PYTHON=~/.venvs/teacher/bin/python.
TEACHER_PYTHON = os.environ.get("STREAMTAG_TEACHER_PYTHON")


@pytest.mark.skipif(not TEACHER_PYTHON, reason="set STREAMTAG_TEACHER_PYTHON to a Python with tensorflow and musicnn")
def test_teacher_tool_reproduces_a_fixture(tmp_path, fixture_tracks):
    cache, tracks = fixture_tracks
    subprocess.run([TEACHER_PYTHON, str(REPO / "tools" / "teacher_targets.py"), "--hop-frames", str(FIXTURE_HOP_FRAMES),
                    "--out", str(tmp_path), str(tracks[0].path)], check=True, capture_output=True)
    fresh = TeacherCache(tmp_path, frontend=FrontendConfig(), window_samples=66150).get(tracks[0].path)
    np.testing.assert_array_equal(fresh.starts, cache.get(tracks[0].path).starts)
    np.testing.assert_allclose(fresh.tags, cache.get(tracks[0].path).tags, atol=2e-3)


def test_a_cache_aligned_to_another_front_end_is_refused():
    from streamtag.errors import StreamtagError

    with pytest.raises(StreamtagError, match="aligned to another front end.*student_stft_hop"):
        TeacherCache(FIXTURES, frontend=FrontendConfig(hop_samples=256), window_samples=66150)
