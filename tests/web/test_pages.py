"""The dashboard and the overlay in a real browser, on a real ``streamtag live``.

One scenario, because every step depends on audio playing in real time: ``streamtag live`` plays a file made
from a real recording with ten seconds of digital silence in the middle; a websocket client in the test records
what the feed sends; headless Chromium opens ``/`` and ``/overlay`` from the same server. The pages must show
what the feed said (the top genre, the bars and the tags of the very hop they display), the silent state during
the silence, the disconnected state when the tagger stops, and live scores again once it is restarted on the same
port. Screenshots and the browser console go to ``artifacts/web/``.

The shipped model may have no tags, so the tags card is also checked on messages the test makes up itself,
published by a feed server in the test's own process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
import soundfile as sf
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from streamtag.core.messages import TOP_TAGS, hello_message, scores_message
from streamtag.feed import Feed, FeedConfig

pytestmark = pytest.mark.slow

MUSIC = "cc-audio/Kevin_MacLeod_-_Vibe_Ace.ogg"
MUSIC_BEFORE_S = 16.0  # the composed file: this much music, then
SILENCE_S = 10.0  # this much digital silence, then
MUSIC_AFTER_S = 24.0  # this much more music (the restart happens while it plays)
HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0  # streamtag live: imports, model load, first bind
STATE_TIMEOUT_S = 30.0  # any page state that follows the audio or the process
RECONNECT_TIMEOUT_S = 45.0  # restart, plus the page's backoff (at most 8 s between tries)
POLL_S = 0.2
SETTLE_S = 0.5  # longer than the pages' CSS transitions
DASHBOARD_VIEWPORT = (1600, 900)
OVERLAY_VIEWPORT = (640, 120)
SMALL_HISTORY_S = 4  # a dashboard opened with ?history_s=4 keeps 8 hops at the 0.5 s hop
DASHBOARD_HISTORY_S = 120  # the dashboard's default timeline span (dashboard.js TIMELINE_SECONDS)

T = TypeVar("T")


# -------------------------------------------------------------------------------------------------------------
# Helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_for(what: str, probe: Callable[[], T], *, timeout_s: float, context: Callable[[], str] = lambda: "") -> T:
    """Poll ``probe`` until it returns something truthy; fail with the last value and some context."""
    deadline = time.monotonic() + timeout_s
    value: Any = None
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(POLL_S)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}; last value {value!r}\n{context()}")


def js_round(x: float) -> int:
    """JavaScript's Math.round (halves go up), which the pages use for percentages."""
    return math.floor(x + 0.5)


def percent(p: float) -> str:
    return f"{js_round(100 * p)}%"


def display_name(label: str) -> str:
    """What the pages write for a label (feed.js displayName)."""
    return "hip-hop" if label == "hiphop" else label.replace("_", " ")


class Live:
    """A ``streamtag live`` process playing a file, its feed served on HOST:port; its output goes to a log."""

    def __init__(self, source: Path, port: int, log_path: Path) -> None:
        self.port = port
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        cmd = [
            sys.executable, "-c", "import sys; from streamtag.cli import main; sys.exit(main())",
            "live", "--source", str(source), "--no-tui", "--no-taste", "--ws", f"{HOST}:{port}",
        ]  # fmt: skip
        self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)

    def log_tail(self, chars: int = 3000) -> str:
        text = self.log_path.read_text(errors="replace")
        return f"--- streamtag live log ({self.log_path}) ---\n{text[-chars:]}"

    def wait_serving(self) -> None:
        def serving() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"streamtag live exited with {self.process.returncode}\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://{HOST}:{self.port}/overlay", timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_for("streamtag live to serve its pages", serving, timeout_s=START_TIMEOUT_S, context=self.log_tail)

    def stop(self) -> None:
        """Stop it as a person would (Ctrl-C), and make sure it is gone."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()


class FeedRecorder:
    """A plain websocket client of the feed, on a thread: keeps the hello and every scores message by seq."""

    def __init__(self, port: int) -> None:
        self.hello: dict[str, Any] | None = None
        self.scores: dict[int, dict[str, Any]] = {}
        self.latest: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._ws: Any = None
        self._error: BaseException | None = None
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(port,), name="feed-recorder", daemon=True)
        self._thread.start()
        if not self._opened.wait(timeout=15) or self._ws is None:
            pytest.fail(f"the test's websocket client could not connect to the feed: {self._error!r}")

    def _run(self, port: int) -> None:
        try:
            with connect(f"ws://{HOST}:{port}/", open_timeout=10) as ws:
                self._ws = ws
                self._opened.set()
                with contextlib.suppress(ConnectionClosed):
                    for raw in ws:
                        self._keep(json.loads(raw))
        except (OSError, TimeoutError) as exc:
            self._error = exc
        finally:
            self._opened.set()

    def _keep(self, msg: dict[str, Any]) -> None:
        with self._lock:
            if msg["type"] == "hello":
                self.hello = msg
            elif msg["type"] == "scores":
                self.scores[msg["seq"]] = msg
                self.latest = msg

    def get(self, seq: int) -> dict[str, Any] | None:
        with self._lock:
            return self.scores.get(seq)

    def close(self) -> None:
        if self._ws is not None:
            self._ws.close()
        self._thread.join(timeout=5)


@contextlib.contextmanager
def running(source: Path, port: int, log_path: Path) -> Iterator[tuple[Live, FeedRecorder]]:
    live = Live(source, port, log_path)
    recorder = None
    try:
        live.wait_serving()
        recorder = FeedRecorder(port)
        yield live, recorder
    finally:
        if recorder is not None:
            recorder.close()
        live.stop()


# What a page shows, read in one script so that the values belong to the same moment.
READ_PAGE = """
const q = (s) => document.querySelector(s);
const top = q('#top-genre');
const seq = q('#seq');
return {
  state: q('#state').dataset.state,
  stateText: q('#state').textContent,
  seq: seq && /^[0-9]+$/.test(seq.textContent) ? Number(seq.textContent) : null,
  top: top.dataset.label,
  topText: top.textContent,
  prob: q('#top-prob').textContent,
  taste: q('#taste').dataset.value,
  bars: Array.from(document.querySelectorAll('.genre-bar')).map((b) => ({
    label: b.dataset.label, width: b.style.width, p: b.dataset.p, px: b.getBoundingClientRect().width})),
  moods: Array.from(document.querySelectorAll('.mood-bar')).map((b) => b.dataset.value),
  tagsHidden: q('#tags-card') && q('#tags-card').hidden,
  tags: Array.from(document.querySelectorAll('#tags-card:not([hidden]) .tag:not([hidden])')).map((t) => ({
    name: t.dataset.name, p: t.dataset.p, text: t.querySelector('.name').textContent,
    width: parseFloat(t.querySelector('.tag-bar').style.width)})),
  provider: q('#provider') && q('#provider').textContent,
  timelineCount: q('#timeline') && Number(q('#timeline').dataset.count),
  timelineCapacity: q('#timeline') && Number(q('#timeline').dataset.capacity),
  content: document.body.dataset.content,
};
"""


def read_page(driver) -> dict[str, Any]:
    return driver.execute_script(READ_PAGE)


def screenshot(driver, path: Path) -> None:
    """Save what the window shows, once the pages' CSS transitions (350 ms at most) have settled."""
    time.sleep(SETTLE_S)
    driver.save_screenshot(str(path))


def set_viewport(driver, size: tuple[int, int], *, transparent: bool = False) -> None:
    width, height = size
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )
    if transparent:  # so that a screenshot shows what an OBS browser source composites over the video
        transparent_black = {"r": 0, "g": 0, "b": 0, "a": 0}
        driver.execute_cdp_cmd("Emulation.setDefaultBackgroundColorOverride", {"color": transparent_black})


def assert_dashboard_matches_feed(driver, recorder: FeedRecorder, live: Live) -> dict[str, Any]:
    """The dashboard shows a non-silent hop; its top genre and bars are the feed's for that same hop."""

    def shown_live_hop() -> dict[str, Any] | None:
        page = read_page(driver)
        if page["state"] != "live" or page["seq"] is None or recorder.get(page["seq"]) is None:
            return None
        return page

    page = wait_for("the dashboard to show a live hop the recorder also got", shown_live_hop,
                    timeout_s=STATE_TIMEOUT_S, context=live.log_tail)  # fmt: skip
    msg = recorder.get(page["seq"])
    assert not msg["silent"], msg
    assert page["top"] == msg["top"], (page, msg)
    assert page["topText"] == display_name(msg["top"])
    assert page["prob"] == percent(msg["genre"][msg["top"]])
    assert page["taste"] == f"{msg['taste']:.4f}"
    assert [b["label"] for b in page["bars"]] == list(recorder.hello["labels"])
    for bar in page["bars"]:
        p = msg["genre"][bar["label"]]
        assert bar["p"] == f"{p:.4f}", (bar, p)
        assert bar["width"].endswith("%") and float(bar["width"][:-1]) == pytest.approx(100 * p, abs=0.051), (bar, p)
    # Drawn, not only styled: the bar of the top genre grows to a visible width (after its CSS transition).
    top_bar_px = "return document.querySelector(`.genre-bar[data-label='${arguments[0]}']`).offsetWidth"
    wait_for("the top genre's bar to be drawn", lambda: driver.execute_script(top_bar_px, msg["top"]) > 1, timeout_s=5)
    assert sum(float(b["p"]) for b in page["bars"]) == pytest.approx(1.0, abs=2e-3)
    assert page["moods"] == [f"{msg['moods'][name]:.4f}" for name in recorder.hello["mood_names"]]
    # Tags: as many as the model has, up to TOP_TAGS (none for a model without tags, and then no card).
    assert len(msg["tags"]) == min(TOP_TAGS, len(recorder.hello["tag_names"]))
    assert page["tags"] == expected_tags(msg)
    assert page["tagsHidden"] == (not msg["tags"])
    assert page["provider"] == recorder.hello["provider"]
    return page


def expected_tags(msg: dict[str, Any]) -> list[dict[str, Any]]:
    """What the dashboard's tags card holds for a scores message: its tags in its order (read_page's shape)."""
    return [
        {"name": t["name"], "p": f"{t['p']:.4f}", "text": display_name(t["name"]) + percent(t["p"]),
         "width": pytest.approx(100 * t["p"], abs=0.051)}  # the bar's width in percent, to its 0.1
        for t in msg["tags"]
    ]


def assert_overlay_matches_feed(driver, recorder: FeedRecorder) -> None:
    """The overlay shows the feed's latest top genre and its probability (it has no seq: allow a hop or two)."""

    def agrees() -> bool:
        page = read_page(driver)
        msg = recorder.latest
        if page["state"] != "live" or msg is None or msg["silent"]:
            return False
        return page["top"] == msg["top"] and page["prob"] == percent(msg["genre"][msg["top"]])

    wait_for("the overlay to show the feed's latest top genre", agrees, timeout_s=STATE_TIMEOUT_S,
             context=lambda: f"overlay {read_page(driver)}, feed {recorder.latest}")  # fmt: skip
    assert read_page(driver)["topText"] == display_name(recorder.latest["top"])


def wait_state(driver, state: str, *, timeout_s: float = STATE_TIMEOUT_S, context=lambda: "") -> dict[str, Any]:
    return wait_for(
        f"#state to be {state!r}",
        lambda: (page := read_page(driver))["state"] == state and page,
        timeout_s=timeout_s,
        context=lambda: f"page {read_page(driver)}\n{context()}",
    )


# -------------------------------------------------------------------------------------------------------------
# The test


@pytest.fixture
def music_with_silence(data_dir: Path, tmp_path: Path) -> Path:
    """A real recording with ten seconds of digital zeros in the middle, as a WAV file."""
    audio, rate = sf.read(data_dir / MUSIC, dtype="float32", always_2d=True)
    before = audio[: int(MUSIC_BEFORE_S * rate)]
    after = audio[int(MUSIC_BEFORE_S * rate) : int((MUSIC_BEFORE_S + MUSIC_AFTER_S) * rate)]
    assert len(after) == int(MUSIC_AFTER_S * rate), "the recording is shorter than the test needs"
    silence = np.zeros((int(SILENCE_S * rate), audio.shape[1]), dtype=np.float32)
    path = tmp_path / "music-silence-music.wav"
    sf.write(path, np.concatenate([before, silence, after]), rate, subtype="FLOAT")
    return path


def test_pages_are_served_with_their_types(music_with_silence: Path, tmp_path: Path) -> None:
    """The pages and every file they load come from the feed's port, with types a browser accepts."""
    port = free_port()
    with running(music_with_silence, port, tmp_path / "live.log"):
        base = f"http://{HOST}:{port}"
        loaded: set[str] = set()
        for page in ("/", "/overlay"):
            with urllib.request.urlopen(base + page, timeout=5) as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/html")
                html = response.read().decode()
            refs = re.findall(r'(?:src|href)="([^"]+)"', html)
            assert refs, page
            for ref in refs:
                assert ref.startswith("/static/"), f"{page} loads {ref} from outside the feed's /static/"
                loaded.add(ref)
        expected = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
        for ref in sorted(loaded):
            with urllib.request.urlopen(base + ref, timeout=5) as response:
                assert response.status == 200, ref
                assert response.headers["Content-Type"].startswith(expected[Path(ref).suffix]), ref


def test_dashboard_and_overlay_follow_the_feed(
    browser, music_with_silence: Path, data_dir: Path, tmp_path: Path, artifacts_dir: Path
) -> None:
    driver = browser
    port = free_port()
    base = f"http://{HOST}:{port}"
    log_path, restarted_log_path = artifacts_dir / "live.log", artifacts_dir / "live-restarted.log"
    for path in (log_path, restarted_log_path):
        path.unlink(missing_ok=True)

    with running(music_with_silence, port, log_path) as (live, recorder):
        # 1. Music: the dashboard shows the feed's own top genre and bars for the hop it displays.
        dashboard = driver.current_window_handle
        set_viewport(driver, DASHBOARD_VIEWPORT)
        driver.get(base + "/")
        assert recorder.hello["type"] == "hello" and recorder.hello["labels"]
        page = assert_dashboard_matches_feed(driver, recorder, live)
        assert page["timelineCapacity"] == round(DASHBOARD_HISTORY_S / recorder.hello["hop_s"])
        time.sleep(2)  # a few more hops on the timeline, for the screenshot
        assert_dashboard_matches_feed(driver, recorder, live)
        screenshot(driver, artifacts_dir / "dashboard-live.png")
        # The like button sends a label over the page's own feed and shows the answer: this live runs with
        # --no-taste, so the feed declines it, in words (tests/taste/test_live.py labels a profile for real).
        driver.find_element("id", "like").click()
        deadline = time.monotonic() + 10
        answer = ""
        while time.monotonic() < deadline and not answer:
            answer = driver.execute_script("return document.getElementById('label-answer').textContent")
            time.sleep(0.1)
        assert answer == "this feed does not take labels (no taste profile)"
        assert driver.execute_script("return document.getElementById('label-answer').dataset.ok") == "false"

        # 2. Silence: the state says so, nothing is shown as the top genre, the bars are empty.
        page = wait_state(driver, "silent", context=live.log_tail)
        assert recorder.latest["silent"] is True
        assert page["top"] == ""
        assert page["taste"] == ""
        assert all(float(b["width"].rstrip("%")) == 0 for b in page["bars"]), page["bars"]
        assert page["tagsHidden"] and page["tags"] == []
        screenshot(driver, artifacts_dir / "dashboard-silent.png")

        # 3. Music again; the overlay, on a transparent page, shows the same.
        wait_state(driver, "live", context=live.log_tail)
        assert_dashboard_matches_feed(driver, recorder, live)
        driver.switch_to.new_window("window")
        overlay = driver.current_window_handle
        set_viewport(driver, OVERLAY_VIEWPORT, transparent=True)
        driver.get(base + "/overlay")
        assert_overlay_matches_feed(driver, recorder)
        backgrounds = driver.execute_script(
            "return [getComputedStyle(document.documentElement).backgroundColor,"
            " getComputedStyle(document.body).backgroundColor]"
        )
        assert backgrounds == ["rgba(0, 0, 0, 0)", "rgba(0, 0, 0, 0)"]
        screenshot(driver, artifacts_dir / "overlay-live.png")

        # 4. The tagger stops: both pages say disconnected.
        recorder.close()
        live.stop()
        wait_state(driver, "disconnected")
        screenshot(driver, artifacts_dir / "overlay-disconnected.png")
        driver.switch_to.window(dashboard)
        wait_state(driver, "disconnected")
        screenshot(driver, artifacts_dir / "dashboard-disconnected.png")

    # 5. The tagger is restarted on the same port (on the plain recording): both pages reconnect by themselves.
    with running(data_dir / MUSIC, port, restarted_log_path) as (live, recorder):
        wait_state(driver, "live", timeout_s=RECONNECT_TIMEOUT_S, context=live.log_tail)
        assert_dashboard_matches_feed(driver, recorder, live)
        driver.switch_to.window(overlay)
        wait_state(driver, "live", timeout_s=RECONNECT_TIMEOUT_S, context=live.log_tail)
        assert_overlay_matches_feed(driver, recorder)

        # 6. The timeline keeps a fixed history: a dashboard that keeps SMALL_HISTORY_S fills up and stays full.
        driver.get(f"{base}/?history_s={SMALL_HISTORY_S}")
        set_viewport(driver, DASHBOARD_VIEWPORT)
        capacity = round(SMALL_HISTORY_S / recorder.hello["hop_s"])
        wait_for("the small timeline to fill", lambda: read_page(driver)["timelineCount"] == capacity,
                 timeout_s=STATE_TIMEOUT_S)  # fmt: skip
        seq_full = read_page(driver)["seq"]
        wait_for("more hops", lambda: read_page(driver)["seq"] >= seq_full + 4, timeout_s=STATE_TIMEOUT_S)
        page = read_page(driver)
        assert (page["timelineCount"], page["timelineCapacity"]) == (capacity, capacity)

        driver.switch_to.window(dashboard)
        time.sleep(2)
        assert_dashboard_matches_feed(driver, recorder, live)
        screenshot(driver, artifacts_dir / "dashboard-reconnected.png")

    # No script errors in either page; failed websocket connections while the tagger was down are expected.
    console = []
    for window in (overlay, dashboard):
        driver.switch_to.window(window)
        console += driver.get_log("browser")
    (artifacts_dir / "console.log").write_text("\n".join(json.dumps(entry) for entry in console) + "\n")
    errors = [
        e for e in console if e["level"] == "SEVERE" and "WebSocket connection to" not in e["message"]
    ]
    assert not errors, errors


# -------------------------------------------------------------------------------------------------------------
# The tags card on made-up messages

TAGS = ("rock", "pop", "jazz", "Hip-Hop", "indie", "female vocalists")
TAG_PROBABILITIES = (0.300004, 0.1, 0.05, 0.623456, 0.41, 0.2)  # Hip-Hop, indie, rock, female vocalists, pop
LABELS = ("classical", "electronic", "pop", "rock")
MOODS = ("amazement", "solemnity", "tenderness", "nostalgia", "calmness", "power", "joyful_activation", "tension",
         "sadness")  # the shipped model's, so that the screenshot shows the real layout


@contextlib.contextmanager
def feed_in_a_thread(hello: dict[str, Any]) -> Iterator[tuple[Feed, Callable[[dict[str, Any]], None]]]:
    """The real feed server with the shipped pages, on its own event loop; yields it and a thread-safe publish."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="feed-loop", daemon=True)
    thread.start()
    feed = Feed(FeedConfig(host=HOST, port=0), hello=hello)
    try:
        asyncio.run_coroutine_threadsafe(feed.start(), loop).result(timeout=10)
        yield feed, lambda message: loop.call_soon_threadsafe(feed.publish, message)
    finally:
        asyncio.run_coroutine_threadsafe(feed.close(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()


def made_up_scores(seq: int, *, tag_names: tuple[str, ...] = TAGS, silent: bool = False,
                   state: str | None = None) -> dict[str, Any]:
    """``state`` "speech" or "unsure": the scores are given, no top genre is."""
    tags = np.array(TAG_PROBABILITIES if tag_names else [])
    return scores_message(
        seq=seq, t=3.0 + 0.5 * seq, window_start_s=0.5 * seq, window_end_s=3.0 + 0.5 * seq, labels=LABELS,
        mood_names=MOODS, tag_names=tag_names, genre=None if silent else np.array([0.1, 0.2, 0.05, 0.65]),
        top=None if silent or state else 3, taste=None if silent else 0.7,
        moods=None if silent else np.linspace(0.1, 0.9, len(MOODS)), tags=None if silent else tags, level_dbfs=-80.0 if silent else -18.0, silent=silent, latency_ms=4.0,
        state=state,
    )


def test_dashboard_shows_the_top_tags_and_hides_them_when_there_are_none(browser, artifacts_dir: Path) -> None:
    driver = browser
    hello = hello_message(
        model_name="made-up", model_version="1", labels=LABELS, mood_names=MOODS, tag_names=TAGS, sample_rate=22050,
        window_s=3.0, hop_s=0.5, provider="cpu", taste_source="crowd", source="made-up messages",
    )  # fmt: skip
    with feed_in_a_thread(hello) as (feed, publish):
        set_viewport(driver, DASHBOARD_VIEWPORT)
        driver.get(f"http://{HOST}:{feed.port}/")
        wait_for("the dashboard to connect", lambda: feed.client_count == 1, timeout_s=STATE_TIMEOUT_S)

        def shown(seq: int) -> Callable[[], dict[str, Any] | None]:
            return lambda: (page := read_page(driver))["seq"] == seq and page

        tagged = made_up_scores(0)
        publish(tagged)
        page = wait_for("the tagged hop", shown(0), timeout_s=STATE_TIMEOUT_S)
        assert not page["tagsHidden"]
        assert page["tags"] == expected_tags(tagged)
        assert [t["text"] for t in page["tags"]] == ["Hip-Hop62%", "indie41%", "rock30%", "female vocalists20%",
                                                     "pop10%"]  # fmt: skip
        assert [t["p"] for t in page["tags"]] == ["0.6235", "0.4100", "0.3000", "0.2000", "0.1000"]
        top_tag_px = "return document.querySelector('.tag .tag-bar').getBoundingClientRect().width"
        wait_for("the top tag's bar to be drawn", lambda: driver.execute_script(top_tag_px) > 1, timeout_s=5)
        card = driver.execute_script("return document.querySelector('#tags-card').getBoundingClientRect().height")
        assert card > 20  # laid out in the grid, not collapsed
        screenshot(driver, artifacts_dir / "dashboard-tags.png")

        publish(made_up_scores(1, silent=True))
        page = wait_for("the silent hop", shown(1), timeout_s=STATE_TIMEOUT_S)
        assert page["state"] == "silent" and page["tagsHidden"] and page["tags"] == []

        publish(made_up_scores(2))
        assert wait_for("tags again", shown(2), timeout_s=STATE_TIMEOUT_S)["tags"] == expected_tags(tagged)

        for seq, state in ((10, "speech"), (11, "unsure")):  # what plays is not a genre: the page says so
            publish(made_up_scores(seq, state=state))
            page = wait_for(f"the {state} hop", shown(seq), timeout_s=STATE_TIMEOUT_S)
            assert (page["topText"], page["top"], page["prob"], page["content"]) == (state, "", "", state)
            assert [bar["p"] for bar in page["bars"]] == ["0.1000", "0.2000", "0.0500", "0.6500"]  # still given
        screenshot(driver, artifacts_dir / "dashboard-unsure.png")

        publish(made_up_scores(3, tag_names=()))  # a model without tags sends []
        page = wait_for("the hop without tags", shown(3), timeout_s=STATE_TIMEOUT_S)
        assert page["state"] == "live" and page["tagsHidden"] and page["tags"] == []
        card = driver.execute_script("return document.querySelector('#tags-card').getBoundingClientRect().height")
        assert card == 0
        screenshot(driver, artifacts_dir / "dashboard-no-tags.png")
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
