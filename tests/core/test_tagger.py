"""The streaming core: the same audio in 256-, 1024- and 4096-sample chunks, or chunks longer than a window,
gives the same scores; checked with a fake scorer worked out by hand and with the real model."""

from __future__ import annotations

import numpy as np
import pytest

from streamtag.audio import load_audio
from streamtag.core.scorer import Scores
from streamtag.core.tagger import Tagger, clip_summary, level_dbfs
from streamtag.engine import Engine


@pytest.fixture(scope="module")
def engine(model_path):
    return Engine(model_path, provider="cpu")


@pytest.fixture(scope="module")
def music(data_dir):
    return load_audio(data_dir / "gtzan/samples/reggae.00000.flac", sample_rate=22050)[: 22050 * 12]


def run_chunked(tagger, audio, chunk):
    out = []
    for i in range(0, audio.size, chunk):
        out += tagger.feed(audio[i : i + chunk])
    return out + tagger.finish()


class FakeScorer:
    """A scorer of 30-sample windows at 100 Hz whose scores are the window's own numbers: genre from its mean,
    taste its first sample, mood its last, embedding its first two. It records the batch sizes it was given."""

    info = type("Info", (), dict(labels=("low", "high"), mood_names=("last",), tag_names=(), sample_rate=100,
                                  window_samples=30, hop_samples=10))()
    shares_frames = False

    def __init__(self) -> None:
        self.batches: list[int] = []

    def stream(self, *, hop_samples: int) -> FakeScorer:
        return self

    def reset(self) -> None:
        self.batches.clear()

    def score(self, windows: list[tuple[int, np.ndarray]]) -> Scores:
        self.batches.append(len(windows))
        x = np.stack([window for _, window in windows])
        high = x.mean(axis=1)
        return Scores(genre=np.stack([1 - high, high], axis=1), taste=x[:, 0], moods=x[:, -1:], embedding=x[:, :2],
                      tags=np.zeros((len(x), 0), np.float32))


# chunk -> the batches the scorer sees (batch_size 2): a chunk completes the windows that end inside it, e.g.
# chunks of 30 end at 30 (window 0), 60 (windows 1-3: a batch of 2, then 1) and 75 (window 4)
BATCHES = {1: [1] * 5, 7: [1] * 5, 30: [1, 2, 1, 1], 45: [2, 2, 1], 1000: [2, 2, 1]}


@pytest.mark.parametrize("chunk", sorted(BATCHES))
def test_windows_and_scores_by_hand_with_a_fake_scorer(chunk):
    """75 samples 0.00, 0.01, ..., 0.74: windows start at 0, 10, ..., 40 (1 + (75 - 30) // 10 = 5); window k's
    mean is (10 k + 14.5) / 100, its first sample k / 10, its last (10 k + 29) / 100."""
    scorer = FakeScorer()
    tagger = Tagger(scorer, hop_samples=10, batch_size=2)
    audio = (np.arange(75) / 100).astype(np.float32)
    windows = run_chunked(tagger, audio, chunk)
    assert [(w.start_sample, w.end_sample) for w in windows] == [(10 * k, 10 * k + 30) for k in range(5)]
    for k, w in enumerate(windows):
        assert w.genre[1] == pytest.approx((10 * k + 14.5) / 100) and w.taste == pytest.approx(k / 10)
        assert w.moods[0] == pytest.approx((10 * k + 29) / 100) and w.tags.shape == (0,)
    assert scorer.batches == BATCHES[chunk]
    assert clip_summary(windows, scorer.info)["genre"]["high"] == pytest.approx(np.mean([0.145 + 0.1 * k for k in range(5)]), abs=1e-4)


def test_chunk_size_does_not_change_scores(engine, music):
    """Small chunks score one window at a time; chunks longer than a window score several in one batch."""
    hop = 11025  # 0.5 s: not whole frames, so every window is computed whole
    chunks = (256, 1024, 4096, 100_000)
    results = {chunk: run_chunked(Tagger(engine, hop_samples=hop, batch_size=4), music, chunk) for chunk in chunks}
    expected_windows = 1 + (music.size - 66150) // hop
    reference = results[4096]
    assert len(reference) == expected_windows
    for chunk, windows in results.items():
        assert [w.start_sample for w in windows] == [i * hop for i in range(expected_windows)]
        for a, b in zip(windows, reference, strict=True):
            np.testing.assert_allclose(a.genre, b.genre, atol=1e-5, err_msg=f"chunk {chunk}")
            np.testing.assert_allclose(a.moods, b.moods, atol=1e-5)
            assert abs(a.taste - b.taste) < 1e-5 and a.level_dbfs == pytest.approx(b.level_dbfs, abs=1e-4)


def test_window_scores_equal_a_direct_engine_run(engine, music):
    [first, *_] = Tagger(engine, hop_samples=33075).feed(music)
    direct = engine.run(music[None, :66150])
    np.testing.assert_allclose(first.genre, direct.genre[0], atol=1e-5)
    assert first.end_sample - first.start_sample == 66150


def test_a_clip_shorter_than_a_window_gets_one_padded_window(engine, music):
    tagger = Tagger(engine)
    assert tagger.feed(music[:22050]) == []
    [window] = tagger.finish()
    padded = np.zeros(66150, np.float32)
    padded[:22050] = music[:22050]
    np.testing.assert_allclose(window.genre, engine.run(padded[None]).genre[0], atol=1e-5)


def test_taste_scorer_replaces_the_crowd_taste(engine, music):
    tagger = Tagger(engine, taste_scorer=lambda emb: np.full(len(emb), 0.9, np.float32))
    windows = tagger.feed(music)
    assert all(w.taste == pytest.approx(0.9) for w in windows)
    assert all(0 <= w.crowd_taste <= 1 and w.crowd_taste != pytest.approx(0.9) for w in windows)


def test_clip_summary_averages_windows(engine, music):
    windows = Tagger(engine).feed(music)
    summary = clip_summary(windows, engine.info)
    mean = np.mean([w.genre for w in windows], axis=0)
    assert summary["top"] == engine.info.labels[int(mean.argmax())]
    assert summary["genre"]["rock"] == pytest.approx(mean[3], abs=1e-4)
    assert set(summary["moods"]) == set(engine.info.mood_names)


def test_level_dbfs_by_hand():
    assert level_dbfs(np.full(100, 0.5, np.float32)) == pytest.approx(20 * np.log10(0.5))
    sine = np.sin(np.linspace(0, 200 * np.pi, 22050, endpoint=False)).astype(np.float32)
    assert level_dbfs(sine) == pytest.approx(-3.01, abs=0.01)
    assert level_dbfs(np.zeros(10, np.float32)) == -120.0


def test_nan_and_infinite_samples_are_read_as_silence(model_path, data_dir):
    """A hostile or corrupt stream: the scores stay finite, the level too, and the bad samples are counted."""
    audio = load_audio(data_dir / "gtzan" / "samples" / "jazz.00000.flac", sample_rate=22050)[: 5 * 22050].copy()
    clean = audio.copy()
    clean[1000:3000] = 0.0
    audio[1000:2000], audio[2000:2999], audio[2999] = np.inf, np.nan, -np.inf
    engine = Engine(model_path, provider="cpu")
    broken, reference = Tagger(engine, hop_samples=11025), Tagger(engine, hop_samples=11025)
    got, want = broken.feed(audio), reference.feed(clean)
    assert broken.nonfinite_samples == 2000 and reference.nonfinite_samples == 0
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a.genre, b.genre, atol=1e-6)
        assert np.isfinite(a.level_dbfs) and a.level_dbfs == b.level_dbfs
    broken.reset()
    assert broken.nonfinite_samples == 0
