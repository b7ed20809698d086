"""`streamtag serve`: several streams through one model, each with its own feed, one port, real clients."""

from __future__ import annotations

import asyncio
import collections
import json
import re
import socket
import subprocess
import sys
import urllib.request

import numpy as np
import pytest

from streamtag.audio import load_audio
from streamtag.core.tagger import Tagger
from streamtag.engine import Engine
from tests.conftest import REPO

from .conftest import read_feed

SERVING = re.compile(r"streams (http://\S+)/streams")
# Two clips whose genre the model has no doubt about, and a source that does not exist.
CLIPS = {"classical": "gtzan/samples/classical.00000.flac", "metal": "gtzan/samples/metal.00000.flac"}

pytestmark = pytest.mark.timeout(120)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[str, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.headers["Content-Type"], response.read()


def _offline_top(path, model_path) -> str:
    engine = Engine(model_path, provider="cpu")
    audio = load_audio(path, sample_rate=engine.info.sample_rate)[: 22050 * 20]
    windows = Tagger(engine, hop_samples=engine.info.hop_samples_for(0.5)).feed(audio)
    counts = collections.Counter(engine.info.labels[int(np.argmax(w.genre))] for w in windows)
    return counts.most_common(1)[0][0]


def test_serve_tags_each_stream_on_its_own_feed_and_a_broken_one_harms_none(data_dir, model_path, live_env, tmp_path):
    port = _free_port()
    paths = [data_dir / CLIPS["classical"], data_dir / CLIPS["metal"], tmp_path / "gone.ogg"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamtag.cli", "serve", *map(str, paths), "--ws", f"127.0.0.1:{port}",
         "--provider", "cpu", "--model", str(model_path), "--duration", "40"],
        env=live_env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stderr.readline()
        assert SERVING.search(line), line + proc.stderr.read() if proc.poll() is not None else line
        base = f"127.0.0.1:{port}"

        async def feeds():
            def enough(messages):
                return sum(m["type"] == "scores" for m in messages) >= 14  # 3 s of window, then 14 hops

            one = [read_feed(f"ws://{base}/streams/{name}", until=enough, timeout_s=40)
                   for name in ("classical-00000", "metal-00000")]
            everything = read_feed(f"ws://{base}/streams", until=lambda m: len(m) >= 30, timeout_s=40)
            return await asyncio.gather(*one, everything)

        classical, metal, combined = asyncio.run(feeds())
        _, index = _get(f"http://{base}/streams")
        _, health = _get(f"http://{base}/health")
        metrics_type, metrics = _get(f"http://{base}/metrics")
        page_type, page = _get(f"http://{base}/")
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err

    for name, messages in (("classical", classical), ("metal", metal)):
        hello, *rest = messages
        assert hello["type"] == "hello" and hello["source"].startswith(f"file: {name}.00000.flac")
        scores = [m for m in rest if m["type"] == "scores"]
        assert len(scores) >= 14 and [m["seq"] for m in scores] == list(range(scores[0]["seq"], scores[0]["seq"] + len(scores)))
        # windows end every hop (0.5 s rounded to 22 frames of 512 samples) from 3 s
        assert np.allclose(np.diff([m["t"] for m in scores]), hello["hop_s"], atol=2e-4)
        tops = collections.Counter(m["top"] for m in scores if m["top"])
        assert tops.most_common(1)[0][0] == _offline_top(data_dir / CLIPS[name], model_path)
        assert max(m["latency_ms"] for m in scores) < 1000 * hello["hop_s"]

    hellos = [m for m in combined if m["type"] == "hello"]
    assert sorted(m["stream"] for m in hellos) == ["classical-00000", "gone", "metal-00000"]
    assert {m["stream"] for m in combined if m["type"] == "scores"} == {"classical-00000", "metal-00000"}

    streams = {s["id"]: s for s in json.loads(index)["streams"]}
    assert streams["classical-00000"]["state"] == streams["metal-00000"]["state"] == "up"
    assert streams["gone"]["state"] == "down" and streams["gone"]["restarts"] >= 1
    assert "gone.ogg" in streams["gone"]["error"]
    assert json.loads(health) == {"status": "degraded", "streams_up": 2, "streams": 3}
    assert metrics_type.startswith("text/plain") and b'streamtag_stream_up{stream="gone"} 0.0' in metrics
    assert b'streamtag_stream_up{stream="metal-00000"} 1.0' in metrics
    assert b'streamtag_stream_audio_dropped_seconds{stream="metal-00000"} 0.0' in metrics
    assert re.search(rb"streamtag_windows_total (\d+)", metrics) and page_type.startswith("text/html")
    assert b"streams.js" in page
    assert "stopped after" in err and "Traceback" not in err


def test_serve_says_what_to_do_without_streams_or_with_a_bad_config(tmp_path, live_env):
    run = lambda *args: subprocess.run([sys.executable, "-m", "streamtag.cli", "serve", *args], env=live_env,  # noqa: E731
                                       cwd=REPO, capture_output=True, text=True, timeout=60)
    nothing = run()
    assert nothing.returncode == 2 and "nothing to serve" in nothing.stderr
    bad = tmp_path / "streams.toml"
    bad.write_text('[[stream]]\nsource = "a.ogg"\nvolume = 3\n')
    refused = run("--config", str(bad))
    assert refused.returncode == 2 and "unknown keys ['volume']" in refused.stderr
    bad.write_text("not toml [")
    refused = run("--config", str(bad))
    assert refused.returncode == 2 and "cannot read the streams file" in refused.stderr and "Traceback" not in refused.stderr


def test_stream_ids_are_unique_and_url_safe():
    from streamtag.serve import stream_ids

    assert stream_ids(["http://radio.example/live/Jazz FM.ogg?x=1", "a/b/Jazz FM.mp3", "rtsp://cam/", "mic"]) == [
        "jazz-fm", "jazz-fm-2", "cam", "mic"]


def test_a_stream_with_a_taste_profile_of_its_own(data_dir, model_path, live_env, tmp_path):
    """Two streams of one recording: the one given a profile (a file, as `taste export` writes) shows it."""
    from streamtag.tag_files import embed_file
    from streamtag.taste.fit import KIND_FILE, make_label
    from streamtag.taste.profile import ModelIdentity, Profile
    from streamtag.taste.store import save_profile

    engine = Engine(model_path, provider="cpu")
    clip = data_dir / CLIPS["metal"]
    embeddings, crowd = embed_file(engine, data_dir / CLIPS["classical"])
    profile = Profile(ModelIdentity.from_info(engine.info),
                      [make_label("dislike", kind=KIND_FILE, source="/x", embeddings=embeddings, crowd_probs=crowd),
                       make_label("like", kind=KIND_FILE, source="/y", embeddings=embed_file(engine, clip)[0],
                                  crowd_probs=embed_file(engine, clip)[1])])
    save_profile(profile, tmp_path / "dj.json")
    config = tmp_path / "streams.toml"
    config.write_text(f'[[stream]]\nid = "mine"\nsource = "{clip}"\ntaste = "{tmp_path / "dj.json"}"\n\n'
                      f'[[stream]]\nid = "crowd"\nsource = "{clip}"\n')
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamtag.cli", "serve", "--config", str(config), "--ws", f"127.0.0.1:{port}",
         "--provider", "cpu", "--model", str(model_path), "--duration", "30"],
        env=live_env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert SERVING.search(proc.stderr.readline())

        async def both():
            def enough(messages):
                return sum(m["type"] == "scores" for m in messages) >= 6

            return await asyncio.gather(*(read_feed(f"ws://127.0.0.1:{port}/streams/{name}", until=enough, timeout_s=30)
                                          for name in ("mine", "crowd")))

        mine, crowd = asyncio.run(both())
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert mine[0]["taste_source"].startswith("personal (2 labels") and crowd[0]["taste_source"] == "crowd"
    mine_taste = [m["taste"] for m in mine if m["type"] == "scores"]
    crowd_taste = [m["taste"] for m in crowd if m["type"] == "scores"]
    assert np.mean(mine_taste) > np.mean(crowd_taste) + 0.05  # it liked this very recording


def test_a_stream_whose_profile_is_missing_stops_the_server_with_the_fix(tmp_path, live_env):
    config = tmp_path / "streams.toml"
    config.write_text('[[stream]]\nsource = "a.flac"\ntaste = "nobody"\n')
    out = subprocess.run([sys.executable, "-m", "streamtag.cli", "serve", "--config", str(config), "--provider", "cpu"],
                         env=live_env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "stream a: no taste profile at" in out.stderr and "nobody.json" in out.stderr
    assert "streamtag taste export PATH" in out.stderr and "Traceback" not in out.stderr
