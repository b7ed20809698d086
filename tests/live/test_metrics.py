"""`live`'s /metrics (Prometheus text, parsed with prometheus-client's own parser) and /health."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import REPO

from .conftest import LiveProcess

pytestmark = pytest.mark.timeout(90)


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def _samples(body: bytes) -> dict[str, float]:
    return {sample.name: sample.value for family in text_string_to_metric_families(body.decode())
            for sample in family.samples}


def test_metrics_count_hops_at_the_hop_rate_and_health_says_audio_flows(data_dir, live_env):
    clip = data_dir / "gtzan/samples/rock.00000.flac"
    live = LiveProcess(["--source", str(clip), "--no-tui", "--no-taste", "--provider", "cpu", "--ws", "127.0.0.1:0",
                        "--duration", "20"], env=live_env)
    try:
        http = live.wait_for_feed().replace("ws://", "http://", 1)
        deadline = time.monotonic() + 30
        while _samples(_get(http + "/metrics")[2]).get("streamtag_hops_total", 0) < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        status, content_type, body = _get(http + "/metrics")
        first, t_first = _samples(body), time.monotonic()
        time.sleep(5)
        second, t_second = _samples(_get(http + "/metrics")[2]), time.monotonic()
        health_status, _, health = _get(http + "/health")
    finally:
        live.proc.terminate()
        live.finish()
    assert status == 200 and content_type.startswith("text/plain")
    rate = (second["streamtag_hops_total"] - first["streamtag_hops_total"]) / (t_second - t_first)
    assert rate == pytest.approx(1 / 0.5108, rel=0.25)  # one hop per 0.511 s of real-time audio
    assert second["streamtag_hop_latency_seconds_count"] == second["streamtag_hops_total"]
    assert second["streamtag_audio_dropped_seconds"] == 0 and second["streamtag_feed_clients"] == 0
    assert health_status == 200
    report = json.loads(health)
    assert report["status"] == "ok" and report["audio_age_s"] < 2 and report["hops"] >= 10


def test_health_is_503_when_no_audio_comes(live_env):
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamtag.cli", "live", "--source", "-", "--rate", "22050", "--no-tui", "--no-taste",
         "--provider", "cpu", "--ws", "127.0.0.1:0"],
        env=live_env, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        url = None
        while url is None:
            line = proc.stderr.readline()
            assert line, "streamtag live ended before serving its feed"
            if "dashboard http://" in line:
                url = line.split("dashboard ")[1].split()[0].rstrip("/")
        time.sleep(2.5)  # nothing written to stdin: no audio for longer than AUDIO_STALE_S
        status, _, body = _get(url + "/health")
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    assert status == 503 and json.loads(body) == {"status": "no audio", "audio_age_s": None, "hops": 0,
                                                  "audio_dropped_s": 0.0}


def test_the_mqtt_queue_is_read_when_scraped():
    from types import SimpleNamespace

    from streamtag.core.stats import PipelineStats
    from streamtag.prometheus_metrics import LiveMetrics

    sink = SimpleNamespace(queued=3, dropped=0)
    metrics = LiveMetrics(PipelineStats())
    metrics.watch_mqtt(sink)
    assert _samples(metrics.exposition()[2])["streamtag_mqtt_queued"] == 3
    sink.queued, sink.dropped = 0, 7  # the values of the moment, not of when it was set up
    samples = _samples(metrics.exposition()[2])
    assert (samples["streamtag_mqtt_queued"], samples["streamtag_mqtt_dropped_events"]) == (0, 7)
