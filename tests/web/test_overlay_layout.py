"""The overlay's layout and its ``?offline`` option in a real browser, on messages the test publishes through a
real feed server.

Layout: at the sizes a streamer gives an OBS browser source (640 x 120, and 390 x 120), at ``?scale=1`` and
``?scale=2``, with the longest label, a percentage of 100% and the taste shown, the parts of the strip (the
swatch, the genre name, its percentage, the bar, the state, the heart, the taste) must not overlap, must all lie
inside the strip and the viewport, and the strip must keep its place and size whatever genre it shows. Boxes
are measured in the page: text by the box of its characters (a Range), so that text spilling out of its element
counts as well.

Offline: the strip hides when the feed goes away (at once, after a delay, by default after 10 s, or never with
``offline=show``) and comes back with the feed, restarted on the same port.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streamtag.core.messages import hello_message, scores_message
from streamtag.core.smoothing import SPEECH, UNSURE
from streamtag.feed import Feed, FeedConfig
from tests.web.test_pages import (
    HOST, LABELS, MOODS, OVERLAY_VIEWPORT, RECONNECT_TIMEOUT_S, STATE_TIMEOUT_S, TAGS, read_page, screenshot,
    set_viewport, wait_for,
)  # fmt: skip

pytestmark = pytest.mark.slow

NARROW_VIEWPORT = (390, 120)
# The shipped model's labels, and FMA's genres: "international" is the longest name streamtag colours.
LABEL_SETS = {
    "shipped": LABELS,
    "fma": ("electronic", "experimental", "folk", "hiphop", "instrumental", "international", "pop", "rock"),
}
HIGH_P = 0.996  # shown as 100%, the widest percentage
NO_GENRE_STATES = (SPEECH, UNSURE)  # what the strip shows where a genre would be, besides silence
OFFLINE_HIDE_AFTER_S = 10.0  # overlay.js OFFLINE_HIDE_AFTER_S, the default of ?offline
HIDE_DELAY_S = 2.0  # the delay the test asks for with ?offline=2
TIMING_SLACK_S = 2.0  # timers run late in a headless browser on a busy machine; still well short of the default
FADE_S = 0.5  # .strip's opacity transition; visibility turns hidden at its end

# Two animation frames later: the browser fires resize events while rendering a frame, before its callbacks.
NEXT_FRAME = "const done = arguments[arguments.length - 1]; requestAnimationFrame(() => requestAnimationFrame(done));"
# Every part of the strip a viewer sees, measured at one moment; text by the box of its characters.
READ_LAYOUT = """
const q = (s) => document.querySelector(s);
const box = (r) => ({left: r.left, top: r.top, right: r.right, bottom: r.bottom, width: r.width, height: r.height});
const textBox = (el) => { const range = document.createRange(); range.selectNodeContents(el);
                          return box(range.getBoundingClientRect()); };
return {
  viewport: {width: window.innerWidth, height: window.innerHeight},
  fontSize: parseFloat(getComputedStyle(document.body).fontSize),
  padding: parseFloat(getComputedStyle(document.body).paddingLeft),
  strip: box(q('#strip').getBoundingClientRect()),
  parts: {
    swatch: box(q('#swatch').getBoundingClientRect()),
    genre: textBox(q('#top-genre')),
    percentage: textBox(q('#top-prob')),
    bar: box(q('.prob-track').getBoundingClientRect()),
    state: box(q('#state').getBoundingClientRect()),
    heart: box(q('.heart').getBoundingClientRect()),
    taste: textBox(q('#taste')),
  },
};
"""

# The strip's state and visibility, with the page's own record of when it turned offline and when it hid.
INSTALL_WATCH = """
window.__watch = {offlineAt: null, hiddenAt: null};
const strip = document.getElementById('strip');
new MutationObserver(() => {
  const w = window.__watch, now = performance.now();
  const offline = ['connecting', 'disconnected'].includes(document.body.dataset.state);
  w.offlineAt = offline ? (w.offlineAt === null ? now : w.offlineAt) : null;
  w.hiddenAt = strip.hasAttribute('data-hidden') ? (w.hiddenAt === null ? now : w.hiddenAt) : null;
}).observe(document.body, {attributes: true, subtree: true, attributeFilter: ['data-state', 'data-hidden']});
"""
READ_SHOWN = """
const strip = document.getElementById('strip');
const style = getComputedStyle(strip);
return {state: document.body.dataset.state, hiddenAttr: strip.hasAttribute('data-hidden'),
        visibility: style.visibility, opacity: style.opacity, watch: window.__watch};
"""


class FeedServer:
    """The real feed server with the shipped pages, on its own event loop; it can stop and start again on the
    port it first got, as a restarted ``streamtag live`` does."""

    def __init__(self, hello: dict[str, Any]) -> None:
        self.hello = hello
        self.port = 0
        self._feed: Feed | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="feed-loop", daemon=True)
        self._thread.start()

    def start(self) -> None:
        feed = Feed(FeedConfig(host=HOST, port=self.port), hello=self.hello)
        asyncio.run_coroutine_threadsafe(feed.start(), self._loop).result(timeout=10)
        self._feed, self.port = feed, feed.port

    def stop(self) -> None:
        if self._feed is not None:
            asyncio.run_coroutine_threadsafe(self._feed.close(), self._loop).result(timeout=10)
            self._feed = None

    def publish(self, message: dict[str, Any]) -> None:
        feed = self._feed
        assert feed is not None
        self._loop.call_soon_threadsafe(feed.publish, message)

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()


def made_up_hello(labels: tuple[str, ...]) -> dict[str, Any]:
    return hello_message(
        model_name="made-up", model_version="1", labels=labels, mood_names=MOODS, tag_names=TAGS, sample_rate=22050,
        window_s=3.0, hop_s=0.5, provider="cpu", taste_source="crowd", source="made-up messages",
    )  # fmt: skip


def scores(seq: int, labels: tuple[str, ...], top: str | None, *, p: float = HIGH_P, taste: float = 1.0) -> dict:
    """A hop whose top genre is ``top`` at probability ``p`` (None: silence; "speech" or "unsure": that state, with
    the first label's scores), the others sharing the rest."""
    state = top if top in NO_GENRE_STATES else None
    if top is None:
        genre, top_index, silent = None, None, True
    else:
        top_index, silent = labels.index(labels[0] if state else top), False
        genre = np.full(len(labels), (1 - p) / (len(labels) - 1))
        genre[top_index] = p
        top_index = None if state else top_index
    return scores_message(
        seq=seq, t=3.0 + 0.5 * seq, window_start_s=0.5 * seq, window_end_s=3.0 + 0.5 * seq, labels=labels,
        mood_names=MOODS, tag_names=TAGS, genre=genre, top=top_index, taste=None if silent else taste,
        moods=None if silent else np.linspace(0.1, 0.9, len(MOODS)), tags=None if silent else np.full(len(TAGS), 0.3),
        level_dbfs=-80.0 if silent else -18.0, silent=silent, latency_ms=4.0, state=state,
    )  # fmt: skip


def overlaps(a: dict[str, float], b: dict[str, float]) -> bool:
    return min(a["right"], b["right"]) > max(a["left"], b["left"]) and \
        min(a["bottom"], b["bottom"]) > max(a["top"], b["top"])  # fmt: skip


def inside(inner: dict[str, float], outer: dict[str, float]) -> bool:
    return (inner["left"] >= outer["left"] and inner["right"] <= outer["right"]
            and inner["top"] >= outer["top"] and inner["bottom"] <= outer["bottom"])  # fmt: skip


def assert_layout(layout: dict[str, Any], what: str) -> None:
    """No two visible parts overlap; all lie inside the strip, and the strip inside the viewport."""
    viewport = {"left": 0, "top": 0, "right": layout["viewport"]["width"], "bottom": layout["viewport"]["height"]}
    strip = layout["strip"]
    assert inside(strip, viewport), f"{what}: the strip {strip} leaves the viewport {viewport}"
    visible = {name: b for name, b in layout["parts"].items() if b["width"] > 0 and b["height"] > 0}
    assert {"swatch", "genre", "bar", "state", "heart", "taste"} <= visible.keys(), f"{what}: {layout['parts']}"
    for name, b in visible.items():
        assert inside(b, strip), f"{what}: {name} {b} leaves the strip {strip}"
    for (name_a, a), (name_b, b) in itertools.combinations(visible.items(), 2):
        assert not overlaps(a, b), f"{what}: {name_a} {a} overlaps {name_b} {b}"


def shown(driver, label: str | None) -> bool:
    page = read_page(driver)
    if label in NO_GENRE_STATES:
        return page["state"] == "live" and page["top"] == "" and page["topText"] == label
    return page["state"] == ("live" if label else "silent") and page["top"] == (label or "")


def hello_received(driver, labels: tuple[str, ...]) -> bool:
    # the sizer holds every label and the three words shown where no genre is: silence, speech, unsure
    return driver.execute_script("return document.querySelectorAll('#genre-sizer > span').length") == len(labels) + 3


@pytest.mark.parametrize("label_set", sorted(LABEL_SETS))
def test_the_strip_fits_and_its_parts_never_overlap(browser, artifacts_dir: Path, label_set: str) -> None:
    driver = browser
    labels = LABEL_SETS[label_set]
    longest = max(labels, key=len)
    # pop first, then the longest, then another, then speech, then silence: the strip must not move or resize.
    sequence = ["pop", longest, "electronic", "speech", None]
    server = FeedServer(made_up_hello(labels))
    seq = itertools.count()
    try:
        server.start()
        for scale, align in ((1, None), (2, "right")):
            query = f"scale={scale}" + (f"&align={align}" if align else "")
            for size, how in ((OVERLAY_VIEWPORT, "loaded"), (NARROW_VIEWPORT, "resized")):
                set_viewport(driver, size, transparent=True)
                if how == "loaded":  # then resized, without a reload, as when a browser source is resized in OBS
                    driver.get(f"http://{HOST}:{server.port}/overlay?{query}")
                    wait_for("the overlay to get the hello", lambda: hello_received(driver, labels),
                             timeout_s=STATE_TIMEOUT_S)  # fmt: skip
                else:  # the page refits on the resize event, which the browser fires before its next frame
                    driver.execute_async_script(NEXT_FRAME)
                strips = []
                for label in sequence:
                    what = (f"{label_set} labels, {size[0]}x{size[1]} ({how}), scale={scale}, align={align}, "
                            f"showing {label or 'silence'}")
                    server.publish(scores(next(seq), labels, label))
                    wait_for(f"the overlay to show {label}", lambda label=label: shown(driver, label),
                             timeout_s=STATE_TIMEOUT_S)  # fmt: skip
                    layout = driver.execute_script(READ_LAYOUT)
                    assert layout["viewport"] == {"width": size[0], "height": size[1]}
                    assert_layout(layout, what)
                    if label is not None and label not in NO_GENRE_STATES:
                        page = read_page(driver)
                        assert page["prob"] == "100%" and page["taste"] == "1.0000", (what, page)
                    strips.append(layout["strip"])
                    if label == longest:
                        screenshot(driver, artifacts_dir / f"overlay-{label_set}-{size[0]}x{size[1]}-scale{scale}.png")
                # The strip keeps its left edge and its size whatever genre it shows.
                first = strips[0]
                for label, strip in zip(sequence[1:], strips[1:], strict=True):
                    for key in ("left", "top", "width", "height"):
                        assert strip[key] == pytest.approx(first[key], abs=0.01), (label, key, strip, first)
                # Aligned as asked, within the page's padding.
                if align == "right":
                    assert first["right"] == pytest.approx(size[0] - layout["padding"], abs=0.5), (first, layout)
                else:
                    assert first["left"] == pytest.approx(layout["padding"], abs=0.5), (first, layout)
                # The requested scale, or the largest that fits: then the strip fills the viewport's width or height.
                need_w = layout["strip"]["width"] + 2 * layout["padding"]
                need_h = layout["strip"]["height"] + 2 * layout["padding"]
                fill = max(need_w / size[0], need_h / size[1])
                assert layout["fontSize"] == pytest.approx(20 * scale) or (
                    layout["fontSize"] < 20 * scale and fill > 0.95
                ), (scale, size, layout)
    finally:
        server.close()
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors


def test_offline_hides_the_strip_until_the_feed_is_back(browser, artifacts_dir: Path) -> None:
    driver = browser
    labels = LABEL_SETS["shipped"]
    # ?offline= value -> seconds after going offline until the strip hides (None: never)
    options: dict[str | None, float | None] = {"hide": 0.0, str(HIDE_DELAY_S): HIDE_DELAY_S, "show": None,
                                               None: OFFLINE_HIDE_AFTER_S}  # fmt: skip
    server = FeedServer(made_up_hello(labels))
    windows: dict[str | None, str] = {}

    def on(option: str | None) -> dict[str, Any]:
        driver.switch_to.window(windows[option])
        return driver.execute_script(READ_SHOWN)

    def is_shown(page: dict[str, Any]) -> bool:
        return not page["hiddenAttr"] and page["visibility"] == "visible"

    try:
        server.start()
        for option in options:
            driver.switch_to.new_window("window")
            windows[option] = driver.current_window_handle
            set_viewport(driver, OVERLAY_VIEWPORT, transparent=True)
            driver.get(f"http://{HOST}:{server.port}/overlay" + ("" if option is None else f"?offline={option}"))
            driver.execute_script(INSTALL_WATCH)
            wait_for("the hello", lambda: hello_received(driver, labels), timeout_s=STATE_TIMEOUT_S)
        server.publish(scores(0, labels, "rock", p=0.7, taste=0.6))
        for option in options:
            wait_for(f"offline={option}: live", lambda o=option: on(o)["state"] == "live", timeout_s=STATE_TIMEOUT_S)
            assert is_shown(on(option)), (option, on(option))

        # streamtag stops: each overlay hides as its option says, timed by the page itself.
        server.stop()
        stopped = time.monotonic()
        hiding = sorted(((option, delay_s) for option, delay_s in options.items() if delay_s is not None),
                        key=lambda item: item[1])
        for option, delay_s in hiding:
            page = wait_for(f"offline={option}: the strip to hide",
                            lambda o=option: (p := on(o))["visibility"] == "hidden" and p,
                            timeout_s=delay_s + FADE_S + STATE_TIMEOUT_S)  # fmt: skip
            assert page["state"] == "disconnected" and page["hiddenAttr"] and page["opacity"] == "0", (option, page)
            # The page starts its timer just before the observer notes the state: a hair under the delay is on time.
            hidden_after_s = (page["watch"]["hiddenAt"] - page["watch"]["offlineAt"]) / 1000
            assert delay_s - 0.05 <= hidden_after_s <= delay_s + TIMING_SLACK_S, (option, page)
        screenshot(driver, artifacts_dir / "overlay-offline-hidden.png")
        # offline=show: still there, dimmed, after the default has hidden the others.
        assert time.monotonic() - stopped > OFFLINE_HIDE_AFTER_S
        page = on("show")
        assert page["state"] == "disconnected" and is_shown(page) and float(page["opacity"]) < 1, page
        screenshot(driver, artifacts_dir / "overlay-offline-shown.png")

        # streamtag is back on the same port: every strip shows again once its page has reconnected.
        server.start()
        for option in options:
            wait_for(f"offline={option}: the strip to come back with the hello",
                     lambda o=option: (p := on(o))["state"] == "waiting" and is_shown(p),
                     timeout_s=RECONNECT_TIMEOUT_S)  # fmt: skip
        server.publish(scores(1, labels, "pop", p=0.8, taste=0.4))
        for option in options:
            wait_for(f"offline={option}: live again, not dimmed",
                     lambda o=option: (p := on(o))["state"] == "live" and is_shown(p) and p["opacity"] == "1",
                     timeout_s=STATE_TIMEOUT_S)  # fmt: skip
    finally:
        server.close()
    console = []
    for window in windows.values():
        driver.switch_to.window(window)
        console += driver.get_log("browser")
    # Failed websocket connections while the feed was down are expected.
    errors = [e for e in console if e["level"] == "SEVERE" and "WebSocket connection to" not in e["message"]]
    assert not errors, errors
