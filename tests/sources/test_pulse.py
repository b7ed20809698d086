"""PulseAudio/PipeWire discovery, read from a real server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streamtag.errors import DeviceError
from streamtag.sources.device import CLOSE_WAIT_S, DEVICE_STALL_S
from streamtag.sources.pulse import list_pulse_sources, resolve_monitor
from tests.conftest import REPO

PULSE_START_TIMEOUT_S = 15.0


def test_loopback_device_is_found_by_sink_name_index_or_monitor_name(pulse_server, monkeypatch):
    """`live --source loopback --device X` with each way a user may name the sink."""
    for key in ("PULSE_SERVER", "XDG_RUNTIME_DIR", "HOME", "PULSE_CLIENTCONFIG"):
        if key in pulse_server.env:
            monkeypatch.setenv(key, pulse_server.env[key])
    index = next(line.split("\t")[0] for line in pulse_server.pactl("list", "short", "sinks").splitlines()
                 if line.split("\t")[1] == pulse_server.sink)
    for device in (pulse_server.sink, index, pulse_server.monitor):
        assert resolve_monitor(device) == pulse_server.monitor, device
    assert pulse_server.monitor not in list_pulse_sources()  # monitors are not microphones
    with pytest.raises(DeviceError, match="no sink named 'nope'"):
        resolve_monitor("nope")


# ---------------------------------------------------------------------------------------------------------------
# A sound server that hangs, quits and comes back: each test on a daemon of its own, never the shared one


class PrivatePulse:
    """A PulseAudio daemon of one test's own, with one null sink, which the test may stop (SIGSTOP), kill and
    start again without disturbing any other test: the daemon tests/conftest.py starts where no PULSE_SERVER
    answers, in a runtime folder of its own, so a daemon started again listens on the same socket."""

    def __init__(self, folder: Path, *, sink: str = "lossy") -> None:
        runtime = folder / "runtime"
        runtime.mkdir(mode=0o700, parents=True)
        client_conf = folder / "client.conf"
        client_conf.write_text("autospawn = no\n")  # a client must never start a daemon of its own meanwhile
        self.sink = sink
        self.env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "PULSE_SERVER": f"unix:{runtime}/pulse/native",
                    "PULSE_CLIENTCONFIG": str(client_conf), "HOME": str(folder)}
        self.process: subprocess.Popen | None = None
        self.start()

    @property
    def monitor(self) -> str:
        return f"{self.sink}.monitor"

    def start(self) -> float:
        """Start the daemon; returns when it answers (``time.monotonic()``)."""
        self.process = subprocess.Popen(
            ["pulseaudio", "--daemonize=no", "--exit-idle-time=-1", "--system=false", "-n", "--use-pid-file=no",
             "--disable-shm=yes", "--log-target=stderr", "--log-level=error",
             "--load=module-native-protocol-unix auth-anonymous=1",
             f"--load=module-null-sink sink_name={self.sink} rate=22050 channels=2"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + PULSE_START_TIMEOUT_S
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"pulseaudio did not start (exit status {self.process.poll()})")
            time.sleep(0.02)
        return time.monotonic()

    def answers(self) -> bool:
        try:
            return subprocess.run(["pactl", "info"], env=self.env, capture_output=True, timeout=2,
                                  check=False).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()  # stopped or not


@pytest.fixture
def private_pulse(tmp_path):
    if shutil.which("pulseaudio") is None or shutil.which("pactl") is None:
        pytest.skip("pulseaudio is not installed (apt install pulseaudio pulseaudio-utils)")
    daemon = PrivatePulse(tmp_path / "pulse")
    try:
        yield daemon
    finally:
        daemon.close()


def run_device_script(code: str, daemon: PrivatePulse, *args: str, timeout_s: float = 60.0) -> tuple[dict, float]:
    """``code`` in a Python process of its own that reaches ``daemon`` (PortAudio lists the devices of the server
    it finds when it loads); it prints ``closing`` before its last step and then one JSON line. Returns that JSON
    and the seconds from ``closing`` to the process's exit."""
    proc = subprocess.Popen([sys.executable, "-c", code, *args], env=daemon.env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line == "closing\n", f"{line!r}{proc.communicate(timeout=timeout_s)[1][-3000:]}"
        closing = time.monotonic()
        out, err = proc.communicate(timeout=timeout_s)
        exited_s = time.monotonic() - closing
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out), exited_s


CLOSE_WHILE_STOPPED = """
import asyncio, json, os, signal, sys, time
from streamtag.sources.loopback import open_loopback

daemon_pid, sink, stopped_for_s = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
source = open_loopback(device=sink, rate=22050, channels=2, out_rate=22050, reopen=True)
states = []
source.on_state = lambda up, detail: states.append(up)

async def main():
    blocks = source.blocks()
    await anext(blocks)
    os.kill(daemon_pid, signal.SIGSTOP)

    async def drain():
        async for _ in blocks:
            pass

    try:  # the source sees the loss after 1 s, and its reopening hangs on the stopped server
        await asyncio.wait_for(drain(), stopped_for_s)
    except TimeoutError:
        pass

asyncio.run(main())
print("closing", flush=True)
started = time.monotonic()
source.close()
print(json.dumps({"close_s": time.monotonic() - started, "states": states}), flush=True)
"""


@pytest.mark.slow
@pytest.mark.timeout(90)
@pytest.mark.parametrize("stopped_for_s", [0.3, 2.0])  # before the loss is seen, and after (reopening hangs)
def test_closing_a_device_while_the_sound_server_is_stopped_takes_at_most_a_second(private_pulse, stopped_for_s):
    """The issue: with the sound server SIGSTOPped, PortAudio's close hung for as long as the server was stopped,
    and so did the exit (sounddevice's exit handler terminates PortAudio, which waits for the server too)."""
    result, exited_s = run_device_script(CLOSE_WHILE_STOPPED, private_pulse, str(private_pulse.process.pid),
                                         private_pulse.sink, str(stopped_for_s))
    print(f"stopped for {stopped_for_s} s: close() took {result['close_s']:.3f} s, the process ended "
          f"{exited_s:.3f} s after closing began")
    assert result["states"] == ([] if stopped_for_s < DEVICE_STALL_S else [False])
    assert result["close_s"] < CLOSE_WAIT_S + 0.5
    assert exited_s < 2.0 + 3.0  # the 2 s, and a margin for a loaded machine


SINK_COMES_BACK = """
import asyncio, json, subprocess, sys, time
from streamtag.sources.loopback import open_loopback

sink = sys.argv[1]
source = open_loopback(device=sink, rate=22050, channels=2, out_rate=22050, reopen=True)
events = []
source.on_state = lambda up, detail: events.append((up, detail, time.monotonic()))

def pactl(*args):
    return subprocess.run(["pactl", *args], capture_output=True, text=True, check=True, timeout=10).stdout

async def main():
    blocks = source.blocks()
    await anext(blocks)

    async def first_block_after_up():
        async for block in blocks:
            if len(events) == 2:
                return len(block)

    module = next(line.split("\\t")[0] for line in pactl("list", "short", "modules").splitlines()
                  if f"sink_name={sink}" in line)
    pactl("unload-module", module)
    unloaded = time.monotonic()
    block = asyncio.ensure_future(first_block_after_up())
    while not events:
        await asyncio.sleep(0.01)
    await asyncio.sleep(1.0)  # attempts to reopen fail meanwhile: there is no such monitor
    pactl("load-module", "module-null-sink", f"sink_name={sink}", "rate=22050", "channels=2")
    loaded = time.monotonic()
    frames = await asyncio.wait_for(block, 15)
    (down, why, down_at), (up, what, up_at) = events[:2]
    return {"down": [down, why, down_at - unloaded], "up": [up, what, up_at - loaded], "events": len(events),
            "frames": frames}

result = asyncio.run(main())
print("closing", flush=True)
source.close()
print(json.dumps(result), flush=True)
"""


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_a_device_whose_sink_is_unloaded_is_down_then_reopened_when_the_sink_is_back(private_pulse):
    result, _ = run_device_script(SINK_COMES_BACK, private_pulse, private_pulse.sink)
    print(f"sink unloaded: down after {result['down'][2]:.3f} s; loaded again: up after {result['up'][2]:.3f} s")
    assert result["events"] == 2
    description = f"loopback: pulse ({private_pulse.monitor}) @ 22050 Hz x2"
    assert result["down"][:2] == [False, f"{description} stopped delivering audio (unplugged, or the server quit)"]
    assert result["up"][:2] == [True, description]
    assert result["down"][2] < DEVICE_STALL_S + 0.5  # the stream ends at once; a stall would be seen after 1 s
    # A new null sink's monitor sends its first audio 2 s after the sink starts (see FIRST_AUDIO_S)
    assert result["up"][2] < 2.0 + 3.0
    assert result["frames"] > 0
