"""Helpers to run `streamtag live` in the end-to-end tests (the PulseAudio server they record from is the
``pulse_server`` fixture of tests/conftest.py)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FEED_LINE = re.compile(r"feed (ws://\S+)")


@pytest.fixture
def live_env(tmp_path) -> dict[str, str]:
    """Environment for a `streamtag live` process that must not touch the user's taste profile."""
    env = dict(os.environ)
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    env["PYTHONUNBUFFERED"] = "1"
    return env


class LiveProcess:
    """`streamtag live` in a subprocess, with its feed URL read from its stderr."""

    def __init__(self, args: list[str], *, env: dict[str, str], stdin=None) -> None:
        self.args = args
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamtag.cli", "live", *args],
            env=env, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        )
        self.stderr_lines: list[str] = []

    def wait_for_feed(self, timeout_s: float = 30.0) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.stderr_lines.append(line)
            match = FEED_LINE.search(line)
            if match:
                return match.group(1)
        self.proc.kill()
        out, err = self.proc.communicate()
        raise AssertionError(f"no feed line from streamtag live: {''.join(self.stderr_lines)}{err}")

    def finish(self, timeout_s: float = 30.0) -> tuple[int, str, str]:
        try:
            out, err = self.proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            raise AssertionError(f"streamtag live did not end: {''.join(self.stderr_lines)}{err}") from None
        return self.proc.returncode, out, "".join(self.stderr_lines) + err


def run_cli(args: list[str], *, env: dict[str, str], timeout_s: float = 60.0, stdin_bytes: bytes | None = None):
    proc = subprocess.run(
        [sys.executable, "-m", "streamtag.cli", *args], env=env, cwd=REPO, capture_output=True,
        input=stdin_bytes, timeout=timeout_s,
    )
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


async def read_feed(url: str, *, until, timeout_s: float) -> list[dict]:
    """Messages from the feed until ``until(messages)`` is true, the server closes, or the timeout."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    messages: list[dict] = []
    async with connect(url) as ws:
        deadline = asyncio.get_running_loop().time() + timeout_s
        try:
            while not until(messages):
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    break
                messages.append(json.loads(await asyncio.wait_for(ws.recv(), left)))
        except (ConnectionClosed, TimeoutError):
            pass
    return messages
