"""What the red team found in the feed: foreign pages, odd requests, non-finite numbers, label floods.

Real server on 127.0.0.1, real clients: the websockets client where it can say what is tested, else HTTP written
out by hand (two Host headers, HEAD) on a plain socket.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.request

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from streamtag.core.levels import SILENCE_FLOOR_DBFS
from streamtag.core.messages import LEVEL_CEILING_DBFS, scores_message
from streamtag.feed import LABEL_BURST, LABEL_INTERVAL_S, TokenBucket

from .test_feed import (  # noqa: F401
    LABELS,
    MOODS,
    TAGS,
    TIMEOUT_S,
    recv_json,
    run,
    scores,
    started,
    validator,
)

NAN = float("nan")
INF = float("inf")


async def http_request(port: int, method: str, path: str, headers: list[tuple[str, str]]):
    """One HTTP/1.1 request as written here, byte for byte -> (status, headers, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        lines = [f"{method} {path} HTTP/1.1", *(f"{name}: {value}" for name, value in headers)]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), TIMEOUT_S)  # the feed closes after every plain response
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    response_headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        response_headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), response_headers, body


def upgrade_headers(host: str) -> list[tuple[str, str]]:
    return [("Host", host), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]


def page_status(port: int, host: str) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


async def upgrade_status(url: str, origin: str | None) -> int:
    """101 when the feed takes the websocket client, else the HTTP status it answered."""
    try:
        async with connect(url, origin=origin) as ws:
            assert (await recv_json(ws))["type"] == "hello"
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


# -- who may connect ----------------------------------------------------------------------------------------------


def test_origin_null_is_refused():
    """Sandboxed iframes and file:// pages send ``Origin: null``: a browser page, but nobody's."""
    calls = []

    async def main():
        feed = await started(on_label=calls.append)
        try:
            url = f"ws://127.0.0.1:{feed.port}/"
            return [await upgrade_status(url, origin) for origin in ("null", "file://", f"http://127.0.0.1:{feed.port}")]
        finally:
            await feed.close()

    assert run(main()) == [403, 403, 101]
    assert calls == []


def test_host_and_origin_names_are_compared_exactly_not_by_prefix():
    async def main():
        feed = await started()
        port = feed.port
        url = f"ws://127.0.0.1:{port}/"
        try:
            origins = {
                origin: await upgrade_status(url, origin)
                for origin in (
                    f"http://127.0.0.1.evil.example:{port}", "http://localhost.evil.example", "http://127.evil.example",
                    f"http://127.0.0.1:{port}", f"http://localhost:{port}", "http://127.0.0.2:3000",
                    "http://[::1]:3000",
                )
            }
            hosts = {
                host: await asyncio.to_thread(page_status, port, host)
                for host in (
                    f"127.0.0.1.evil.example:{port}", f"evil.example:{port}", "evil.example", f"127.1:{port}",
                    f"localhost:{port}", f"127.0.0.1:{port}", f"LocalHost:{port}", f"127.0.0.2:{port}",
                    f"[::1]:{port}",
                )
            }
            upgrade = (await http_request(port, "GET", "/", upgrade_headers(f"127.0.0.1.evil.example:{port}")))[0]
            return origins, hosts, upgrade
        finally:
            await feed.close()

    origins, hosts, upgrade = run(main())
    assert list(origins.values()) == [403, 403, 403, 101, 101, 101, 101], origins
    assert list(hosts.values()) == [403, 403, 403, 403, 200, 200, 200, 200, 200], hosts
    assert upgrade == 403  # the websocket upgrade is checked like the pages


def test_names_the_user_allows_are_accepted_and_no_others():
    async def main():
        feed = await started(allowed_hosts=("Streamtag.LAN",))
        port = feed.port
        try:
            return (
                await asyncio.to_thread(page_status, port, f"streamtag.lan:{port}"),
                await asyncio.to_thread(page_status, port, f"other.lan:{port}"),
                await asyncio.to_thread(page_status, port, f"streamtag.lan.evil.example:{port}"),
                await upgrade_status(f"ws://127.0.0.1:{port}/", f"http://streamtag.lan:{port}"),
                await upgrade_status(f"ws://127.0.0.1:{port}/", "http://other.lan"),
            )
        finally:
            await feed.close()

    assert run(main()) == (200, 403, 403, 101, 403)


@pytest.mark.parametrize(
    "extra",
    [
        [("Host", "evil.example")],
        [("Origin", "http://127.0.0.1"), ("Origin", "https://evil.example")],
        [("Upgrade", "websocket"), ("Upgrade", "websocket")],
    ],
    ids=["two Host", "two Origin", "two Upgrade"],
)
def test_repeated_headers_are_a_bad_request_not_a_crash(caplog, extra):
    async def main():
        feed = await started()
        try:
            headers = [("Host", f"127.0.0.1:{feed.port}"), *extra]
            return await http_request(feed.port, "GET", "/", headers)
        finally:
            await feed.close()

    status, _, body = run(main())
    assert status == 400
    assert b"Traceback" not in body and b"server log" not in body
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_unparsable_host_or_origin_is_a_bad_request_not_a_crash(caplog):
    async def main():
        feed = await started()
        port = feed.port
        try:
            return [
                (await http_request(port, "GET", "/", headers))[0]
                for headers in ([("Host", "[zz")], [("Host", f"127.0.0.1:{port}"), ("Origin", "http://[")])
            ]
        finally:
            await feed.close()

    assert run(main()) == [400, 400]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


# -- HTTP methods -------------------------------------------------------------------------------------------------


def test_head_answers_with_the_headers_of_get_and_no_body(tmp_path):
    web = tmp_path / "web"
    web.mkdir()
    page = b"<h1>dash</h1>" * 100
    (web / "dashboard.html").write_bytes(page)

    async def main():
        feed = await started(web_dir=web)
        host = [("Host", f"127.0.0.1:{feed.port}")]
        try:
            return (
                await http_request(feed.port, "GET", "/", host),
                await http_request(feed.port, "HEAD", "/", host),
                await http_request(feed.port, "HEAD", "/nope", host),
                await http_request(feed.port, "HEAD", "/", upgrade_headers(f"127.0.0.1:{feed.port}")),
            )
        finally:
            await feed.close()

    get, head, missing, head_upgrade = run(main())
    assert get[0] == 200 and get[2] == page
    assert head[0] == 200 and head[2] == b""
    assert head[1]["content-length"] == str(len(page)) and head[1]["content-type"] == "text/html; charset=utf-8"
    assert missing[0] == 404 and missing[2] == b""
    assert head_upgrade[0] == 200 and head_upgrade[2] == b""  # HEAD cannot be upgraded: the page's headers


def test_other_methods_are_not_allowed():
    async def main():
        feed = await started()
        try:
            return await http_request(feed.port, "POST", "/", [("Host", f"127.0.0.1:{feed.port}"),
                                                               ("Content-Length", "0")])
        finally:
            await feed.close()

    status, headers, _ = run(main())
    assert status == 405 and headers["allow"] == "GET, HEAD"


# -- strict JSON --------------------------------------------------------------------------------------------------


def scores_with(*, level_dbfs: float, genre, taste: float = 0.25, moods=(0.1, 0.9), tags=(0.3, 0.1, 0.05, 0.6, 0.4, 0.2)):
    return scores_message(
        seq=0, t=3.0, window_start_s=0.0, window_end_s=3.0, labels=LABELS, mood_names=MOODS, tag_names=TAGS,
        genre=list(genre), top=3, taste=taste, moods=list(moods), tags=list(tags), level_dbfs=level_dbfs,
        silent=False, latency_ms=4.2,
    )


def test_non_finite_numbers_never_reach_a_message(validator):  # noqa: F811 - the fixture of test_feed
    message = scores_with(level_dbfs=INF, genre=[0.1, NAN, 0.2, 0.7], taste=NAN, moods=[NAN, 0.9],
                          tags=[0.3, NAN, 0.05, INF, 0.4, 0.2])
    text = json.dumps(message, allow_nan=False)  # raises on NaN or Infinity
    validator.validate(json.loads(text))
    assert message["level_dbfs"] == LEVEL_CEILING_DBFS
    assert message["genre"] == {"classical": 0.1, "pop": 0.2, "rock": 0.7}  # electronic is not known
    assert message["taste"] is None
    assert message["moods"] == {"power": 0.9}
    assert message["tags"] == [{"name": "indie", "p": 0.4}, {"name": "rock", "p": 0.3},
                               {"name": "chillout", "p": 0.2}, {"name": "jazz", "p": 0.05}]
    for level in (-INF, NAN):
        quiet = scores_with(level_dbfs=level, genre=[0.1, 0.2, 0.3, 0.4])
        json.dumps(quiet, allow_nan=False)
        validator.validate(quiet)
        assert quiet["level_dbfs"] == SILENCE_FLOOR_DBFS
    assert scores_with(level_dbfs=40.0, genre=[0.1, 0.2, 0.3, 0.4])["level_dbfs"] == LEVEL_CEILING_DBFS


def _no_constants(name: str):
    raise AssertionError(f"the feed sent {name}, which is not JSON")


def test_a_message_that_is_not_strict_json_is_not_sent_and_the_client_keeps_its_feed(caplog):
    async def main():
        feed = await started()
        try:
            async with connect(feed.url) as ws:
                await recv_json(ws)
                feed.publish({**scores(0), "latency_ms": NAN})  # as if a builder had missed one
                feed.publish(scores(1))
                return json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT_S), parse_constant=_no_constants)
        finally:
            await feed.close()

    assert run(main())["seq"] == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "not strict JSON" in errors[0]


# -- label rate -----------------------------------------------------------------------------------------------


def test_a_flood_of_labels_gets_only_the_burst_through(validator):  # noqa: F811 - the fixture of test_feed
    calls = []
    n_labels = 20

    async def main():
        feed = await started(on_label=lambda value: calls.append(value) or f"{value}d")
        try:
            async with connect(feed.url) as ws:
                await recv_json(ws)
                for _ in range(n_labels):  # all sent before any answer is read: far faster than the refill
                    await ws.send(json.dumps({"type": "label", "value": "like"}))
                return [await recv_json(ws) for _ in range(n_labels)]
        finally:
            await feed.close()

    acks = run(main())
    for ack in acks:
        validator.validate(ack)
    assert [ack["ok"] for ack in acks] == [True] * LABEL_BURST + [False] * (n_labels - LABEL_BURST)
    assert calls == ["like"] * LABEL_BURST
    assert "slow down" in acks[-1]["error"] and acks[-1]["value"] == "like"


def test_the_token_bucket_refills_one_label_per_interval():
    bucket = TokenBucket(burst=3, interval_s=2.0, now_s=100.0)
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(101.0) is False  # half a token
    assert bucket.take(102.0) is True  # 2 s after the burst: one
    assert bucket.take(102.0) is False
    assert [bucket.take(1000.0) for _ in range(4)] == [True, True, True, False]  # never more than the burst
    assert LABEL_BURST == 5 and LABEL_INTERVAL_S == 2.0
