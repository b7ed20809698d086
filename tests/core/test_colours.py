"""One colour per genre label, for the terminal, the pages and other apps alike."""

from __future__ import annotations

from streamtag.core.colours import FALLBACK_COLOURS, label_colours
from streamtag.core.messages import hello_message


def test_known_genres_keep_their_colour_and_others_take_the_palette_by_place():
    assert label_colours(("classical", "electronic", "pop", "rock")) == {
        "classical": "#c9a7ff", "electronic": "#36d6e7", "pop": "#ff7a59", "rock": "#ef4b4b"}
    colours = label_colours(("Rock", "ambient", "speech"))
    assert colours == {"Rock": "#ef4b4b", "ambient": FALLBACK_COLOURS[1], "speech": FALLBACK_COLOURS[2]}
    assert label_colours([f"x{i}" for i in range(13)])["x12"] == FALLBACK_COLOURS[0]  # the palette wraps


def test_the_hello_carries_the_colours():
    hello = hello_message(model_name="m", model_version="1", labels=("jazz", "noise"), mood_names=(), tag_names=(),
                          sample_rate=22050, window_s=3.0, hop_s=0.5, provider="cpu", taste_source="crowd", source="x")
    assert hello["label_colors"] == {"jazz": "#3fc7c2", "noise": FALLBACK_COLOURS[1]}
