"""A private Icecast server on 127.0.0.1, fed by ``ffmpeg -re`` processes: for the network-stream tests and the
multi-stream load benchmark (tools/bench_serve.py --icecast). Needs Debian's icecast2 and ffmpeg.
"""

from __future__ import annotations

import contextlib
import grp
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ICECAST_START_TIMEOUT_S = 15.0  # the server answering, or a feeder's mount appearing
ICECAST_PASSWORD = "streamtag-tests"
# Icecast refuses to run as root (CI's container is root): there it drops to this user, named in the config.
ICECAST_USER = "nobody"
ICECAST_CONFIG = """<icecast>
  <location>streamtag tests</location>
  <admin>tests@localhost</admin>
  <limits><clients>400</clients><sources>256</sources><source-timeout>10</source-timeout></limits>
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
# codec -> (muxer, content type); "copy" sends an Ogg file as it is, without encoding it again (the load benchmark)
FEED_FORMATS = {"libvorbis": ("ogg", "application/ogg"), "libmp3lame": ("mp3", "audio/mpeg"), "copy": ("ogg", "application/ogg")}


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
                 "-c:a", codec, *(() if codec == "copy" else ("-q:a", "6")), "-f", fmt, "-content_type", content_type,
                 f"icecast://source:{ICECAST_PASSWORD}@127.0.0.1:{self.port}/{name}"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
            )
        mount = IcecastMount(url=self.url(name), feeder=feeder)
        deadline = time.monotonic() + ICECAST_START_TIMEOUT_S
        while not self.answers(name):
            if feeder.poll() is not None or time.monotonic() > deadline:
                mount.stop()
                raise RuntimeError(f"ffmpeg did not start {name}: {log_path.read_text()[-2000:]}")
            time.sleep(0.1)
        return mount


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def local_icecast(folder: Path) -> Iterator[IcecastServer]:
    """An Icecast on a free port with a generated config in ``folder``; stopped however the block ends."""
    if shutil.which("icecast2") is None or shutil.which("ffmpeg") is None:
        raise FileNotFoundError("icecast2 or ffmpeg is not installed: apt install icecast2 ffmpeg")
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
    try:  # the server is stopped however the block ends, a failed start included
        deadline = time.monotonic() + ICECAST_START_TIMEOUT_S
        while True:
            try:
                server.answers("status.xsl")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"icecast2 did not start: {log_path.read_text()[-2000:]}") from None
                time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
