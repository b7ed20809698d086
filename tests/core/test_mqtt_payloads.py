"""MQTT's topics, payloads, events and outbox, on made-up feed messages (no broker: tests/sinks has the real one)."""

from __future__ import annotations

import json

import pytest

from streamtag.core.messages import labelled_message, source_event
from streamtag.core.mqtt_payloads import (
    EventDetector,
    MqttMessages,
    Outbox,
    Publication,
    check_prefix,
    discovery,
    slug,
    state_payload,
)

LABELS = ["classical", "rock"]
MOODS = ["calmness", "joyful_activation"]
HELLO = {"type": "hello", "model": {"name": "streamtag-crnn", "version": "2.0.0"}, "labels": LABELS,
         "mood_names": MOODS}


def scores(t: float, top: str | None, *, silent: bool = False, taste: float | None = 0.5) -> dict:
    """A scores message as HopProcessor makes it (only the fields MQTT reads, and one it must not copy)."""
    if silent:
        return {"type": "scores", "t": t, "genre": {}, "top": None, "taste": None, "moods": {}, "tags": [],
                "silent": True, "state": "silence", "latency_ms": 3.0}
    genre = {"classical": 0.8, "rock": 0.2} if top == "classical" else {"classical": 0.3, "rock": 0.7}
    return {"type": "scores", "t": t, "genre": genre, "top": top, "taste": taste, "moods": {"calmness": 0.25},
            "tags": [{"name": "guitar", "p": 0.4}], "silent": False, "state": "music", "latency_ms": 3.0}


def test_state_has_every_mood_and_leaves_out_what_is_per_client():
    state = state_payload(scores(4.0, "rock"), mood_names=MOODS)
    assert state == {"t": 4.0, "top": "rock", "genre": {"classical": 0.3, "rock": 0.7}, "taste": 0.5,
                     "moods": {"calmness": 0.25, "joyful_activation": None}, "tags": [{"name": "guitar", "p": 0.4}],
                     "silent": False, "state": "music"}


def test_events_on_a_run_with_a_pause():
    detector = EventDetector()
    run = [scores(3.0, "classical"), scores(3.5, "classical"), scores(4.0, "rock"), scores(4.5, None, silent=True),
           scores(5.0, None, silent=True), scores(6.0, "rock"), scores(6.5, "classical")]
    events = [detector.update(message) for message in run]
    assert events == [
        [("genre_changed", {"t": 3.0, "previous": None, "current": "classical"})],
        [],
        [("genre_changed", {"t": 4.0, "previous": "classical", "current": "rock"})],
        [("silence_started", {"t": 4.5, "previous": "rock"})],
        [],
        [("silence_ended", {"t": 6.0, "silent_s": 1.5})],  # the same genre after the pause: no change
        [("genre_changed", {"t": 6.5, "previous": "rock", "current": "classical"})],
    ]


def test_a_run_that_starts_silent():
    detector = EventDetector()
    assert detector.update(scores(3.0, None, silent=True)) == [("silence_started", {"t": 3.0, "previous": None})]
    assert detector.update(scores(3.5, "rock")) == [("silence_ended", {"t": 3.5, "silent_s": 0.5}),
                                                    ("genre_changed", {"t": 3.5, "previous": None, "current": "rock"})]


def test_publications_of_one_hop():
    messages = MqttMessages(HELLO, prefix="home/tagger", sw_version="0.1.0")
    assert messages.process({"type": "event", "kind": "top_changed"}) == []
    state, genre, event = messages.process(scores(3.0, "rock"))
    assert (state.topic, state.retain, json.loads(state.payload)["top"]) == ("home/tagger/state", True, "rock")
    assert genre == Publication("home/tagger/genre", "rock", retain=True)
    assert (event.topic, event.retain) == ("home/tagger/event/genre_changed", False)
    assert json.loads(event.payload) == {"t": 3.0, "previous": None, "current": "rock"}
    _, genre, event = messages.process(scores(3.5, None, silent=True))
    assert genre.payload == "silence" and event.topic == "home/tagger/event/silence_started"
    [liked] = messages.process(labelled_message(value="like", t=12.0, taste_source="personal (1 label)"))
    assert (liked.topic, liked.retain) == ("home/tagger/event/like", False)
    assert json.loads(liked.payload) == {"t": 12.0, "taste_source": "personal (1 label)"}
    assert messages.online()[0] == Publication("home/tagger/availability", "online", retain=True)
    assert messages.online()[-1] == Publication("home/tagger/source", "up", retain=True)  # live opened it


def test_a_source_that_goes_and_comes_back():
    messages = MqttMessages(HELLO, prefix="home/tagger", sw_version="0.1.0")
    why = "pulse (null.monitor) stopped delivering audio (unplugged, or the server quit)"
    state, event = messages.process(source_event(seq=7, t=21.0, up=False, detail=why))
    assert state == Publication("home/tagger/source", "down", retain=True)
    assert (event.topic, event.retain, json.loads(event.payload)) == (
        "home/tagger/event/source_down", False, {"t": 21.0, "detail": why})
    state, event = messages.process(source_event(seq=7, t=21.0, up=True, detail="pulse (null.monitor)"))
    assert state == Publication("home/tagger/source", "up", retain=True)
    assert (event.topic, json.loads(event.payload)) == ("home/tagger/event/source_up",
                                                        {"t": 21.0, "detail": "pulse (null.monitor)"})
    assert messages.offline() == Publication("home/tagger/availability", "offline", retain=True)


def test_discovery_configs():
    configs = {p.topic: json.loads(p.payload) for p in
               discovery(HELLO, topics=MqttMessages(HELLO, prefix="home/tagger", sw_version="1.2").topics,
                         sw_version="1.2")}
    assert list(configs) == ["homeassistant/sensor/home_tagger/genre/config",
                             "homeassistant/sensor/home_tagger/taste/config",
                             "homeassistant/sensor/home_tagger/mood_calmness/config",
                             "homeassistant/sensor/home_tagger/mood_joyful_activation/config",
                             "homeassistant/binary_sensor/home_tagger/silent/config",
                             "homeassistant/binary_sensor/home_tagger/source/config"]
    genre = configs["homeassistant/sensor/home_tagger/genre/config"]
    assert genre == {
        "name": "Genre", "icon": "mdi:music", "device_class": "enum", "options": ["classical", "rock", "silence", "speech",
                                                                                "unsure"],
        "value_template": "{{ value_json.top or value_json.state }}",
        "unique_id": "home_tagger_genre", "state_topic": "home/tagger/state",
        "availability_topic": "home/tagger/availability", "payload_available": "online",
        "payload_not_available": "offline",
        "device": {"identifiers": ["home_tagger"], "name": "home/tagger", "manufacturer": "streamtag",
                   "model": "streamtag-crnn 2.0.0", "sw_version": "1.2"},
        "origin": {"name": "streamtag", "sw_version": "1.2"},
    }
    source = configs["homeassistant/binary_sensor/home_tagger/source/config"]
    # its own topic, not the state's; available and on the device as the others are
    assert (source["state_topic"], source["payload_on"], source["payload_off"]) == ("home/tagger/source", "up", "down")
    assert source["device_class"] == "connectivity" and source["unique_id"] == "home_tagger_source"
    assert {key: source[key] for key in ("availability_topic", "device")} == {
        key: genre[key] for key in ("availability_topic", "device")}
    mood = configs["homeassistant/sensor/home_tagger/mood_joyful_activation/config"]
    assert mood["name"] == "Mood joyful activation" and mood["unit_of_measurement"] == "%"
    assert mood["value_template"] == ('{{ none if value_json.moods["joyful_activation"] is none else '
                                      '(value_json.moods["joyful_activation"] * 100) | round | int }}')


@pytest.mark.parametrize("prefix", ["", "a//b", "/a", "a/", "a/+/b", "a/#", "a#"])
def test_prefixes_that_cannot_be_topics(prefix):
    with pytest.raises(ValueError, match="levels must be non-empty"):
        check_prefix(prefix)


def test_slug():
    assert (slug("home/living room"), slug("st"), slug("a.b-c_d"), slug("//")) == ("home_living_room", "st",
                                                                                 "a_b-c_d", "_")


def pub(topic: str, payload: str = "x", retain: bool = False) -> Publication:
    return Publication(topic, payload, retain)


def drain(outbox: Outbox) -> list[Publication]:
    out = []
    while (publication := outbox.take()) is not None:
        out.append(publication)
    return out


def test_outbox_keeps_the_latest_retained_payload_and_sends_it_first():
    outbox = Outbox(max_events=8)
    outbox.put(pub("st/availability", "online", retain=True))
    for t in range(5):
        outbox.put(pub("st/state", f"state {t}", retain=True))
    outbox.put(pub("st/event/genre_changed", "e1"))
    outbox.put(pub("st/genre", "rock", retain=True))
    assert len(outbox) == 4
    assert drain(outbox) == [pub("st/availability", "online", True), pub("st/state", "state 4", True),
                             pub("st/genre", "rock", True), pub("st/event/genre_changed", "e1")]
    outbox.put(pub("st/genre", "rock", retain=True))  # unchanged: retained by the broker already
    assert drain(outbox) == []
    outbox.resend_retained()  # a reconnect: every retained topic, in the order first put
    assert [p.topic for p in drain(outbox)] == ["st/availability", "st/state", "st/genre"]


def test_outbox_drops_the_oldest_events_and_counts_them():
    outbox = Outbox(max_events=3)
    for n in range(5):
        outbox.put(pub("st/event/genre_changed", f"e{n}"))
    assert outbox.dropped == 2
    first = outbox.take()
    assert first.payload == "e2"
    outbox.put_back(first)  # not confirmed: first again
    assert [p.payload for p in drain(outbox)] == ["e2", "e3", "e4"]
    for n in range(3):
        outbox.put(pub("st/event/genre_changed", f"f{n}"))
    outbox.put_back(pub("st/event/genre_changed", "older"))  # full: the one put back is the oldest, dropped
    assert outbox.dropped == 3 and [p.payload for p in drain(outbox)] == ["f0", "f1", "f2"]
