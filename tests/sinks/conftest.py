"""A real MQTT broker for the sink tests: Debian's ``mosquitto`` on a free port of 127.0.0.1, with a config written
into the test's tmp_path (no persistence, so a restarted broker has forgotten everything retained), and a paho
client that records what it receives."""

from __future__ import annotations

import getpass
import json
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import pytest
import soundfile

BROKER_START_TIMEOUT_S = 10.0
CLIP_S = 6  # seconds of each clip in two_genres.wav


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Mosquitto:
    """One broker; ``stop`` and ``start`` again keep its port (the outage test)."""

    config: Path
    port: int
    log: Path
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(["mosquitto", "-c", str(self.config)], stdout=log, stderr=log)
        deadline = time.monotonic() + BROKER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"mosquitto exited with {self.proc.returncode}: {self.log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"mosquitto did not listen on {self.port}: {self.log.read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture
def start_broker(tmp_path):
    """``start_broker(*config_lines)`` -> a started Mosquitto listening on 127.0.0.1; stopped at the end."""
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto mosquitto-clients)")
    brokers: list[Mosquitto] = []

    def start(*lines: str, port: int | None = None) -> Mosquitto:
        port = port or free_port()
        config = tmp_path / f"mosquitto-{port}.conf"
        # As root, mosquitto would switch to the user "mosquitto", who cannot read the test's tmp_path: stay as us.
        config.write_text("\n".join([f"listener {port} 127.0.0.1", "allow_anonymous true", "persistence false",
                                     f"user {getpass.getuser()}", *lines]) + "\n")
        broker = Mosquitto(config=config, port=port, log=tmp_path / f"mosquitto-{port}.log")
        brokers.append(broker)
        broker.start()
        return broker

    yield start
    for broker in brokers:
        broker.stop()


@pytest.fixture
def mosquitto(start_broker) -> Mosquitto:
    return start_broker()


@dataclass(frozen=True)
class Received:
    at_s: float  # time.monotonic() on arrival
    topic: str
    payload: str
    retain: bool

    def json(self):
        return json.loads(self.payload)


@dataclass
class Recorder:
    """A paho client subscribed to ``topics`` (QoS 1) that keeps every message it receives."""

    port: int
    topics: tuple[str, ...] = ("#",)
    username: str | None = None
    password: str | None = None
    messages: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        if self.username:
            self._client.username_pw_set(self.username, self.password)
        self._client.on_message = self._on_message
        self._client.connect("127.0.0.1", self.port)
        self._client.subscribe([(topic, 1) for topic in self.topics])
        self._client.loop_start()

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self.messages.append(Received(time.monotonic(), message.topic, message.payload.decode(),
                                          bool(message.retain)))

    def on(self, topic: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def wait_for(self, condition, *, timeout_s: float) -> bool:
        """Poll ``condition(self)`` until it is true or the timeout passes."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition(self):
                return True
            time.sleep(0.02)
        return condition(self)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def retained(port: int, *, expect: int, topics: tuple[str, ...] = ("#",), timeout_s: float = 5.0,
             **login) -> dict[str, str]:
    """What the broker retains under ``topics``, read by a fresh subscriber: topic -> payload, once ``expect``
    topics have arrived (or the timeout has passed)."""
    recorder = Recorder(port, topics, **login)
    try:
        recorder.wait_for(lambda r: len({m.topic for m in r.messages}) >= expect, timeout_s=timeout_s)
        time.sleep(0.2)  # anything beyond what was expected comes with it
        with recorder._lock:
            assert all(m.retain for m in recorder.messages)
            return {m.topic: m.payload for m in recorder.messages}
    finally:
        recorder.close()


@pytest.fixture
def two_genres(tmp_path, data_dir) -> Path:
    """6 s of a classical clip, then 6 s of a metal one (which the shipped model calls rock): the top genre changes."""
    samples = data_dir / "gtzan" / "samples"
    parts = []
    for name in ("classical.00000.flac", "metal.00000.flac"):
        audio, rate = soundfile.read(samples / name, dtype="float32")
        parts.append(audio[: CLIP_S * rate])
    path = tmp_path / "two-genres.wav"
    soundfile.write(path, np.concatenate(parts), rate)
    return path
