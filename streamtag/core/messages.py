"""The feed's messages: the one place they are made. The formats are documented in ``docs/feed.md`` and
``docs/feed.schema.json``.

Every message is strict JSON: the builders leave out or clamp numbers that are not finite (a NaN from the model,
an infinite level from a sample of Inf).
"""

from __future__ import annotations

import math
from typing import Any, Protocol

from streamtag.core.colours import label_colours
from streamtag.core.levels import SILENCE_FLOOR_DBFS
from streamtag.core.scorer import ModelFacts
from streamtag.core.smoothing import MUSIC, SILENCE

# The one source of the feed's schema version; docs/feed.schema.json, docs/feed.md and web/feed.js repeat it and
# tests/live/test_feed.py checks that they agree. 2: hello's tag_names and scores' tags. 3: scores' state.
SCHEMA_VERSION = 3
LIKE = "like"
DISLIKE = "dislike"
LABEL_VALUES = (LIKE, DISLIKE)  # what a label message, a key in the display and a taste profile may say
SOURCE_DOWN = "source_down"  # the event kinds besides top_changed: live's source lost its input, and back
SOURCE_UP = "source_up"
# What the source is, as MQTT's PREFIX/source and OSC's /streamtag/source say it after each of those events
SOURCE_STATES = {SOURCE_UP: "up", SOURCE_DOWN: "down"}
_FLOAT_DIGITS = 4  # probabilities to 1e-4 are more than a display or a program needs, and keep messages small
TOP_TAGS = 5  # tags per scores message: what a person takes in at a glance; all of them are in `tag --json`
# The highest level a scores message reports: docs/feed.schema.json's maximum. Float audio can go past full scale
# (0 dBFS) a little; a level above this (or an infinite one, from a sample of Inf) says only "far too loud".
LEVEL_CEILING_DBFS = 10.0


def _r(x: float) -> float:
    return round(float(x), _FLOAT_DIGITS)


def _known(pairs: Any) -> list[tuple[str, float]]:
    """The (name, probability) pairs whose probability is a number: NaN or Inf means the model gave nothing usable
    for that name, and JSON has no way to say it other than leaving the name out."""
    return [(name, float(p)) for name, p in pairs if math.isfinite(p)]


def _level(level_dbfs: float) -> float:
    """The level as the schema allows it: NaN (no measurable level) and -inf read as the silence floor, anything
    above ``LEVEL_CEILING_DBFS`` (+inf included) as the ceiling."""
    if math.isnan(level_dbfs):
        return SILENCE_FLOOR_DBFS
    return round(min(max(float(level_dbfs), SILENCE_FLOOR_DBFS), LEVEL_CEILING_DBFS), 1)


def top_tags(tag_names: list[str] | tuple[str, ...], tags: Any, *, k: int = TOP_TAGS) -> list[dict[str, Any]]:
    """The ``k`` most probable tags, most probable first, as ``[{"name", "p"}]``; ``[]`` when ``tags`` is None.

    Ranked on the unrounded values; equal ones keep the model's order of tag names (a stable sort). Tags whose
    probability is not finite are left out (a NaN would also make the order undefined).
    """
    if tags is None:
        return []
    pairs = sorted(_known(zip(tag_names, tags, strict=True)), key=lambda pair: -pair[1])
    return [{"name": name, "p": _r(p)} for name, p in pairs[:k]]


class NamedModel(ModelFacts, Protocol):
    name: str
    version: str
    window_s: float


def hello_message(
    *,
    model_name: str,
    model_version: str,
    labels: list[str] | tuple[str, ...],
    mood_names: list[str] | tuple[str, ...],
    tag_names: list[str] | tuple[str, ...],
    sample_rate: int,
    window_s: float,
    hop_s: float,
    provider: str,
    taste_source: str,
    source: str,
) -> dict[str, Any]:
    return {
        "type": "hello",
        "schema_version": SCHEMA_VERSION,
        "model": {"name": model_name, "version": model_version},
        "labels": list(labels),
        "label_colors": label_colours(labels),
        "mood_names": list(mood_names),
        "tag_names": list(tag_names),
        "sample_rate": int(sample_rate),
        "window_s": _r(window_s),
        "hop_s": _r(hop_s),
        "provider": provider,
        "taste_source": taste_source,
        "source": source,
    }


def model_hello(info: NamedModel, *, hop_s: float, provider: str, taste_source: str, source: str) -> dict[str, Any]:
    """``hello_message`` of a model's own facts (``contract.ModelInfo``), for one stream of ``live`` or ``serve``."""
    return hello_message(
        model_name=info.name, model_version=info.version, labels=info.labels, mood_names=info.mood_names,
        tag_names=info.tag_names, sample_rate=info.sample_rate, window_s=info.window_s, hop_s=hop_s,
        provider=provider, taste_source=taste_source, source=source,
    )


def scores_message(
    *,
    seq: int,
    t: float,
    window_start_s: float,
    window_end_s: float,
    labels: list[str] | tuple[str, ...],
    mood_names: list[str] | tuple[str, ...],
    tag_names: list[str] | tuple[str, ...],
    genre: Any,
    top: int | None,
    taste: float | None,
    moods: Any,
    tags: Any,
    level_dbfs: float,
    silent: bool,
    latency_ms: float,
    audio_dropped_s: float = 0.0,
    taste_source: str | None = None,
    state: str | None = None,
) -> dict[str, Any]:
    """One hop's smoothed scores. While silent, ``genre``, ``moods`` and ``tags`` are None and ``top``/``taste`` null.
    ``state`` is what plays (smoothing.STATES; default: "silence" when silent, else "music"); ``top`` is null
    unless it is "music".

    ``tags`` holds every tag's probability (none for a model without tags); the message carries the ``TOP_TAGS``
    most probable. Probabilities that are not finite are left out of ``genre``, ``moods`` and ``tags``, and make
    ``taste`` null; ``level_dbfs`` is clamped to the silence floor and ``LEVEL_CEILING_DBFS``.
    """
    return {
        "type": "scores",
        "seq": seq,
        "t": _r(t),
        "window": {"start": _r(window_start_s), "end": _r(window_end_s)},
        "genre": {} if genre is None else {label: _r(p) for label, p in _known(zip(labels, genre, strict=True))},
        "top": None if top is None else labels[top],
        "taste": None if taste is None or not math.isfinite(taste) else _r(taste),
        "moods": {} if moods is None else {name: _r(s) for name, s in _known(zip(mood_names, moods, strict=True))},
        "tags": top_tags(tag_names, tags),
        "level_dbfs": _level(level_dbfs),
        "silent": bool(silent),
        "state": state or (SILENCE if silent else MUSIC),
        "latency_ms": round(float(latency_ms), 2),
        "audio_dropped_s": _r(audio_dropped_s),
        "dropped": 0,  # replaced per client when sent
        # whose taste ``taste`` is: it changes with a label, after the hello that first said it
        **({} if taste_source is None else {"taste_source": taste_source}),
    }


def event_message(*, seq: int, t: float, previous: str | None, current: str | None) -> dict[str, Any]:
    return {"type": "event", "seq": seq, "t": _r(t), "kind": "top_changed", "previous": previous, "current": current}


def source_event(*, seq: int, t: float, up: bool, detail: str) -> dict[str, Any]:
    """The source lost its input (``source_down``, ``detail`` says why) while ``live`` reopens it, or has it back
    (``source_up``, ``detail`` is the source). ``seq`` is that of the next scores message, ``t`` the stream time so
    far: neither moves while the source is down."""
    return {"type": "event", "seq": seq, "t": _r(t), "kind": SOURCE_UP if up else SOURCE_DOWN, "detail": detail}


def labelled_message(*, value: str, t: float, taste_source: str) -> dict[str, Any]:
    """A like or dislike was recorded (from the keys or a feed client), for the sinks: MQTT publishes it as an
    event. The feed itself answers the client that labelled with an ``ack``."""
    return {"type": "labelled", "value": value, "t": _r(t), "taste_source": taste_source}


def ack_message(*, value: str | None, ok: bool, text: str) -> dict[str, Any]:
    msg: dict[str, Any] = {"type": "ack", "ok": ok, "value": value}
    msg["message" if ok else "error"] = text
    return msg
