"""`live --osc` to a real python-osc server on 127.0.0.1, and --osc's address."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time

import pytest
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_message import OscMessage
from pythonosc.osc_server import ThreadingOSCUDPServer

from streamtag.core.messages import event_message, source_event
from streamtag.errors import StreamtagError
from streamtag.sinks.osc import OscConfig, OscSink, parse_osc_address
from tests.live.conftest import run_cli

pytestmark = pytest.mark.timeout(60)

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def test_addresses():
    assert parse_osc_address("127.0.0.1:9000") == OscConfig(host="127.0.0.1", port=9000)
    assert parse_osc_address("[::1]:57120") == OscConfig(host="::1", port=57120)
    assert parse_osc_address("mixer.local:8000") == OscConfig(host="mixer.local", port=8000)
    for bad in ("9000", ":9000", "host:", "host:0", "host:70000", "host:port"):
        with pytest.raises(StreamtagError, match="--osc expects HOST:PORT"):
            parse_osc_address(bad)


class RecordingServer(ThreadingOSCUDPServer):
    """Each datagram in the order it arrived: verify_request runs on the serving thread, before the handler's own
    thread starts (those may run in any order)."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.datagrams: list[bytes] = []

    def verify_request(self, request, client_address) -> bool:
        self.datagrams.append(request[0])
        return super().verify_request(request, client_address)


@pytest.mark.slow
def test_each_hop_reaches_an_osc_server(data_dir, model_path):
    handled: list[str] = []
    dispatcher = Dispatcher()
    dispatcher.set_default_handler(lambda address, *args: handled.append(address))
    server = RecordingServer(("127.0.0.1", 0), dispatcher)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        rc, out, err = run_cli(["live", "--source", str(data_dir / "gtzan" / "samples" / "rock.00000.flac"),
                                "--duration", "6", "--no-tui", "--json", "--no-ws", "--no-taste", "--provider", "cpu",
                                "--model", str(model_path), "--osc", f"127.0.0.1:{server.server_address[1]}"],
                               env=ENV)
        time.sleep(0.3)  # the last datagrams' handler threads
    finally:
        server.shutdown()
        server.server_close()
    assert rc == 0, err
    assert f"streamtag: osc udp://127.0.0.1:{server.server_address[1]}/streamtag" in err
    messages = [json.loads(line) for line in out.splitlines()]
    hello, scores = messages[0], [m for m in messages if m["type"] == "scores"]
    assert len(scores) == 6  # windows ending at 3.0, 3.51, ..., 5.55 s

    received = [OscMessage(datagram) for datagram in server.datagrams]
    assert sorted(handled) == sorted(m.address for m in received)  # the server dispatched each one
    hops: list[dict[str, tuple]] = [{}]
    for message in received:  # /streamtag/silent closes each hop's set
        hops[-1][message.address] = tuple(message.params)
        if message.address == "/streamtag/silent":
            hops.append({})
    assert hops.pop() == {}
    assert len(hops) == len(scores)
    moods = hello["mood_names"]
    for hop, message in zip(hops, scores, strict=True):
        assert sorted(hop) == sorted(["/streamtag/genre", "/streamtag/genre/vector", "/streamtag/taste",
                                      "/streamtag/state", "/streamtag/silent",
                                      *(f"/streamtag/mood/{name}" for name in moods)])
        assert hop["/streamtag/state"] == ("music",)
        top, p = hop["/streamtag/genre"]
        assert top == message["top"] and p == pytest.approx(message["genre"][top], rel=1e-6)  # OSC floats: 32-bit
        assert hop["/streamtag/genre/vector"] == pytest.approx([message["genre"][label] for label in hello["labels"]],
                                                               rel=1e-6)
        assert hop["/streamtag/taste"] == pytest.approx((message["taste"],), rel=1e-6)
        for name in moods:
            assert hop[f"/streamtag/mood/{name}"] == pytest.approx((message["moods"][name],), rel=1e-6)
        assert hop["/streamtag/silent"] == (0,)


def test_the_source_going_down_and_coming_back_reaches_an_osc_server():
    server = RecordingServer(("127.0.0.1", 0), Dispatcher())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    async def publish() -> None:
        sink = OscSink(OscConfig(host="127.0.0.1", port=server.server_address[1]),
                       hello={"labels": ["rock"], "mood_names": ["calmness"]})
        await sink.start()
        sink.publish(source_event(seq=3, t=4.5, up=False, detail="the sound server went away"))
        sink.publish(event_message(seq=3, t=4.5, previous="rock", current="pop"))  # no OSC message of its own
        sink.publish(source_event(seq=3, t=4.5, up=True, detail="pulse default"))
        await sink.close()
        assert sink.dropped == 0

    try:
        asyncio.run(publish())
        deadline = time.monotonic() + 5
        while len(server.datagrams) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        server.shutdown()
        server.server_close()
    received = [(m.address, m.params) for m in map(OscMessage, server.datagrams)]
    assert received == [("/streamtag/source", ["down", "the sound server went away"]),
                        ("/streamtag/source", ["up", "pulse default"])]
