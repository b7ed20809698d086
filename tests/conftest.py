"""Fixtures shared by the whole suite: the shared data folder, a seeded generator, a model to run, a real
PulseAudio server (for the live end-to-end tests and the sources' tests), and a real Icecast server fed by ffmpeg
(for the network source, `live --source URL` and the multi-stream server).

When PULSE_SERVER is set and answers (CI starts a daemon in .ci/run, see tools/ci_pulse.sh), the tests use that
daemon and add their own null sink to it, unloaded at the end. Otherwise the fixture starts a private daemon
(`pulseaudio --daemonize=no -n ...` with its own runtime folder and only the modules the tests need). The tests
are skipped only when pulseaudio or pactl is not installed.
"""

from __future__ import annotations

import grp
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = REPO.parent / "shared" / "data"
SHIPPED_MODEL = REPO / "models" / "streamtag.onnx"
PULSE_START_TIMEOUT_S = 15.0
ICECAST_START_TIMEOUT_S = 15.0  # the server answering, or a feeder's mount appearing

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


# ---------------------------------------------------------------------------------------------------------------
# Icecast, fed by ffmpeg

ICECAST_PASSWORD = "streamtag-tests"
# Icecast refuses to run as root (CI's container is root): there it drops to this user, named in the config.
ICECAST_USER = "nobody"
ICECAST_CONFIG = """<icecast>
  <location>streamtag tests</location>
  <admin>tests@localhost</admin>
  <limits><clients>200</clients><sources>64</sources><source-timeout>10</source-timeout></limits>
  <authentication>
    <source-password>{password}</source-password>
    <admin-user>admin</admin-user>
    <admin-password>{password}</admin-password>
  </authentication>
  <hostname>127.0.0.1</hostname>
  <listen-socket><port>{port}</port><bind-address>127.0.0.1</bind-address></listen-socket>
  <paths><webroot>/usr/share/icecast2/web</webroot><adminroot>/usr/share/icecast2/admin</adminroot></paths>
  <!-- "-" logs to stderr, which the fixture writes to the test's folder: no log folder that the unprivileged
       user must be able to write, and no pid file (the fixture holds the process) -->
  <logging><accesslog>-</accesslog><errorlog>-</errorlog><loglevel>3</loglevel></logging>
  <security><chroot>0</chroot>{changeowner}</security>
</icecast>
"""
FEED_FORMATS = {"libvorbis": ("ogg", "application/ogg"), "libmp3lame": ("mp3", "audio/mpeg")}  # codec -> muxer, type


@dataclass
class IcecastMount:
    """One mount point, fed by an ``ffmpeg -re -stream_loop -1`` process that plays a recording over and over."""

    url: str
    feeder: subprocess.Popen

    def stop(self) -> None:
        if self.feeder.poll() is None:
            self.feeder.kill()  # SIGKILL also ends a feeder a test has stopped with SIGSTOP
        self.feeder.wait(timeout=10)


@dataclass
class IcecastServer:
    port: int
    folder: Path
    process: subprocess.Popen
    _names: itertools.count = field(default_factory=lambda: itertools.count(1))

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def answers(self, path: str) -> bool:
        """Whether ``path`` is there: a mount point with a source, or a page. Icecast 2.4.4's status-json.xsl
        is not valid JSON without sources, so the mount itself is asked (and the listener leaves at once)."""
        try:
            with urllib.request.urlopen(self.url(path), timeout=5):
                return True
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return False
            raise

    def feed(self, recording: Path, *, codec: str = "libvorbis", name: str | None = None) -> IcecastMount:
        """A mount playing ``recording`` in a loop at real-time pace, as Ogg Vorbis or MP3 (``FEED_FORMATS``);
        ``name``: the mount's name, to bring back one whose feeder was stopped (default: a new one)."""
        number = next(self._names)
        fmt, content_type = FEED_FORMATS[codec]
        name = name or f"{recording.stem}-{number}.{fmt}"
        log_path = self.folder / f"ffmpeg-{number}.log"
        with log_path.open("w") as log:
            feeder = subprocess.Popen(
                ["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(recording),
                 "-c:a", codec, "-q:a", "6", "-f", fmt, "-content_type", content_type,
                 f"icecast://source:{ICECAST_PASSWORD}@127.0.0.1:{self.port}/{name}"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
            )
        mount = IcecastMount(url=self.url(name), feeder=feeder)
        deadline = time.monotonic() + ICECAST_START_TIMEOUT_S
        while not self.answers(name):
            if feeder.poll() is not None or time.monotonic() > deadline:
                mount.stop()
                pytest.fail(f"ffmpeg did not start {name}: {log_path.read_text()[-2000:]}")
            time.sleep(0.1)
        return mount


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def icecast_server(tmp_path_factory):
    """A private Icecast on 127.0.0.1 and a free port, with a generated config; ``feed`` adds mounts."""
    if shutil.which("icecast2") is None or shutil.which("ffmpeg") is None:
        pytest.skip("icecast2 or ffmpeg is not installed: apt install icecast2 ffmpeg")
    folder = tmp_path_factory.mktemp("icecast")
    changeowner = ""
    if os.geteuid() == 0:
        user = pwd.getpwnam(ICECAST_USER)
        group = grp.getgrgid(user.pw_gid).gr_name
        changeowner = f"<changeowner><user>{ICECAST_USER}</user><group>{group}</group></changeowner>"
    port = _free_port()
    config = folder / "icecast.xml"
    config.write_text(ICECAST_CONFIG.format(password=ICECAST_PASSWORD, port=port, changeowner=changeowner))
    log_path = folder / "icecast.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(["icecast2", "-c", str(config)], stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    server = IcecastServer(port=port, folder=folder, process=process)
    try:  # the server is stopped however the session ends, a failed start included
        deadline = time.monotonic() + ICECAST_START_TIMEOUT_S
        while True:
            try:
                server.answers("status.xsl")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"icecast2 did not start: {log_path.read_text()[-2000:]}")
                time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()


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
