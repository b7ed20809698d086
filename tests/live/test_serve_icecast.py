"""8 streams from a real local Icecast through one `streamtag serve` for 60 s: every stream on time, each
tagged as the recording it plays, and one source killed and brought back without the others noticing."""

from __future__ import annotations

import asyncio
import collections
import json
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

from streamtag.audio import load_audio
from streamtag.core.tagger import Tagger
from streamtag.engine import Engine
from streamtag.serve import stream_ids
from tests.conftest import REPO

pytestmark = pytest.mark.timeout(240)
RECORDINGS = ("gtzan/samples/blues.00000.flac", "gtzan/samples/classical.00000.flac", "gtzan/samples/hiphop.00000.flac",
              "gtzan/samples/jazz.00000.flac", "gtzan/samples/metal.00000.flac",
              "cc-audio/147793__setuniman__sweet-waltz-0i-22mi.ogg",
              "cc-audio/Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg",
              "cc-audio/Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.ogg")
LISTEN_S = 60.0
KILL_AT_S, BACK_AT_S = 20.0, 32.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _offline_top(path, engine: Engine) -> str:
    audio = load_audio(path, sample_rate=engine.info.sample_rate)[: 30 * engine.info.sample_rate]
    windows = Tagger(engine, hop_samples=engine.info.hop_samples_for(0.5)).feed(audio)
    return collections.Counter(engine.info.labels[int(np.argmax(w.genre))] for w in windows).most_common(1)[0][0]


def test_eight_icecast_streams_for_a_minute_one_killed_and_back(data_dir, model_path, icecast_feed, live_env):
    paths = [data_dir / r for r in RECORDINGS]
    for path in paths:
        assert path.is_file(), path
    mounts = [icecast_feed(path) for path in paths]
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamtag.cli", "serve", *(m.url for m in mounts), "--ws", f"127.0.0.1:{port}",
         "--provider", "cpu", "--model", str(model_path), "--duration", str(LISTEN_S + 30)],
        env=live_env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    victim = 4  # the metal stream
    events: dict[str, float] = {}

    async def listen() -> list[tuple[float, dict]]:
        from websockets.asyncio.client import connect

        got = []
        async with connect(f"ws://127.0.0.1:{port}/streams", max_queue=None) as ws:
            started = time.monotonic()
            while (now := time.monotonic() - started) < LISTEN_S:
                if "killed" not in events and now >= KILL_AT_S:
                    mounts[victim].stop()
                    events["killed"] = now
                if "back" not in events and now >= BACK_AT_S:
                    name = mounts[victim].url.rsplit("/", 1)[1]
                    await asyncio.to_thread(icecast_feed, paths[victim], name=name)
                    events["back"] = time.monotonic() - started
                try:
                    got.append((now, json.loads(await asyncio.wait_for(ws.recv(), 0.5))))
                except TimeoutError:
                    pass
        return got

    try:
        assert "serving 8 streams" in proc.stderr.readline()
        received = asyncio.run(listen())
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/streams", timeout=5) as response:
            index = {s["id"]: s for s in json.loads(response.read())["streams"]}
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err

    ids = stream_ids([m.url for m in mounts])
    by_stream = collections.defaultdict(list)
    for at, message in received:
        if message["type"] == "scores":
            by_stream[message["stream"]].append((at, message))
    assert sorted(by_stream) == sorted(ids)
    engine = Engine(model_path, provider="cpu")
    hop_s = engine.info.hop_samples_for(0.5) / engine.info.sample_rate
    for i, stream in enumerate(ids):
        scores = by_stream[stream]
        if i == victim:
            continue
        # on time: a hop per 0.511 s once the first window is full, no window missing from the stream, and the
        # hops kept coming while the victim was down (Ogg pages arrive in bursts of up to a second or so, so
        # arrivals are counted over the outage rather than spaced one by one)
        assert len(scores) >= (LISTEN_S - 3.0 - 2.0) / hop_s * 0.9, (stream, len(scores))
        assert np.allclose(np.diff([m["t"] for _, m in scores]), hop_s, atol=2e-4), stream
        arrivals = np.array([at for at, _ in scores])
        during = ((arrivals > events["killed"]) & (arrivals < events["back"])).sum()
        assert during >= (events["back"] - events["killed"]) / hop_s - 5, (stream, during)
        latencies = [m["latency_ms"] for _, m in scores]
        assert np.percentile(latencies, 99) < 1000 * hop_s, (stream, np.percentile(latencies, 99))
        tops = collections.Counter(m["top"] for _, m in scores if m["top"])
        assert tops.most_common(1)[0][0] == _offline_top(paths[i], engine), (stream, tops)
    # the victim went down when its source went, and came back when its source did
    victim_arrivals = np.array([at for at, _ in by_stream[ids[victim]]])
    assert (victim_arrivals < events["killed"]).sum() >= 20
    assert (victim_arrivals > events["back"] + 3.0).sum() >= 5
    assert index[ids[victim]]["restarts"] >= 1 and index[ids[victim]]["state"] == "up"
