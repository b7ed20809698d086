"""Foreign web pages cannot use the feed: Origin and Host are checked (real server, real clients)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from .test_feed import recv_json, run, started


def test_browser_pages_from_other_sites_are_refused_and_local_ones_served():
    async def main():
        feed = await started(on_label=lambda value: f"ok {value}")
        url = f"ws://127.0.0.1:{feed.port}/"
        try:
            with pytest.raises(InvalidStatus) as refused:
                await connect(url, origin="https://evil.example")
            assert refused.value.response.status_code == 403
            for origin in (None, f"http://127.0.0.1:{feed.port}", "http://localhost:3000"):  # a program; our page; a local app
                async with connect(url, origin=origin) as ws:
                    assert (await recv_json(ws))["type"] == "hello"
                    await ws.send(json.dumps({"type": "label", "value": "like"}))
                    assert (await recv_json(ws))["ok"] is True
        finally:
            await feed.close()

    run(main())


def test_dns_rebinding_host_is_refused_for_pages():
    async def main():
        feed = await started()
        try:
            def get(host):
                request = urllib.request.Request(f"http://127.0.0.1:{feed.port}/", headers={"Host": host})
                try:
                    with urllib.request.urlopen(request, timeout=5) as response:
                        return response.status
                except urllib.error.HTTPError as exc:
                    return exc.code

            import asyncio

            assert await asyncio.to_thread(get, f"evil.example:{feed.port}") == 403
            assert await asyncio.to_thread(get, f"localhost:{feed.port}") == 200
        finally:
            await feed.close()

    run(main())


def test_deeply_nested_json_gets_an_error_ack_not_a_crash():
    async def main():
        feed = await started(on_label=lambda value: "ok")
        try:
            async with connect(f"ws://127.0.0.1:{feed.port}/") as ws:
                await recv_json(ws)
                await ws.send("[" * 2000 + "]" * 2000)  # 4000 bytes: under max_size, over json's recursion limit
                assert await recv_json(ws) == {"type": "ack", "ok": False, "value": None, "error": "messages must be JSON objects"}
                await ws.send(json.dumps({"type": "label", "value": "like"}))
                assert (await recv_json(ws))["ok"] is True  # the connection survived
        finally:
            await feed.close()

    run(main())
