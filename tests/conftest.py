"""Fixtures shared by the whole suite: the shared data folder, a seeded generator, a model to run, a real
PulseAudio server (for the live end-to-end tests and the sources' tests), and a real Icecast server fed by ffmpeg
(for the network source, `live --source URL` and the multi-stream server).

When PULSE_SERVER is set and answers (CI starts a daemon in .ci/run, see tools/ci_pulse.sh), the tests use that
daemon and add their own null sink to it, unloaded at the end. Otherwise the fixture starts a private daemon
(`pulseaudio --daemonize=no -n ...` with its own runtime folder and only the modules the tests need). The tests
are skipped only when pulseaudio or pactl is not installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tools.local_icecast import IcecastMount, local_icecast

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = REPO.parent / "shared" / "data"
SHIPPED_MODEL = REPO / "models" / "streamtag.onnx"
PULSE_START_TIMEOUT_S = 15.0

# The suite never reads or writes the user's own folders: one like in `streamtag live` would otherwise put a
# taste profile in the way of every test that tags (and a test could overwrite the user's labels). Set at import,
# before any test runs, so every subprocess a test starts inherits it too.
ISOLATED_HOME = Path(tempfile.mkdtemp(prefix="streamtag-tests-"))
for _variable, _folder in (("STREAMTAG_HOME", "streamtag"), ("XDG_DATA_HOME", "data"), ("XDG_CONFIG_HOME", "config"),
                           ("XDG_CACHE_HOME", "cache")):
    os.environ[_variable] = str(ISOLATED_HOME / _folder)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA_DIR.is_dir():
        pytest.fail(f"the shared data folder is missing: expected {DATA_DIR}")
    return DATA_DIR


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def model_path() -> Path:
    """The shipped, trained model: the one every runtime test exercises."""
    if not SHIPPED_MODEL.is_file():
        pytest.fail(f"the shipped model is missing: expected {SHIPPED_MODEL}")
    return SHIPPED_MODEL


@dataclass(frozen=True)
class PulseServer:
    env: dict[str, str]  # what a client process needs to reach the server
    sink: str  # a null sink private to this test session
    own_daemon: bool

    @property
    def monitor(self) -> str:
        return f"{self.sink}.monitor"

    def pactl(self, *args: str) -> str:
        proc = subprocess.run(["pactl", *args], env=self.env, capture_output=True, text=True, timeout=10)
        if proc.returncode != 0:
            raise RuntimeError(f"pactl {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout.strip()


def _client_env(base: dict[str, str], tmp: Path) -> dict[str, str]:
    env = dict(base)
    # Never let a test's client autospawn a daemon of its own when the server is gone.
    client_conf = tmp / "client.conf"
    client_conf.write_text("autospawn = no\n")
    env["PULSE_CLIENTCONFIG"] = str(client_conf)
    return env


def _answers(env: dict[str, str]) -> bool:
    try:
        return subprocess.run(["pactl", "info"], env=env, capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def pulse_server(tmp_path_factory):
    if shutil.which("pactl") is None or shutil.which("paplay") is None:
        pytest.skip("pulseaudio-utils (pactl, paplay) is not installed: apt install pulseaudio pulseaudio-utils")
    tmp = tmp_path_factory.mktemp("pulse")
    sink = f"streamtag_test_{os.getpid()}"
    # The sink runs at the model's rate (stereo, so mixdown is still exercised): PulseAudio's default
    # resampler (speex-float-1) attenuates the top of the band, and a round trip through a resampler of
    # that quality moved the trained model's clip-averaged "electronic" by 0.1, which would be measuring
    # the sound server, not streamtag. The sine-source test still covers resampling from 44.1 kHz.
    env = _client_env(os.environ, tmp)
    if os.environ.get("PULSE_SERVER") and _answers(env):
        module = subprocess.run(
            ["pactl", "load-module", "module-null-sink", f"sink_name={sink}", "rate=22050", "channels=2"],
            env=env, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
        yield PulseServer(env=env, sink=sink, own_daemon=False)
        subprocess.run(["pactl", "unload-module", module], env=env, capture_output=True, timeout=10)
        return
    if shutil.which("pulseaudio") is None:
        pytest.skip("pulseaudio is not installed (apt install pulseaudio) and no PULSE_SERVER answers")
    runtime = tmp / "runtime"
    runtime.mkdir(mode=0o700)
    env.update(
        XDG_RUNTIME_DIR=str(runtime),
        PULSE_SERVER=f"unix:{runtime}/pulse/native",
        HOME=str(tmp),  # the daemon's cookie and state stay in the test's folder
    )
    daemon = subprocess.Popen(
        [
            "pulseaudio", "--daemonize=no", "--exit-idle-time=-1", "--system=false", "-n", "--use-pid-file=no",
            "--disable-shm=yes", "--log-target=stderr", "--log-level=error",
            "--load=module-native-protocol-unix auth-anonymous=1",
            f"--load=module-null-sink sink_name={sink} rate=22050 channels=2",
        ],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + PULSE_START_TIMEOUT_S
    while not _answers(env):
        if daemon.poll() is not None or time.monotonic() > deadline:
            daemon.kill()
            pytest.fail(f"pulseaudio did not start: {daemon.communicate()[1][-2000:]}")
        time.sleep(0.1)
    subprocess.run(["pactl", "set-default-sink", sink], env=env, capture_output=True, timeout=10)
    try:
        yield PulseServer(env=env, sink=sink, own_daemon=True)
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=5)
        except subprocess.TimeoutExpired:
            daemon.kill()


@pytest.fixture(scope="session")
def icecast_server(tmp_path_factory):
    """A private Icecast on 127.0.0.1 and a free port, with a generated config; ``feed`` adds mounts."""
    try:
        with local_icecast(tmp_path_factory.mktemp("icecast")) as server:
            yield server
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture
def icecast_feed(icecast_server):
    """Start mounts on the session's Icecast: ``icecast_feed(recording)`` -> IcecastMount, as many as a test
    needs; each feeder is stopped at the test's end."""
    started: list[IcecastMount] = []

    def start(recording: Path, *, codec: str = "libvorbis", name: str | None = None) -> IcecastMount:
        mount = icecast_server.feed(recording, codec=codec, name=name)
        started.append(mount)
        return mount

    yield start
    for mount in started:
        mount.stop()
