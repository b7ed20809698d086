"""`live --mqtt` against a real mosquitto on 127.0.0.1: what is retained, the events, Home Assistant discovery,
availability and the last will, a broker that goes away and comes back, logins and TLS; and --mqtt's URL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time

import jinja2
import pytest

import streamtag
from streamtag.core.messages import source_event
from streamtag.errors import StreamtagError
from streamtag.sinks.mqtt import MqttConfig, MqttSink, parse_mqtt_url
from tests.live.conftest import REPO, LiveProcess, run_cli

from .conftest import CLIP_S, Recorder, free_port, retained

pytestmark = pytest.mark.timeout(120)

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}
LIVE = ["--no-tui", "--json", "--no-ws", "--no-taste", "--provider", "cpu"]
HOP_S = 0.5108  # what --hop 0.5 runs at: 22 frames of 512 samples at 22050 Hz


def lines_of(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def percent(p: float) -> int:
    """A probability as the sensors show it: a whole percentage (Jinja's round is Python's)."""
    return int(round(100 * p))


def render(template: str, state: dict) -> str:
    """A value_template rendered the way Home Assistant renders it: Jinja, with the payload as ``value_json``."""
    return jinja2.Environment().from_string(template).render(value_json=state)


# ---------------------------------------------------------------------------------------------------------------
# --mqtt's URL


def test_url_defaults_and_parts():
    assert parse_mqtt_url("mqtt://broker.lan", environ={}) == MqttConfig(host="broker.lan", port=1883,
                                                                         prefix="streamtag")
    config = parse_mqtt_url("mqtts://al%40ice:p%2Fw@[::1]/home/living-room/", environ={})
    assert (config.host, config.port, config.tls, config.prefix) == ("::1", 8883, True, "home/living-room")
    assert (config.username, config.password) == ("al@ice", "p/w")
    assert config.url == "mqtts://al@ice@[::1]:8883/home/living-room"  # never the password
    assert "p/w" not in repr(config)


def test_url_login_from_the_environment_where_the_url_gives_none():
    environ = {"STREAMTAG_MQTT_USER": "env-user", "STREAMTAG_MQTT_PASSWORD": "env-pw"}
    config = parse_mqtt_url("mqtt://127.0.0.1:1884/st", environ=environ)
    assert (config.port, config.prefix, config.username, config.password) == (1884, "st", "env-user", "env-pw")
    config = parse_mqtt_url("mqtt://alice@127.0.0.1/st", environ=environ)
    assert (config.username, config.password) == ("alice", "env-pw")
    config = parse_mqtt_url("mqtt://alice:url-pw@127.0.0.1/st", environ=environ)
    assert (config.username, config.password) == ("alice", "url-pw")


@pytest.mark.parametrize(("url", "words"), [
    ("http://127.0.0.1/st", "--mqtt expects mqtt://"),
    ("mqtt:///st", "--mqtt expects mqtt://"),
    ("mqtt://127.0.0.1:99999/st", "not a number in 0..65535"),
    ("mqtt://127.0.0.1/st/#", "cannot hold a wildcard"),
    ("mqtt://127.0.0.1/st/+/x", "without + or #"),
    ("mqtt://127.0.0.1/a//b", "levels must be non-empty"),
])
def test_bad_urls_say_what_is_expected(url, words):
    with pytest.raises(StreamtagError, match=words.replace("+", r"\+").replace(".", r"\.")):
        parse_mqtt_url(url, environ={})


def test_a_password_without_a_user_is_an_error():
    with pytest.raises(StreamtagError, match="needs a user name"):
        parse_mqtt_url("mqtt://127.0.0.1/st", environ={"STREAMTAG_MQTT_PASSWORD": "pw"})


def test_bad_url_on_the_command_line(data_dir):
    rc, _, err = run_cli(["live", "--source", str(data_dir / "gtzan" / "samples" / "jazz.00000.flac"), *LIVE,
                          "--mqtt", "tcp://127.0.0.1:1883"], env=ENV)
    assert rc == 2
    assert "streamtag: error: --mqtt expects mqtt://[USER[:PASSWORD]@]HOST[:PORT][/PREFIX]" in err
    assert "Traceback" not in err


# ---------------------------------------------------------------------------------------------------------------
# A run against the broker


@pytest.mark.slow
def test_a_run_publishes_state_events_discovery_and_availability(mosquitto, two_genres, model_path):
    recorder = Recorder(mosquitto.port, ("st/#",))
    try:
        rc, out, err = run_cli(["live", "--source", str(two_genres), *LIVE, "--model", str(model_path),
                                "--mqtt", f"mqtt://127.0.0.1:{mosquitto.port}/st"], env=ENV, timeout_s=60)
        assert rc == 0, err
        assert f"streamtag: mqtt mqtt://127.0.0.1:{mosquitto.port}/st" in err
        assert recorder.wait_for(lambda r: r.on("st/availability")[-1:] and
                                 r.on("st/availability")[-1].payload == "offline", timeout_s=5)
    finally:
        recorder.close()
    messages = lines_of(out)
    hello, scores = messages[0], [m for m in messages if m["type"] == "scores"]
    assert len(scores) == int((2 * CLIP_S - 3.0) / HOP_S) + 1

    # availability: online while it ran, offline once it stopped
    assert [m.payload for m in recorder.on("st/availability")] == ["online", "offline"]
    # each hop's state, in order (one the sender had no time for before the next is skipped: it was retained
    # for no one), the last one being the last scores line
    states = [m.json() for m in recorder.on("st/state")]
    hop_times = [m["t"] for m in scores]
    assert [s["t"] for s in states] == [t for t in hop_times if t in {s["t"] for s in states}]
    assert len(states) >= len(scores) - 2 and states[-1]["t"] == hop_times[-1]
    last = scores[-1]
    assert states[-1] == {"t": last["t"], "top": last["top"], "genre": last["genre"], "taste": last["taste"],
                          "moods": last["moods"], "tags": last["tags"], "silent": False, "state": "music"}
    # the genre changes from classical to rock, at the times the feed's top_changed events give
    changes = [m for m in messages if m["type"] == "event"]
    assert [(c["previous"], c["current"]) for c in changes] == [(None, "classical"), ("classical", "rock")]
    events = [m.json() for m in recorder.on("st/event/genre_changed")]
    assert events == [{"t": c["t"], "previous": c["previous"], "current": c["current"]} for c in changes]
    assert not recorder.on("st/event/silence_started") and not recorder.on("st/event/silence_ended")
    assert [m.payload for m in recorder.on("st/genre")] == ["classical", "rock"]  # sent when it changes

    # What a subscriber that comes later finds: the retained topics and the discovery configs
    moods = hello["mood_names"]
    kept = retained(mosquitto.port, expect=4 + 4 + len(moods))
    assert kept["st/availability"] == "offline" and kept["st/genre"] == "rock" and kept["st/source"] == "up"
    state = json.loads(kept["st/state"])
    assert state == states[-1]
    configs = {topic: json.loads(payload) for topic, payload in kept.items() if topic.startswith("homeassistant/")}
    objects = ["genre", "taste", *(f"mood_{name}" for name in moods)]
    assert sorted(configs) == sorted([f"homeassistant/sensor/st/{o}/config" for o in objects]
                                     + ["homeassistant/binary_sensor/st/silent/config",
                                        "homeassistant/binary_sensor/st/source/config"])
    device = {"identifiers": ["st"], "name": "st", "manufacturer": "streamtag",
              "model": f"{hello['model']['name']} {hello['model']['version']}", "sw_version": streamtag.__version__}
    for topic, config in configs.items():
        assert config["state_topic"] == ("st/source" if "/source/" in topic else "st/state")
        assert config["availability_topic"] == "st/availability"
        assert (config["payload_available"], config["payload_not_available"]) == ("online", "offline")
        assert config["device"] == device
        assert config["unique_id"].startswith("st_") and config["name"]
    assert len({c["unique_id"] for c in configs.values()}) == len(configs)

    genre = configs["homeassistant/sensor/st/genre/config"]
    assert render(genre["value_template"], state) == "rock"
    assert genre["options"] == [*hello["labels"], "silence", "speech", "unsure"]
    taste = configs["homeassistant/sensor/st/taste/config"]
    assert taste["unit_of_measurement"] == "%"
    assert render(taste["value_template"], state) == str(percent(state["taste"]))
    for name in moods:
        mood = configs[f"homeassistant/sensor/st/mood_{name}/config"]
        assert render(mood["value_template"], state) == str(percent(state["moods"][name]))
    silent = configs["homeassistant/binary_sensor/st/silent/config"]
    assert render(silent["value_template"], state) == silent["payload_off"] == "OFF"
    # while silent, the numbers are unknown to Home Assistant ("None") and the genre says silence
    quiet = {**state, "top": None, "genre": {}, "taste": None, "moods": dict.fromkeys(moods), "silent": True,
             "state": "silence"}
    assert render(genre["value_template"], quiet) == "silence"
    assert render(genre["value_template"], {**state, "top": None, "state": "speech"}) == "speech"
    assert render(taste["value_template"], quiet) == "None"
    assert render(silent["value_template"], quiet) == silent["payload_on"] == "ON"


@pytest.mark.slow
def test_a_killed_run_goes_offline_by_its_last_will(mosquitto, data_dir, model_path):
    recorder = Recorder(mosquitto.port, ("st/availability", "st/state"))
    live = LiveProcess(["--source", str(data_dir / "gtzan" / "samples" / "metal.00000.flac"), *LIVE,
                        "--model", str(model_path), "--mqtt", f"mqtt://127.0.0.1:{mosquitto.port}/st"], env=ENV)
    try:
        if not recorder.wait_for(lambda r: r.on("st/state"), timeout_s=30):
            live.proc.kill()
            raise AssertionError(f"no state from live: {live.proc.communicate()[1]}")
        live.proc.send_signal(signal.SIGKILL)
        killed_s = time.monotonic()
        # "online" came before the first state, so the list is not empty
        assert recorder.wait_for(lambda r: r.on("st/availability")[-1].payload == "offline", timeout_s=5)
        assert recorder.on("st/availability")[-1].at_s - killed_s < 5.0
    finally:
        live.proc.kill()
        live.proc.communicate()
        recorder.close()
    assert [m.payload for m in recorder.on("st/availability")] == ["online", "offline"]
    assert retained(mosquitto.port, expect=1, topics=("st/availability",)) == {"st/availability": "offline"}


@pytest.mark.slow
def test_a_broker_outage_holds_up_no_hop_and_publishing_resumes(mosquitto, data_dir, model_path):
    """mosquitto is stopped for 10 s mid-run and started again on its port, having forgotten everything."""
    live = subprocess.Popen(
        [sys.executable, "-m", "streamtag.cli", "live",
         "--source", str(data_dir / "gtzan" / "samples" / "metal.00000.flac"), *LIVE, "--model", str(model_path),
         "--duration", "26", "--mqtt", f"mqtt://127.0.0.1:{mosquitto.port}/st"],
        env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )
    arrivals: list[tuple[float, dict]] = []
    reader = threading.Thread(target=lambda: arrivals.extend((time.monotonic(), json.loads(line))
                                                             for line in live.stdout), daemon=True)
    reader.start()
    before = Recorder(mosquitto.port, ("st/state",))
    try:
        assert before.wait_for(lambda r: len(r.on("st/state")) >= 3, timeout_s=30)
        mosquitto.stop()
        down_s = time.monotonic()
        time.sleep(10)
        mosquitto.start()
        up_s = time.monotonic()
        after = Recorder(mosquitto.port, ("st/#", "homeassistant/#"))
        try:
            # The client retries 1, 2, 4, 8 s after the loss, then reconnects and publishes everything retained
            assert after.wait_for(lambda r: r.on("st/availability") and len(r.on("st/state")) >= 2, timeout_s=25)
            resumed = after.on("st/state")
        finally:
            after.close()
        live.wait(timeout=30)  # stdout is the reader's
        reader.join(timeout=5)
        err = live.stderr.read()
    finally:
        live.kill()
        before.close()
    assert live.returncode == 0, err
    assert f"mqtt://127.0.0.1:{mosquitto.port}/st: lost the connection (" in err and "tagging goes on" in err
    assert f"publishing to mqtt://127.0.0.1:{mosquitto.port}/st again" in err and "Traceback" not in err

    # Tagging kept its pace: every hop, each about one hop after the one before, through the outage
    scores = [(at, m) for at, m in arrivals if m["type"] == "scores"]
    times = [m["t"] for _, m in scores]
    assert len(times) == int((26 - 3.0) / HOP_S) + 1
    assert all(abs(b - a - HOP_S) < 1e-3 for a, b in zip(times, times[1:], strict=False))
    during = [at for at, _ in scores if down_s <= at <= up_s]
    assert len(during) >= 10 / HOP_S - 2
    gaps = [b[0] - a[0] for a, b in zip(scores, scores[1:], strict=False)]
    assert max(gaps) < HOP_S + 0.5, max(gaps)  # a stall would be a second or more

    # Publishing resumed: the states after the outage are new hops, the retained topics came back
    assert [s.json()["t"] for s in resumed] == sorted(s.json()["t"] for s in resumed)
    newest_before = before.on("st/state")[-1].json()["t"]
    assert resumed[-1].json()["t"] > newest_before + 10
    kept = retained(mosquitto.port, expect=6 + len(arrivals[0][1]["mood_names"]))
    assert kept["st/availability"] == "offline"
    assert json.loads(kept["st/state"])["t"] == times[-1]
    assert "homeassistant/sensor/st/genre/config" in kept and "homeassistant/binary_sensor/st/silent/config" in kept


@pytest.mark.slow
def test_login_from_the_environment_and_a_refused_one(start_broker, tmp_path, data_dir, model_path):
    passwords = tmp_path / "passwords"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "alice", "s3cret"], check=True)
    broker = start_broker("allow_anonymous false", f"password_file {passwords}")
    source = ["--source", str(data_dir / "gtzan" / "samples" / "pop.00000.flac"), "--fast", "--duration", "5"]
    login = {"STREAMTAG_MQTT_USER": "alice", "STREAMTAG_MQTT_PASSWORD": "s3cret"}
    rc, out, err = run_cli(["live", *source, *LIVE, "--model", str(model_path),
                            "--mqtt", f"mqtt://127.0.0.1:{broker.port}/st"], env={**ENV, **login})
    assert rc == 0, err
    assert "s3cret" not in err and "WARNING" not in err
    kept = retained(broker.port, expect=3, topics=("st/#",), username="alice", password="s3cret")
    last = [m for m in lines_of(out) if m["type"] == "scores"][-1]
    assert json.loads(kept["st/state"])["t"] == last["t"] and kept["st/availability"] == "offline"

    # A password in the URL wins over the environment's; refused, it is reported, and tagging goes on
    rc, out, err = run_cli(["live", *source, *LIVE, "--model", str(model_path),
                            "--mqtt", f"mqtt://alice:wrong@127.0.0.1:{broker.port}/st"], env={**ENV, **login})
    assert rc == 0, err
    assert (f"mqtt://alice@127.0.0.1:{broker.port}/st: the broker refused the connection ([code:135] Not authorized); "
            "check the user name and password (in the URL, or STREAMTAG_MQTT_USER and STREAMTAG_MQTT_PASSWORD); "
            "tagging goes on") in err
    assert "wrong" not in err
    assert len([m for m in lines_of(out) if m["type"] == "scores"]) == 4


@pytest.mark.slow
def test_tls_with_the_server_certificate_checked(start_broker, tmp_path, data_dir, model_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    tls_port = free_port()
    broker = start_broker(f"listener {tls_port} 127.0.0.1", f"certfile {cert}", f"keyfile {key}")
    source = ["--source", str(data_dir / "gtzan" / "samples" / "pop.00000.flac"), "--fast", "--duration", "5"]
    url = f"mqtts://localhost:{tls_port}/st"
    rc, out, err = run_cli(["live", *source, *LIVE, "--model", str(model_path), "--mqtt", url],
                           env={**ENV, "SSL_CERT_FILE": str(cert)})
    assert rc == 0, err
    kept = retained(broker.port, expect=3, topics=("st/#",))  # read back on the plain listener
    assert json.loads(kept["st/state"])["t"] == [m for m in lines_of(out) if m["type"] == "scores"][-1]["t"]

    # Without the certificate among the trusted ones, the broker is not trusted
    env = {k: v for k, v in ENV.items() if k != "SSL_CERT_FILE"}
    rc, out, err = run_cli(["live", *source, *LIVE, "--model", str(model_path), "--mqtt", url.replace("/st", "/x")],
                           env=env)
    assert rc == 0, err
    assert "CERTIFICATE_VERIFY_FAILED" in err and "tagging goes on" in err
    assert "x/state" not in retained(broker.port, expect=1, topics=("x/#",), timeout_s=1)


def test_a_like_from_the_feed_is_an_mqtt_event(mosquitto, data_dir, model_path, tmp_path):
    """A feed client likes what plays: the client gets its ack, and MQTT gets PREFIX/event/like."""
    from websockets.sync.client import connect

    recorder = Recorder(mosquitto.port, ("st/event/#",))
    env = {**ENV, "STREAMTAG_HOME": str(tmp_path / "home")}  # a profile of its own, never the user's
    live = subprocess.Popen(
        [sys.executable, "-m", "streamtag.cli", "live", "--source", str(data_dir / "gtzan/samples/rock.00000.flac"),
         "--no-tui", "--json", "--provider", "cpu", "--model", str(model_path), "--ws", "127.0.0.1:0",
         "--duration", "12", "--mqtt", f"mqtt://127.0.0.1:{mosquitto.port}/st"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )
    try:
        url = None
        while url is None:
            line = live.stderr.readline()
            assert line, "streamtag live ended before serving its feed"
            if line.startswith("streamtag: feed ws://"):
                url = line.split()[2]
        with connect(url) as ws:
            while json.loads(ws.recv(timeout=20))["type"] != "scores":  # something heard: a label can cover it
                pass
            ws.send(json.dumps({"type": "label", "value": "like"}))
            while (ack := json.loads(ws.recv(timeout=20)))["type"] != "ack":
                pass
        assert ack["ok"] is True, ack
        assert recorder.wait_for(lambda r: r.on("st/event/like"), timeout_s=10)
        event = json.loads(recorder.on("st/event/like")[0].payload)
        assert event["taste_source"].startswith("personal (1 label") and event["t"] >= 3.0
        assert not recorder.on("st/event/dislike")
        live.wait(timeout=30)
    finally:
        live.kill()
        recorder.close()


def test_a_lost_source_is_retained_as_down_with_events_until_it_is_back(mosquitto):
    """live's source_down and source_up events (tests/live makes them from a killed sound server) through the sink
    to the broker: PREFIX/source says down while the source is away, and each change is an event."""
    hello = {"type": "hello", "model": {"name": "streamtag-crnn", "version": "2.3.0"}, "labels": ["rock"],
             "mood_names": ["calmness"]}
    why = "loopback: pulse (null.monitor) stopped delivering audio (unplugged, or the server quit)"
    recorder = Recorder(mosquitto.port, ("st/source", "st/event/#"))

    async def run(events) -> None:
        sink = MqttSink(parse_mqtt_url(f"mqtt://127.0.0.1:{mosquitto.port}/st"), hello=hello)
        await sink.start()
        for event in events:
            sink.publish(event)
        await sink.close()  # at once: even before it has connected, it delivers what it was given

    try:
        asyncio.run(run([source_event(seq=4, t=9.5, up=False, detail=why)]))
        assert retained(mosquitto.port, expect=1, topics=("st/source",)) == {"st/source": "down"}
        asyncio.run(run([source_event(seq=4, t=9.5, up=False, detail=why),
                         source_event(seq=4, t=9.5, up=True, detail="loopback: pulse (null.monitor)")]))
        assert recorder.wait_for(lambda r: len(r.on("st/event/source_up")) == 1, timeout_s=5)
    finally:
        recorder.close()
    assert retained(mosquitto.port, expect=1, topics=("st/source",)) == {"st/source": "up"}
    downs = [m.json() for m in recorder.on("st/event/source_down")]
    assert downs == [{"t": 9.5, "detail": why}] * 2
    assert recorder.on("st/event/source_up")[0].json() == {"t": 9.5, "detail": "loopback: pulse (null.monitor)"}
    # each run starts up, but a retained topic sends only its latest payload: down for the first run, up for the
    # second, whose down came and went before it was sent (the events keep both)
    assert [m.payload for m in recorder.on("st/source")] == ["down", "up"]
