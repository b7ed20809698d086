"""`streamtag live --source URL` end to end: a real Icecast mount (MP3, as Shoutcast-style stations send), fed
by ffmpeg from a real recording, tagged by the CLI; and a mount that is not there."""

from __future__ import annotations

import json

import numpy as np
import pytest

from .conftest import run_cli
from .test_live_e2e import LOUD_DBFS, live_hop_s, windows_ending_by

CLASSICAL = "gtzan/samples/classical.00000.flac"  # the model's "classical" is above 0.98 in every window offline

pytestmark = pytest.mark.timeout(120)


@pytest.mark.slow
def test_live_tags_an_icecast_stream(icecast_feed, data_dir, live_env, model_path):
    mount = icecast_feed(data_dir / CLASSICAL, codec="libmp3lame")
    rc, out, err = run_cli(["live", "--source", mount.url, "--no-tui", "--json", "--no-ws", "--no-taste",
                            "--duration", "6", "--provider", "cpu", "--model", str(model_path)], env=live_env)
    assert rc == 0, err
    messages = [json.loads(line) for line in out.splitlines()]
    hello = messages[0]
    assert hello["type"] == "hello" and hello["source"] == f"network: {mount.url}"
    scores = [m for m in messages if m["type"] == "scores"]
    # 6 s of audio: windows end every hop from 3 s, however fast Icecast's burst delivered the first seconds
    assert [m["t"] for m in scores] == windows_ending_by(6.0, live_hop_s(model_path))
    assert all(m["level_dbfs"] > LOUD_DBFS and not m["silent"] for m in scores)
    genre = np.array([[m["genre"][label] for label in hello["labels"]] for m in scores])
    assert all(m["top"] == "classical" for m in scores) and genre[:, hello["labels"].index("classical")].min() > 0.9
    assert "duration reached after 6.0 s" in err


def test_live_with_a_missing_mount_is_one_clear_error(icecast_server, live_env, model_path):
    url = icecast_server.url("off-the-air.mp3")
    rc, out, err = run_cli(["live", "--source", url, "--no-tui", "--json", "--no-ws", "--no-taste", "--provider", "cpu",
                            "--model", str(model_path)], env=live_env)
    assert rc == 2
    assert err.splitlines()[-1] == (
        f"streamtag: error: {url}: the server answered 404 Not Found; check the address (an Icecast mount point is "
        "case-sensitive; the server's status page lists them)"
    )
    assert "Traceback" not in err
