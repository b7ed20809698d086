"""OSC's address space, on made-up scores messages (tests/sinks/test_osc.py sends them to a real server)."""

from __future__ import annotations

from streamtag.core.messages import event_message, source_event
from streamtag.core.osc_messages import address_part, osc_messages, osc_source_message

LABELS = ["classical", "electronic", "rock"]
MOODS = ["calmness", "joyful_activation"]


def test_one_hop():
    message = {"type": "scores", "genre": {"classical": 0.1, "electronic": 0.2, "rock": 0.7}, "top": "rock",
               "taste": 0.61, "moods": {"calmness": 0.3, "joyful_activation": 0.4}, "silent": False,
               "state": "music"}
    assert osc_messages(message, labels=LABELS, mood_names=MOODS) == [
        ("/streamtag/genre", ["rock", 0.7]),
        ("/streamtag/genre/vector", [0.1, 0.2, 0.7]),
        ("/streamtag/taste", [0.61]),
        ("/streamtag/mood/calmness", [0.3]),
        ("/streamtag/mood/joyful_activation", [0.4]),
        ("/streamtag/state", ["music"]),
        ("/streamtag/silent", [0]),
    ]


def test_silence_sends_only_the_state_and_silent():
    message = {"type": "scores", "genre": {}, "top": None, "taste": None, "moods": {}, "silent": True,
               "state": "silence"}
    assert osc_messages(message, labels=LABELS, mood_names=MOODS) == [("/streamtag/state", ["silence"]),
                                                                      ("/streamtag/silent", [1])]


def test_speech_claims_no_genre():
    message = {"type": "scores", "genre": {"classical": 0.1, "electronic": 0.8, "rock": 0.1}, "top": None,
               "taste": 0.4, "moods": {}, "silent": False, "state": "speech"}
    sent = osc_messages(message, labels=LABELS, mood_names=MOODS)
    assert "/streamtag/genre" not in [address for address, _ in sent]
    assert sent[-2:] == [("/streamtag/state", ["speech"]), ("/streamtag/silent", [0])]


def test_values_the_feed_left_out_are_not_sent():
    """A NaN from the model is missing from the feed's message: its OSC message (or the whole vector) is left out."""
    message = {"type": "scores", "genre": {"classical": 0.1, "rock": 0.7}, "top": "rock", "taste": None,
               "moods": {"joyful_activation": 0.4}, "silent": False, "state": "music"}
    assert osc_messages(message, labels=LABELS, mood_names=MOODS) == [
        ("/streamtag/genre", ["rock", 0.7]),
        ("/streamtag/mood/joyful_activation", [0.4]),
        ("/streamtag/state", ["music"]),
        ("/streamtag/silent", [0]),
    ]


def test_address_parts_avoid_the_characters_osc_reserves():
    assert address_part("joyful activation/#1") == "joyful_activation_1"
    assert address_part("a.b-c_d") == "a.b-c_d"


def test_the_source_going_down_and_coming_back():
    down = source_event(seq=7, t=12.5, up=False, detail="PortAudio: device unavailable")
    assert osc_source_message(down) == ("/streamtag/source", ["down", "PortAudio: device unavailable"])
    up = source_event(seq=7, t=12.5, up=True, detail="pulse monitor of alsa_output.usb")
    assert osc_source_message(up) == ("/streamtag/source", ["up", "pulse monitor of alsa_output.usb"])
    assert osc_source_message(event_message(seq=8, t=14.0, previous="rock", current="pop")) is None
