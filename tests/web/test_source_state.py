"""The pages' "source down" state in a real browser, on messages the test publishes through a real feed server:
the dashboard told by a ``source_down`` event, the overlay opened while the source is down (told by the hello),
then ``source_up`` and scores again."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from streamtag.core.messages import hello_message, source_event
from tests.web.test_pages import (
    DASHBOARD_VIEWPORT, HOST, LABELS, MOODS, OVERLAY_VIEWPORT, STATE_TIMEOUT_S, TAGS, feed_in_a_thread,
    made_up_scores, read_page, screenshot, set_viewport, wait_for,
)  # fmt: skip

pytestmark = pytest.mark.slow

SOURCE = "loopback: pulse (made-up.monitor) @ 44100 Hz x2"
WHY = f"{SOURCE} stopped delivering audio (unplugged, or the server quit)"
STALE_AFTER_S = 5.0  # feed.js STALE_AFTER_MS: without scores for this long a page says "waiting"


def test_the_pages_say_source_down_until_the_source_is_back(browser, artifacts_dir: Path) -> None:
    driver = browser
    hello = hello_message(
        model_name="made-up", model_version="1", labels=LABELS, mood_names=MOODS, tag_names=TAGS, sample_rate=22050,
        window_s=3.0, hop_s=0.5, provider="cpu", taste_source="crowd", source=SOURCE,
    )  # fmt: skip

    def state_is(state: str):
        return lambda: (page := read_page(driver))["state"] == state and page

    with feed_in_a_thread(hello) as (feed, publish):
        set_viewport(driver, DASHBOARD_VIEWPORT)
        driver.get(f"http://{HOST}:{feed.port}/")
        wait_for("the dashboard to connect", lambda: feed.client_count == 1, timeout_s=STATE_TIMEOUT_S)
        publish(made_up_scores(0))
        wait_for("a live hop", state_is("live"), timeout_s=STATE_TIMEOUT_S)

        publish(source_event(seq=1, t=3.5, up=False, detail=WHY))
        page = wait_for("the dashboard to say source down", state_is("source-down"), timeout_s=STATE_TIMEOUT_S)
        assert page["stateText"] == "source down" and page["timelineCount"] == 2  # the hop, then a gap
        assert driver.execute_script("return document.querySelector('#state').title") == WHY
        assert driver.execute_script("return document.body.dataset.state") == "source-down"
        time.sleep(STALE_AFTER_S + 0.5)
        assert read_page(driver)["state"] == "source-down"  # no scores are due: it does not turn to "waiting"
        screenshot(driver, artifacts_dir / "dashboard-source-down.png")

        hello["source_down"] = WHY  # what live's hello says while the source is down (tests/live checks that)
        set_viewport(driver, OVERLAY_VIEWPORT, transparent=True)
        driver.get(f"http://{HOST}:{feed.port}/overlay")
        page = wait_for("the overlay, opened now, to say source down", state_is("source-down"),
                        timeout_s=STATE_TIMEOUT_S)  # fmt: skip
        assert page["stateText"] == "source down"
        screenshot(driver, artifacts_dir / "overlay-source-down.png")

        del hello["source_down"]
        publish(source_event(seq=1, t=3.5, up=True, detail=SOURCE))
        wait_for("the overlay to wait for scores", state_is("waiting"), timeout_s=STATE_TIMEOUT_S)
        publish(made_up_scores(1))
        wait_for("the overlay to be live again", state_is("live"), timeout_s=STATE_TIMEOUT_S)
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
