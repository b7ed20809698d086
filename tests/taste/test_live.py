"""Teaching live: a label changes the very next scores, through the Tagger and through the websocket feed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from streamtag.audio import load_audio
from streamtag.core.tagger import Tagger
from streamtag.errors import ProfileError
from streamtag.taste.store import clip_path, load_active_profile, read_profile
from streamtag.taste.teacher import LIVE_LABEL_S, LiveTeacher

REPO = Path(__file__).resolve().parents[2]
HOP_S = 0.5


@pytest.fixture(scope="module")
def track(data_dir: Path) -> np.ndarray:
    return load_audio(data_dir / "emotify" / "audio" / "electronic" / "1.ogg", sample_rate=22050)


def test_a_live_label_changes_the_next_window(taste_home, own_path, engine, track):
    tagger = Tagger(engine, hop_samples=round(HOP_S * engine.info.sample_rate), batch_size=1)
    teacher = LiveTeacher.open(engine.info, tagger=tagger)
    assert teacher.describe() == "crowd" and tagger.taste_scorer is None
    with pytest.raises(ProfileError, match="nothing heard yet"):
        teacher.on_label("like")

    rate = engine.info.sample_rate
    first = tagger.feed(track[: 12 * rate])
    teacher.observe(first)
    assert all(w.taste == w.crowd_taste for w in first)  # no profile yet: the crowd's taste is shown

    text = teacher.on_label("dislike")
    assert text.startswith(f"Disliked the last {LIVE_LABEL_S:.0f} s")
    assert tagger.taste_scorer is not None and teacher.describe().startswith("personal (1 label:")
    saved = read_profile(own_path)  # persisted at once
    assert [(lab.kind, lab.value) for lab in saved.labels] == [("live", "dislike")]
    covered = saved.labels[0].n_windows
    assert covered == round((LIVE_LABEL_S - engine.info.window_s) / HOP_S) + 1  # windows inside the last 8 s

    after = tagger.feed(track[12 * rate : 13 * rate])  # the very next hop
    assert len(after) == 2
    for w in after:
        assert w.taste < w.crowd_taste - 0.05  # disliked: below the crowd's (one label nudges, tests/taste/test_prior.py)
        assert w.taste == pytest.approx(float(teacher.profile.score(w.embedding[None])[0]), abs=1e-6)

    teacher.observe(after)
    teacher.on_label("like")  # changing one's mind about the same audio pulls it back up
    again = tagger.feed(track[13 * rate : 14 * rate])
    assert all(a.taste > b.taste + 0.05 for a, b in zip(again, after, strict=True))
    assert load_active_profile(engine.info).n_likes == 1


def test_live_label_merges_with_labels_written_meanwhile(taste_home, own_path, engine, track, genre_files, embedded):
    """`taste learn` in another terminal while live runs: the live label is added to the file's labels."""
    from streamtag.taste.fit import make_label
    from streamtag.taste.store import save_profile

    tagger = Tagger(engine, hop_samples=round(HOP_S * engine.info.sample_rate), batch_size=1)
    teacher = LiveTeacher.open(engine.info, tagger=tagger)
    other = LiveTeacher.open(engine.info).profile  # what another process loaded and then extended
    path = genre_files["learn"]["classical"][0].resolve()
    emb, crowd = embedded[path]
    other.add(make_label("like", kind="file", source=str(path), embeddings=emb, crowd_probs=crowd))
    save_profile(other)
    teacher.observe(tagger.feed(track[: 10 * engine.info.sample_rate]))
    teacher.on_label("dislike")
    assert [(lab.kind, lab.value) for lab in read_profile(own_path).labels] == [
        ("file", "like"), ("live", "dislike")]


def test_live_label_after_a_reset_elsewhere_starts_afresh(taste_home, own_path, engine, track, cli):
    tagger = Tagger(engine, hop_samples=round(HOP_S * engine.info.sample_rate), batch_size=1)
    teacher = LiveTeacher.open(engine.info, tagger=tagger)
    teacher.observe(tagger.feed(track[: 10 * engine.info.sample_rate]))
    teacher.on_label("like")
    assert cli("reset") == 0  # another terminal
    teacher.on_label("dislike")
    assert [lab.value for lab in read_profile(own_path).labels] == ["dislike"]


def test_a_profile_damaged_behind_a_running_live_is_rewritten_from_the_labels_it_held(taste_home, own_path, engine, track):
    tagger = Tagger(engine, hop_samples=round(HOP_S * engine.info.sample_rate), batch_size=1)
    teacher = LiveTeacher.open(engine.info, tagger=tagger)
    rate = engine.info.sample_rate
    for second, value in zip(range(10, 40, 10), ("like", "dislike", "like"), strict=True):
        teacher.observe(tagger.feed(track[second * rate : (second + 10) * rate]))
        teacher.on_label(value)
    path = own_path
    path.write_bytes(path.read_bytes()[:500])  # truncated by something else
    text = teacher.on_label("dislike")
    assert "corrupt" in text and "rewritten" in text
    assert [lab.value for lab in read_profile(path).labels] == ["like", "dislike", "like", "dislike"]
    (aside,) = own_path.parent.glob(f"{own_path.name}.corrupt-*")
    assert aside.stat().st_size == 500  # the damaged file is kept for the user to look at


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_label_message_over_the_websocket_changes_the_taste(taste_home, own_path, model_path, track):
    """`streamtag live --source -` fed a track through a pipe; a websocket client labels what it hears."""
    from websockets.sync.client import connect

    port = _free_port()
    env = {**os.environ, "STREAMTAG_HOME": str(taste_home), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamtag.cli", "live", "--source", "-", "--rate", "22050", "--format", "f32",
         "--no-tui", "--json", "--ws", f"127.0.0.1:{port}", "--model", str(model_path), "--provider", "cpu",
         "--hop", str(HOP_S)],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
    )
    rate = 22050

    def scores_until(ws, t_s: float) -> list[dict]:
        got = []
        while True:
            msg = json.loads(ws.recv(timeout=30))
            if msg["type"] == "scores":
                got.append(msg)
                if msg["t"] >= t_s - 1e-6:
                    return got

    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                ws = connect(f"ws://127.0.0.1:{port}", open_timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    message = proc.stderr.read().decode() if proc.poll() is not None else "no feed"
                    raise AssertionError(message) from None
                time.sleep(0.1)
        with ws:
            hello = json.loads(ws.recv(timeout=10))
            assert hello["type"] == "hello" and hello["taste_source"] == "crowd"
            proc.stdin.write(track[: 12 * rate].astype("<f4").tobytes())
            proc.stdin.flush()
            hop_s = hello["hop_s"]  # 0.5 rounded to whole spectrogram frames
            before = scores_until(ws, 12.0 - hop_s)  # the last window that 12 s of audio completes
            ws.send(json.dumps({"type": "label", "value": "dislike"}))
            while (ack := json.loads(ws.recv(timeout=30)))["type"] != "ack":
                pass
            assert ack["ok"] is True and ack["message"].startswith("Disliked"), ack
            proc.stdin.write(track[12 * rate : 20 * rate].astype("<f4").tobytes())
            proc.stdin.flush()
            after = scores_until(ws, 20.0 - hop_s)
        # clients that were connected all along are told whose taste they see, hop by hop
        assert {m["taste_source"] for m in before} == {"crowd"}
        assert after[-1]["taste_source"].startswith("personal (1 label:")
        # the smoothed taste falls after the dislike (crowd's around 0.5 before)
        assert after[-1]["taste"] < before[-1]["taste"] - 0.05, (before[-1]["taste"], [m["taste"] for m in after])
        with connect(f"ws://127.0.0.1:{port}") as late:
            assert json.loads(late.recv(timeout=10))["taste_source"].startswith("personal (1 label:")
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    saved = read_profile(own_path)
    assert [(lab.kind, lab.value) for lab in saved.labels] == [("live", "dislike")]
    assert clip_path(saved.labels[0].clip).is_file()  # live kept the labelled audio, for another model


def test_a_live_label_keeps_the_audio_it_covers(taste_home, own_path, engine, track):
    """The clip is exactly the samples the label's windows span (16-bit), so another model can re-embed it."""
    import soundfile as sf

    rate = engine.info.sample_rate
    tagger = Tagger(engine, hop_samples=round(HOP_S * rate), batch_size=1)
    teacher = LiveTeacher.open(engine.info, tagger=tagger)
    for start in range(0, 14 * rate, 4410):  # blocks of 0.2 s, heard before they are tagged, as live does
        block = track[start : start + 4410]
        teacher.hear(block)
        teacher.observe(tagger.feed(block))
    teacher.on_label("like")
    (label,) = read_profile(own_path).labels
    recent = list(teacher._recent)
    first, end = recent[0].start_sample, recent[-1].end_sample
    clip, clip_rate = sf.read(clip_path(label.clip), dtype="float32")
    assert clip_rate == rate and len(clip) == end - first
    np.testing.assert_allclose(clip, track[first:end], atol=1 / 32767)
    assert (end - first) / rate <= LIVE_LABEL_S


def test_live_labels_are_refitted_off_the_event_loop_one_at_a_time_in_order():
    """`live`'s labeller runs the teacher (refit and write: up to 88 ms on a big profile) on a worker thread,
    so the hops on the event loop go on; labels given together are still saved one after the other."""
    import asyncio
    import threading

    from streamtag.live import _labeller

    class Teacher:
        calls: list[tuple[str, bool]] = []

        def on_label(self, value):
            self.calls.append((value, threading.current_thread() is threading.main_thread()))
            time.sleep(0.05)
            return f"{value} saved"

        def describe(self):
            return "personal (2 labels)"

    class FakeTagger:
        samples_seen = 22050
        info = type("Info", (), {"sample_rate": 22050})

    async def main():
        hello = {"taste_source": "crowd"}
        on_label = _labeller(Teacher(), hello, tagger=FakeTagger(), sinks=[])
        answers = await asyncio.gather(on_label("like"), on_label("dislike"), on_label("like"))
        return answers, hello

    answers, hello = asyncio.run(main())
    assert answers == ["like saved", "dislike saved", "like saved"]
    assert Teacher.calls == [("like", False), ("dislike", False), ("like", False)]  # never on the loop's thread
    assert hello["taste_source"] == "personal (2 labels)"
