"""The display and the hop processor on made-up messages: what a person sees, and the messages behind it."""

from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
import pytest
from rich.console import Console

from streamtag.contract import ModelInfo
from streamtag.core.hops import HopProcessor
from streamtag.core.messages import hello_message, scores_message
from streamtag.core.smoothing import SmoothingConfig
from streamtag.core.stats import CaptureStats, PipelineStats
from streamtag.core.tagger import WindowScores
from streamtag.display import LineDisplay, TuiDisplay, format_line

LABELS = ("classical", "electronic", "pop", "rock")
MOODS = ("calmness", "power", "tension")
TAGS = ("rock", "pop", "jazz", "Hip-Hop", "indie", "female vocalists")
TAG_PROBABILITIES = [0.3, 0.1, 0.05, 0.62, 0.41, 0.2]  # Hip-Hop, indie, rock, female vocalists, pop; not jazz
INFO = ModelInfo(path=None, name="m", version="1", labels=LABELS, mood_names=MOODS, sample_rate=100,
                 window_samples=300, hop_samples=300, embedding_dim=2, provenance={})
INFO_WITH_TAGS = dataclasses.replace(INFO, tag_names=TAGS)


def hello(tag_names=()):
    return hello_message(model_name="m", model_version="1", labels=LABELS, mood_names=MOODS, tag_names=tag_names,
                         sample_rate=100, window_s=3.0, hop_s=0.5, provider="cpu", taste_source="crowd",
                         source="file: x.wav")


def scores(t: float, *, top: int | None = 3, silent: bool = False, level: float = -18.25, tags=None,
           state: str | None = None):
    """A hop's message; ``tags`` None is a model without tags, else the probabilities of ``TAGS``."""
    genre = None if silent else np.array([0.1, 0.2, 0.05, 0.65])
    tag_names, tags = ((), np.zeros(0)) if tags is None else (TAGS, np.asarray(tags))
    return scores_message(seq=int(t * 2), t=t, window_start_s=t - 3, window_end_s=t, labels=LABELS,
                          mood_names=MOODS, tag_names=tag_names, genre=genre, top=None if silent else top,
                          taste=None if silent else 0.7, moods=None if silent else [0.2, 0.9, 0.4],
                          tags=None if silent else tags, level_dbfs=level, silent=silent, latency_ms=4.25,
                          state=state)


def window(end: int, genre, level=-20.0, tags=()) -> WindowScores:
    return WindowScores(start_sample=end - 300, end_sample=end, genre=np.array(genre), taste=0.5, crowd_taste=0.5,
                        moods=np.array([0.1, 0.2, 0.3]), embedding=np.zeros(2), tags=np.array(tags, dtype=float),
                        level_dbfs=level)


def render_text(display: TuiDisplay) -> str:
    console = Console(record=True, width=120, color_system=None)
    console.print(display.render())
    return console.export_text()


def test_format_line():
    assert format_line(scores(12.5)) == (
        "    12.5s  rock         0.65  (electronic 0.20, classical 0.10, pop 0.05)  taste 0.70   -18.2 dBFS    4.2 ms"
    )
    assert format_line(scores(13.0, silent=True, level=-80.0)).split() == ["13.0s", "(silent)", "-80.0", "dBFS",
                                                                           "4.2", "ms"]


def test_speech_and_unsure_claim_no_genre_in_a_line_or_the_panel():
    assert format_line(scores(14.0, top=None, state="speech")) == (
        "    14.0s  (speech)           (rock 0.65, electronic 0.20, classical 0.10)  taste 0.70   -18.2 dBFS    4.2 ms"
    )
    display = TuiDisplay(on_quit=lambda: None)
    display._hello = hello()
    display.show(scores(15.0, top=None, state="unsure"), PipelineStats())
    text = render_text(display)
    assert "unsure: no genre here fits what plays" in text and "rock" in text  # the bars stay, none in bold


def test_format_line_appends_the_top_three_tags_of_a_model_with_tags():
    assert format_line(scores(12.5, tags=TAG_PROBABILITIES)) == (
        "    12.5s  rock         0.65  (electronic 0.20, classical 0.10, pop 0.05)  taste 0.70   -18.2 dBFS    4.2 ms"
        "  tags Hip-Hop 0.62, indie 0.41, rock 0.30"
    )
    assert "tags" not in format_line(scores(13.0, silent=True, level=-80.0, tags=TAG_PROBABILITIES))


def test_json_lines_are_the_feed_messages():
    out = io.StringIO()
    display = LineDisplay(as_json=True, stream=out)
    display.start(hello())
    display.show(scores(3.0), PipelineStats())
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [m["type"] for m in lines] == ["hello", "scores"]
    assert lines[1] == scores(3.0)


def test_tui_renders_bars_level_latency_and_timeline():
    labels_called = []
    quit_called = []
    display = TuiDisplay(on_quit=lambda: quit_called.append(1),
                         on_label=lambda v: labels_called.append(v) or f"{v}d it")
    display._hello = hello()
    stats = PipelineStats(capture=CaptureStats(dropped_frames=11025, in_rate=44100, input_overflows=3),  # 0.25 s
                          feed_url="ws://127.0.0.1:8765", feed_clients=lambda: 2)
    stats.latencies_ms.extend(float(ms) for ms in range(1, 101))  # 1..100 ms: p50 is 50, p99 is 99
    for t in np.arange(3.0, 30.0, 0.5):
        display.show(scores(float(t), top=3 if t < 20 else 0), stats)
    display._key("g")
    display._key("B")
    display._key("q")
    console = Console(record=True, width=120, color_system=None)
    console.print(display.render())
    text = console.export_text()
    assert labels_called == ["like", "dislike"] and quit_called == [1]
    for label in LABELS:
        assert label in text
    assert "0.65" in text and "taste" in text and "0.70  (crowd)" in text
    assert "-18.2 dBFS" in text
    assert "latency p50 50.0 ms  p99 99.0 ms" in text
    assert "dropped audio 0.25 s (3 overflows)" in text
    assert "feed ws://127.0.0.1:8765 (2 clients)" in text
    assert "disliked it" in text  # the confirmation of the last label
    assert "power 0.90" in text  # strongest mood first
    timeline_line = next(line for line in text.splitlines() if "timeline" in line)
    assert timeline_line.count("█") == 9  # hops at 3.0 .. 29.5 s fall in the 3 s cells 1 .. 9


def test_tui_shows_the_top_five_tags_only_for_a_model_with_tags():
    display = TuiDisplay(on_quit=lambda: None)
    display._hello = hello(tag_names=TAGS)
    display.show(scores(5.0, tags=TAG_PROBABILITIES), PipelineStats())
    tags_line = next(line for line in render_text(display).splitlines() if " tags " in line)
    assert tags_line.split("tags", 1)[1].strip(" │") == (
        "Hip-Hop 0.62 · indie 0.41 · rock 0.30 · female vocalists 0.20 · pop 0.10"
    )
    assert "jazz" not in tags_line
    display.show(scores(5.5, silent=True, level=-90.0, tags=TAG_PROBABILITIES), PipelineStats())
    assert "Hip-Hop" not in render_text(display)

    without_tags = TuiDisplay(on_quit=lambda: None)
    without_tags._hello = hello()
    without_tags.show(scores(5.0), PipelineStats())
    text = render_text(without_tags)
    assert "moods" in text and " tags " not in text


def test_tui_shows_silence():
    display = TuiDisplay(on_quit=lambda: None)
    display._hello = hello()
    display.show(scores(5.0, silent=True, level=-90.0), PipelineStats())
    text = render_text(display)
    assert "(silent)" in text and "rock" not in text


def test_hop_processor_smooths_and_reports_top_changes():
    # alpha = 1/2 at a 0.5 s hop; margin 0.05 held for 1 hop
    proc = HopProcessor(INFO, hop_s=0.5, smoothing=SmoothingConfig(
        hop_s=0.5, time_constant_s=0.5 / np.log(2), switch_margin=0.05, confirm_s=0.5))
    first = proc.process(window(300, [0.7, 0.1, 0.1, 0.1]), latency_ms=3.0)
    assert [m["type"] for m in first] == ["event", "scores"]
    assert first[0] == {"type": "event", "seq": 0, "t": 3.0, "kind": "top_changed", "previous": None,
                        "current": "classical"}
    second = proc.process(window(350, [0.1, 0.1, 0.1, 0.7]), latency_ms=3.0)  # [0.4, 0.1, 0.1, 0.4]: a tie
    assert [m["type"] for m in second] == ["scores"]
    assert second[0]["genre"] == {"classical": 0.4, "electronic": 0.1, "pop": 0.1, "rock": 0.4}
    assert second[0]["t"] == 3.5 and second[0]["window"] == {"start": 0.5, "end": 3.5}
    third = proc.process(window(400, [0.1, 0.1, 0.1, 0.7]), latency_ms=3.0)  # [0.25, .., 0.55]
    assert third[0] == {"type": "event", "seq": 2, "t": 4.0, "kind": "top_changed", "previous": "classical",
                        "current": "rock"}
    assert third[1]["top"] == "rock" and third[1]["seq"] == 2
    assert third[1]["genre"]["rock"] == pytest.approx(0.55)
    assert first[1]["tags"] == [] and third[1]["tags"] == []  # a model without tags


def test_hop_processor_smooths_tags_like_moods_and_ranks_the_smoothed_values():
    # alpha = 1/2 at a 0.5 s hop; silence after 1 quiet hop
    proc = HopProcessor(INFO_WITH_TAGS, hop_s=0.5, smoothing=SmoothingConfig(
        hop_s=0.5, time_constant_s=0.5 / np.log(2), silence_enter_s=0.5))
    genre = [0.7, 0.1, 0.1, 0.1]
    first = proc.process(window(300, genre, tags=[0.9, 0.0, 0.0, 0.1, 0.2, 0.3]), latency_ms=3.0)[-1]
    assert [t["name"] for t in first["tags"]] == ["rock", "female vocalists", "indie", "Hip-Hop", "pop"]
    second = proc.process(window(350, genre, tags=[0.1, 0.0, 0.0, 0.9, 0.2, 0.3]), latency_ms=3.0)[-1]
    # smoothed [0.5, 0, 0, 0.5, 0.2, 0.3]: rock and Hip-Hop tie, in the model's order
    assert second["tags"] == [{"name": "rock", "p": 0.5}, {"name": "Hip-Hop", "p": 0.5},
                              {"name": "female vocalists", "p": 0.3}, {"name": "indie", "p": 0.2},
                              {"name": "pop", "p": 0.0}]
    third = proc.process(window(400, genre, tags=[0.1, 0.0, 0.0, 0.9, 0.2, 0.3]), latency_ms=3.0)[-1]
    assert third["tags"][:2] == [{"name": "Hip-Hop", "p": 0.7}, {"name": "rock", "p": 0.3}]
    silent = proc.process(window(450, genre, level=-90.0, tags=[0.1, 0.0, 0.0, 0.9, 0.2, 0.3]), latency_ms=3.0)
    assert silent[-1]["silent"] and silent[-1]["tags"] == []


def test_keys_are_offered_only_where_they_can_be_read():
    """With --source - stdin is the audio: the keys q/g/b were advertised although nothing read them."""
    display = TuiDisplay(on_quit=lambda: None)
    display._hello = hello()
    display.show(scores(3.0), PipelineStats())
    assert "Ctrl-C quits; like and dislike from the dashboard" in render_text(display)
    assert "g like" not in render_text(display)

    class Reading:  # what _KeyReader is once it reads a terminal
        active = True

    display._keys = Reading()
    assert "q quit   g like   b dislike" in render_text(display)


def test_tui_colours_each_genre_as_the_hello_and_the_pages_do():
    display = TuiDisplay(on_quit=lambda: None, on_label=lambda v: v)
    display._hello = hello()
    assert display._colour("rock") == hello()["label_colors"]["rock"] == "#ef4b4b"
    assert display._colour("unknown") == display._colour(None) == "grey50"


def test_tui_says_the_source_is_down_while_it_is_and_not_after():
    display = TuiDisplay(on_quit=lambda: None, on_label=lambda v: v)
    display._hello = hello()
    stats = PipelineStats()
    display.show(scores(3.0), stats)
    assert "down, reopening" not in render_text(display)
    stats.source_down = "loopback: pulse stopped delivering audio (unplugged, or the server quit)"
    text = render_text(display)
    assert "source  down, reopening it: loopback: pulse stopped delivering audio" in text
    stats.source_down = None
    assert "down, reopening" not in render_text(display)
