"""The websocket feed with a real server and real clients on 127.0.0.1; every message checked against the schema."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from streamtag.core.messages import SCHEMA_VERSION, TOP_TAGS, event_message, hello_message, scores_message, top_tags
from streamtag.errors import FeedError, StreamtagError
from streamtag.feed import Feed, FeedConfig, parse_address

REPO = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO / "docs" / "feed.schema.json"
LABELS = ("classical", "electronic", "pop", "rock")
MOODS = ("calmness", "power")
TAGS = ("rock", "pop", "jazz", "Hip-Hop", "indie", "chillout")
TAG_PROBABILITIES = [0.300004, 0.1, 0.05, 0.623456, 0.41, 0.2]  # Hip-Hop, indie, rock, chillout, pop; not jazz
TIMEOUT_S = 5.0


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def hello(tag_names=TAGS):
    return hello_message(
        model_name="test", model_version="1", labels=LABELS, mood_names=MOODS, tag_names=tag_names,
        sample_rate=22050, window_s=3.0, hop_s=0.5, provider="cpu", taste_source="crowd", source="test",
    )


def scores(seq: int, *, silent: bool = False, pad_labels: int = 0, tags=None):
    """A hop's message; ``tags`` None is a model without tags, else the probabilities of ``TAGS``."""
    labels = LABELS + tuple(f"extra-label-{i:05d}" for i in range(pad_labels))
    genre = np.full(len(labels), 1.0 / len(labels))
    tag_names, tags = ((), np.zeros(0)) if tags is None else (TAGS, np.asarray(tags))
    return scores_message(
        seq=seq, t=3.0 + 0.5 * seq, window_start_s=0.5 * seq, window_end_s=3.0 + 0.5 * seq, labels=labels,
        mood_names=MOODS, tag_names=tag_names, genre=None if silent else genre, top=None if silent else 0,
        taste=None if silent else 0.25, moods=None if silent else [0.1, 0.9], tags=None if silent else tags,
        level_dbfs=-70.0 if silent else -20.0, silent=silent, latency_ms=4.2,
    )


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def started(**kw) -> Feed:
    on_label = kw.pop("on_label", None)
    feed = Feed(FeedConfig(port=0, **kw), hello=hello(), on_label=on_label)
    await feed.start()
    return feed


async def recv_json(ws):
    return json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT_S))


async def wait_for_clients(feed: Feed, n: int):
    for _ in range(500):
        if feed.client_count >= n:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"expected {n} clients, have {feed.client_count}")


def test_hello_then_scores_and_events_all_valid(validator):
    async def main():
        feed = await started()
        try:
            async with connect(feed.url) as ws:
                first = await recv_json(ws)
                await wait_for_clients(feed, 1)
                feed.publish(scores(0, tags=TAG_PROBABILITIES))
                feed.publish(event_message(seq=0, t=3.0, previous=None, current="classical"))
                feed.publish(scores(1, silent=True, tags=TAG_PROBABILITIES))
                feed.publish(event_message(seq=1, t=3.5, previous="classical", current=None))
                return [first] + [await recv_json(ws) for _ in range(4)]
        finally:
            await feed.close()

    messages = run(main())
    for message in messages:
        validator.validate(message)
    assert [m["type"] for m in messages] == ["hello", "scores", "event", "scores", "event"]
    assert messages[0]["labels"] == list(LABELS) and messages[0]["schema_version"] == SCHEMA_VERSION
    assert messages[0]["tag_names"] == list(TAGS)
    assert messages[1]["genre"] == {label: 0.25 for label in LABELS}
    assert messages[1]["top"] == "classical" and messages[1]["dropped"] == 0
    assert [tag["name"] for tag in messages[1]["tags"]] == ["Hip-Hop", "indie", "rock", "chillout", "pop"]
    assert messages[3]["silent"] and messages[3]["top"] is None and messages[3]["genre"] == {}
    assert messages[3]["tags"] == []


def test_scores_carry_the_top_five_tags_most_probable_first_and_rounded(validator):
    message = scores(0, tags=TAG_PROBABILITIES)
    validator.validate(message)
    assert message["tags"] == [
        {"name": "Hip-Hop", "p": 0.6235},
        {"name": "indie", "p": 0.41},
        {"name": "rock", "p": 0.3},
        {"name": "chillout", "p": 0.2},
        {"name": "pop", "p": 0.1},
    ]
    assert scores(1, silent=True, tags=TAG_PROBABILITIES)["tags"] == []
    without_tags = scores(2)
    validator.validate(without_tags)
    assert without_tags["tags"] == []
    validator.validate(hello(tag_names=()))


def test_top_tags_keeps_the_models_order_for_equal_probabilities_and_checks_lengths():
    assert top_tags(("a", "b", "c", "d"), [0.5, 0.7, 0.5, 0.1], k=3) == [
        {"name": "b", "p": 0.7}, {"name": "a", "p": 0.5}, {"name": "c", "p": 0.5}]
    assert top_tags(("a", "b"), [0.2, 0.4]) == [{"name": "b", "p": 0.4}, {"name": "a", "p": 0.2}]  # fewer than 5
    assert top_tags(("a", "b"), None) == []
    with pytest.raises(ValueError):
        top_tags(("a", "b"), [0.2, 0.4, 0.6])


def test_the_schema_version_is_written_the_same_everywhere():
    schema = json.loads(SCHEMA_PATH.read_text())
    assert schema["$defs"]["hello"]["properties"]["schema_version"] == {"const": SCHEMA_VERSION}
    assert schema["title"].endswith(f"schema version {SCHEMA_VERSION}")
    feed_js = (REPO / "streamtag" / "web" / "feed.js").read_text()
    assert re.findall(r"const SCHEMA_VERSION = (\d+);", feed_js) == [str(SCHEMA_VERSION)]
    feed_md = (REPO / "docs" / "feed.md").read_text()
    assert re.findall(r"`schema_version` is (\d+)", feed_md) == [str(SCHEMA_VERSION)]
    assert re.findall(r'"schema_version": (\d+)', feed_md) == [str(SCHEMA_VERSION)]
    assert schema["$defs"]["scores"]["properties"]["tags"]["maxItems"] == TOP_TAGS


def test_schema_rejects_malformed_messages(validator):
    bad = scores(0)
    bad["genre"]["rock"] = 1.5
    assert not validator.is_valid(bad)
    silent_with_tags = scores(0)
    silent_with_tags["silent"] = True
    assert not validator.is_valid(silent_with_tags)
    assert not validator.is_valid({"type": "scores"})
    assert not validator.is_valid({**hello(), "provider": "tpu"})
    tagged = scores(0, tags=TAG_PROBABILITIES)
    assert not validator.is_valid({**scores(0, silent=True), "tags": tagged["tags"]})
    assert not validator.is_valid({**tagged, "tags": tagged["tags"] + [{"name": "jazz", "p": 0.05}]})  # six
    assert not validator.is_valid({**tagged, "tags": [{"name": "rock", "p": 1.5}]})
    assert not validator.is_valid({**tagged, "tags": [{"name": "rock"}]})
    assert not validator.is_valid({k: v for k, v in tagged.items() if k != "tags"})  # required from version 2
    assert not validator.is_valid({k: v for k, v in hello().items() if k != "tag_names"})
    assert not validator.is_valid({**hello(), "schema_version": 1})


def test_a_burst_larger_than_the_queue_is_dropped_oldest_first_and_reported(validator):
    async def main():
        feed = await started(queue_messages=4)
        try:
            async with connect(feed.url) as ws:
                await recv_json(ws)  # hello
                await wait_for_clients(feed, 1)
                for seq in range(10):  # no await in between: the sender cannot run, the queue overflows
                    feed.publish(scores(seq))
                got = [await recv_json(ws) for _ in range(4)]
                feed.publish(scores(10))
                got.append(await recv_json(ws))
                return got
        finally:
            await feed.close()

    got = run(main())
    for m in got:
        validator.validate(m)
    assert [m["seq"] for m in got] == [6, 7, 8, 9, 10]  # the newest four survive
    assert [m["dropped"] for m in got] == [6, 6, 6, 6, 6]


async def stalled_client(port: int):
    """A websocket client that completes the handshake and then never reads a byte."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window: the server's buffers fill sooner
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    status = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT_S)
    assert status.startswith(b"HTTP/1.1 101"), status
    return writer


def test_a_client_that_never_reads_does_not_stall_the_pipeline_or_other_clients():
    n_messages = 200  # ~40 KB each: 8 MB, twice what the kernel buffers for the stalled client (4 MB send buffer)

    async def main():
        feed = await started(queue_messages=8, stall_timeout_s=120)  # stays connected for the whole test
        try:
            stalled = await stalled_client(feed.port)
            async with connect(feed.url, max_size=2**22) as ws:
                await recv_json(ws)
                await wait_for_clients(feed, 2)
                received = []
                publish_s = []

                async def reader():
                    while len(received) < n_messages:
                        received.append(json.loads(await ws.recv()))

                task = asyncio.create_task(reader())
                for seq in range(n_messages):
                    message = scores(seq, pad_labels=1500)
                    t0 = time.perf_counter()
                    feed.publish(message)
                    publish_s.append(time.perf_counter() - t0)
                    while len(received) < seq + 1 and not task.done():  # a pipeline hop: the good client keeps up
                        await asyncio.sleep(0.001)
                await asyncio.wait_for(task, TIMEOUT_S)
                stalled_state = [d for d in feed.dropped_per_client if d > 0]
            stalled.close()
            return received, publish_s, stalled_state
        finally:
            await feed.close()

    received, publish_s, stalled_state = run(main())
    assert [m["seq"] for m in received] == list(range(n_messages))
    assert all(m["dropped"] == 0 for m in received)
    # publish never waits for a socket (it is two deque appends): had it waited for the stalled client, the loop
    # above would never have finished. The median excludes the scheduler's pauses on a loaded machine.
    assert float(np.median(publish_s)) < 0.001
    assert len(stalled_state) == 1 and stalled_state[0] > n_messages // 4  # only the stalled client lost any


def test_label_messages_reach_the_callback_and_are_acknowledged(validator):
    calls = []

    def on_label(value: str) -> str:
        calls.append(value)
        if len(calls) == 3:
            raise StreamtagError("profile is read-only")
        return f"{value}d: rock, 3 labels"

    async def main():
        feed = await started(on_label=on_label)
        try:
            async with connect(feed.url) as ws:
                await recv_json(ws)
                answers = []
                for text in [
                    {"type": "label", "value": "like"},
                    {"type": "label", "value": "dislike"},
                    {"type": "label", "value": "like"},
                    {"type": "label", "value": "meh"},
                    {"type": "subscribe"},
                ]:
                    await ws.send(json.dumps(text))
                    answers.append(await recv_json(ws))
                await ws.send("not json")
                answers.append(await recv_json(ws))
                return answers
        finally:
            await feed.close()

    answers = run(main())
    for a in answers:
        validator.validate(a)
    assert calls == ["like", "dislike", "like"]
    assert answers[0] == {"type": "ack", "ok": True, "value": "like", "message": "liked: rock, 3 labels"}
    assert answers[1]["message"] == "disliked: rock, 3 labels"
    assert answers[2] == {"type": "ack", "ok": False, "value": "like", "error": "profile is read-only"}
    assert not answers[3]["ok"] and "like, dislike" in answers[3]["error"]
    assert not answers[4]["ok"] and not answers[5]["ok"]


def test_labels_without_a_callback_are_refused_politely():
    async def main():
        feed = await started()
        try:
            async with connect(feed.url) as ws:
                await recv_json(ws)
                await ws.send(json.dumps({"type": "label", "value": "like"}))
                return await recv_json(ws)
        finally:
            await feed.close()

    answer = run(main())
    assert answer["ok"] is False and "does not take labels" in answer["error"]


def test_oversized_incoming_message_closes_only_that_connection():
    async def main():
        feed = await started(max_message_bytes=1024)
        try:
            async with connect(feed.url) as bad, connect(feed.url) as good:
                await recv_json(bad)
                await recv_json(good)
                await bad.send("x" * 5000)
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(bad.recv(), TIMEOUT_S)
                await wait_for_clients(feed, 1)
                feed.publish(scores(0))
                return closed.value.rcvd.code, await recv_json(good)
        finally:
            await feed.close()

    code, message = run(main())
    assert code == 1009  # message too big
    assert message["seq"] == 0


def test_client_limit():
    async def main():
        feed = await started(max_clients=1)
        try:
            async with connect(feed.url) as ws:
                await recv_json(ws)
                await wait_for_clients(feed, 1)
                with pytest.raises(InvalidStatus) as refused:
                    async with connect(feed.url):
                        pass
                return refused.value.response.status_code
        finally:
            await feed.close()

    assert run(main()) == 503


async def silent_client(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A websocket client that completes the handshake and then never reads again: it answers no ping."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    await writer.drain()
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    return reader, writer


def test_clients_that_never_read_give_their_slots_to_a_new_one():
    async def main():
        feed = await started(max_clients=3)
        try:
            silent = [await silent_client(feed.port) for _ in range(2)]
            async with connect(feed.url) as reading:
                await recv_json(reading)
                await wait_for_clients(feed, 3)
                started_s = time.monotonic()
                async with connect(feed.url) as newcomer:  # every slot was taken
                    waited_s = time.monotonic() - started_s
                    first = await recv_json(newcomer)
                    count = feed.client_count
                    feed.publish(scores(0))
                    seen = [(await recv_json(ws))["seq"] for ws in (reading, newcomer)]
            for _, writer in silent:
                writer.close()
            return first["type"], count, seen, waited_s
        finally:
            await feed.close()

    first, count, seen, waited_s = run(main())
    assert first == "hello" and count == 2  # the two silent clients were dropped; the reading one kept its slot
    assert seen == [0, 0]
    assert waited_s < 3.0  # one round of pings, 1 s at most, not a stall timeout


def test_busy_port_is_a_feed_error():
    async def main():
        first = await started()
        try:
            second = Feed(FeedConfig(port=first.port), hello=hello())
            with pytest.raises(FeedError, match=rf"127.0.0.1:{first.port}: the port is in use.*--ws HOST:PORT"):
                await second.start()
        finally:
            await first.close()

    run(main())


def test_parse_address():
    assert parse_address("127.0.0.1:9000") == ("127.0.0.1", 9000)
    assert parse_address(":9000") == ("127.0.0.1", 9000)
    assert parse_address("9000") == ("127.0.0.1", 9000)
    assert parse_address("[::1]:8765") == ("::1", 8765)
    with pytest.raises(FeedError):
        parse_address("localhost:http")
    with pytest.raises(FeedError):
        parse_address("127.0.0.1:70000")


def http_get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def test_http_pages_whitelist_and_no_traversal(tmp_path):
    web = tmp_path / "web"
    web.mkdir()
    (web / "dashboard.html").write_text("<h1>dash</h1>")
    (web / "overlay.html").write_text("<h1>overlay</h1>")
    (web / "app.js").write_text("1;")
    (web / "style.css").write_text("a{}")
    (web / "notes.txt").write_text("not served")
    (tmp_path / "secret.html").write_text("secret")
    (web / "link.html").symlink_to(tmp_path / "secret.html")

    async def main():
        feed = await started(web_dir=web)
        try:
            base = f"http://127.0.0.1:{feed.port}"
            paths = ["/", "/overlay", "/static/app.js", "/static/style.css", "/static/notes.txt",
                     "/static/../secret.html", "/static/%2e%2e/secret.html", "/static/..%2fsecret.html",
                     "/static/link.html", "/static/.hidden.js", "/nope", "/?x=1"]
            return {p: await asyncio.to_thread(http_get, base + p) for p in paths}
        finally:
            await feed.close()

    got = run(main())
    assert got["/"] == (200, "text/html; charset=utf-8", b"<h1>dash</h1>")
    assert got["/?x=1"][0] == 200
    assert got["/overlay"] == (200, "text/html; charset=utf-8", b"<h1>overlay</h1>")
    assert got["/static/app.js"][:2] == (200, "text/javascript; charset=utf-8")
    assert got["/static/style.css"][:2] == (200, "text/css; charset=utf-8")
    for path in ["/static/notes.txt", "/static/../secret.html", "/static/%2e%2e/secret.html",
                 "/static/..%2fsecret.html", "/static/link.html", "/static/.hidden.js", "/nope"]:
        assert got[path][0] == 404, path
        assert b"secret" not in got[path][2]


def test_http_serves_the_shipped_pages_when_present():
    shipped = Path(__file__).resolve().parents[2] / "streamtag" / "web" / "dashboard.html"
    if not shipped.is_file():
        pytest.skip("streamtag/web/dashboard.html is not written yet (issue 5)")

    async def main():
        feed = await started()
        try:
            return await asyncio.to_thread(http_get, f"http://127.0.0.1:{feed.port}/")
        finally:
            await feed.close()

    status, ctype, body = run(main())
    assert status == 200 and ctype.startswith("text/html") and body == shipped.read_bytes()


def test_a_stalled_client_is_disconnected_after_the_stall_timeout():
    async def main():
        feed = await started(queue_messages=8, stall_timeout_s=1.0)
        try:
            stalled = await stalled_client(feed.port)
            async with connect(feed.url, max_size=2**22) as ws:
                await recv_json(ws)
                await wait_for_clients(feed, 2)
                t0 = asyncio.get_running_loop().time()
                while feed.client_count == 2 and asyncio.get_running_loop().time() - t0 < 20:
                    feed.publish(scores(0, pad_labels=1500))  # ~40 KB a message, 0.8 MB/s
                    await asyncio.sleep(0.05)
                    while True:  # the good client keeps reading
                        try:
                            await asyncio.wait_for(ws.recv(), 0.001)
                        except TimeoutError:
                            break
                stalled_for = asyncio.get_running_loop().time() - t0
                connected = feed.client_count
            stalled.close()
            return connected, stalled_for
        finally:
            await feed.close()

    connected, stalled_for = run(main())
    assert connected == 1  # the reading client stays
    assert stalled_for < 15  # kernel buffers (~4 MB here) fill in ~5 s at this rate, then 1 s of stall
