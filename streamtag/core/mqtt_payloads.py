"""What ``live --mqtt`` publishes, made from the feed's messages; no I/O (``streamtag.sinks.mqtt`` is the client).

Topics under PREFIX (docs/integrations.md)::

    PREFIX/availability        online | offline (retained; offline is also the client's last will)
    PREFIX/state               JSON: the latest hop's top genre, genre, taste, moods, tags, silent, state (retained)
    PREFIX/genre               the top genre as a plain string; "silence", "speech" or "unsure" while none
                               is shown (retained)
    PREFIX/source              up | down: whether live's source delivers audio (retained)
    PREFIX/event/<kind>        JSON: genre_changed, silence_started, silence_ended, source_down, source_up,
                               like, dislike (not retained)
    homeassistant/<component>/<node_id>/<object_id>/config    Home Assistant MQTT discovery (retained)

The ``Outbox`` sits between the tagger and the broker: events wait in order, at most ``MAX_QUEUED_EVENTS`` (the
oldest is dropped, and counted), while a retained topic keeps only its latest payload, because a subscriber only
ever sees the latest one. So a broker that is slow or away costs memory for a few dozen events at most, and
after a reconnect everything retained is sent again (a broker without persistence has forgotten it).
"""

from __future__ import annotations

import json
import re
from collections import deque
from dataclasses import dataclass
from typing import Any

from streamtag.core.messages import SOURCE_DOWN, SOURCE_STATES, SOURCE_UP
from streamtag.core.smoothing import SILENCE, SPEECH, UNSURE

ONLINE = "online"
OFFLINE = "offline"
# PREFIX/genre and the genre sensor while no genre is shown: the scores' state (labels are genres: none is
# called that)
NO_GENRE_STATES = (SILENCE, SPEECH, UNSURE)
DISCOVERY_PREFIX = "homeassistant"  # Home Assistant's default discovery prefix
MAX_QUEUED_EVENTS = 64  # events are seconds apart: 64 cover minutes of a broker that is away
GENRE_CHANGED = "genre_changed"
SILENCE_STARTED = "silence_started"
SILENCE_ENDED = "silence_ended"
_NOT_IN_ID = re.compile(r"[^A-Za-z0-9_-]+")  # discovery's node_id and object_id allow only these


@dataclass(frozen=True)
class Publication:
    topic: str
    payload: str
    retain: bool


def check_prefix(prefix: str) -> str:
    """The topic prefix, or ValueError: no wildcards, no empty levels, no leading or trailing slash."""
    if not prefix or "+" in prefix or "#" in prefix or "\0" in prefix or "" in prefix.split("/"):
        raise ValueError(f"MQTT topic prefix {prefix!r}: levels must be non-empty and without + or #")
    return prefix


def slug(text: str) -> str:
    """``text`` as a discovery node_id or object_id: runs of other characters become one underscore."""
    return _NOT_IN_ID.sub("_", text).strip("_") or "_"


@dataclass(frozen=True)
class Topics:
    prefix: str

    @property
    def availability(self) -> str:
        return f"{self.prefix}/availability"

    @property
    def state(self) -> str:
        return f"{self.prefix}/state"

    @property
    def genre(self) -> str:
        return f"{self.prefix}/genre"

    @property
    def source(self) -> str:
        return f"{self.prefix}/source"

    def event(self, kind: str) -> str:
        return f"{self.prefix}/event/{kind}"

    @property
    def node_id(self) -> str:
        """The device's id in Home Assistant: one per prefix, so two taggers with their own prefixes are two devices."""
        return slug(self.prefix)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def state_payload(scores: dict[str, Any], *, mood_names: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """One scores message as the retained state. Every mood is present, null where unknown (silent, or NaN), so a
    template can always index it."""
    return {
        "t": scores["t"],
        "top": scores["top"],
        "genre": scores["genre"],
        "taste": scores["taste"],
        "moods": {name: scores["moods"].get(name) for name in mood_names},
        "tags": scores["tags"],
        "silent": scores["silent"],
        "state": scores["state"],
    }


class EventDetector:
    """Scores messages in, MQTT events out. Unlike the feed's ``top_changed``, silence is its own pair of events:
    ``genre_changed`` says the genre differs from the last one heard (``previous`` is null for the first of a run),
    so music that resumes after a pause in the same genre is no change."""

    def __init__(self) -> None:
        self.genre: str | None = None  # the last genre heard, kept through silence
        self.silent = False
        self.silence_t: float | None = None

    def update(self, scores: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        t = scores["t"]
        events: list[tuple[str, dict[str, Any]]] = []
        if scores["silent"] and not self.silent:
            events.append((SILENCE_STARTED, {"t": t, "previous": self.genre}))
            self.silence_t = t
        elif not scores["silent"] and self.silent:
            events.append((SILENCE_ENDED, {"t": t, "silent_s": round(t - self.silence_t, 4)}))
        self.silent = scores["silent"]
        top = scores["top"]
        if top is not None and top != self.genre:
            events.append((GENRE_CHANGED, {"t": t, "previous": self.genre, "current": top}))
            self.genre = top
        return events


def _percent(path: str) -> str:
    """A template for a probability in the state as a whole percentage, ``None`` (which Home Assistant reads as
    unknown) while it is null. Whole: Home Assistant records every change of state, and the state comes every hop."""
    return f"{{{{ none if {path} is none else ({path} * 100) | round | int }}}}"


def discovery(hello: dict[str, Any], *, topics: Topics, sw_version: str) -> list[Publication]:
    """Home Assistant discovery configs: sensors for the top genre, taste and each mood, binary sensors for
    silence and for the source. All but the source's read ``PREFIX/state``, the source's ``PREFIX/source``; all are
    unavailable while ``PREFIX/availability`` says offline."""
    node = topics.node_id
    common = {
        "state_topic": topics.state,
        "availability_topic": topics.availability,
        "payload_available": ONLINE,
        "payload_not_available": OFFLINE,
        "device": {
            "identifiers": [node],
            "name": topics.prefix,
            "manufacturer": "streamtag",
            "model": f"{hello['model']['name']} {hello['model']['version']}",
            "sw_version": sw_version,
        },
        "origin": {"name": "streamtag", "sw_version": sw_version},
    }
    entities: list[tuple[str, str, dict[str, Any]]] = [
        ("sensor", "genre", {
            "name": "Genre", "icon": "mdi:music", "device_class": "enum", "options": [*hello["labels"], *NO_GENRE_STATES],
            # No json_attributes_topic: the state's t changes every hop, and each would be a new recorded state.
            "value_template": "{{ value_json.top or value_json.state }}",
        }),
        ("sensor", "taste", {
            "name": "Taste", "icon": "mdi:heart", "unit_of_measurement": "%", "state_class": "measurement",
            "value_template": _percent("value_json.taste"),
        }),
        *(("sensor", f"mood_{slug(name)}", {
            "name": f"Mood {name.replace('_', ' ')}", "icon": "mdi:emoticon-outline", "unit_of_measurement": "%",
            "state_class": "measurement", "value_template": _percent(f"value_json.moods[{json.dumps(name)}]"),
        }) for name in hello["mood_names"]),
        ("binary_sensor", "silent", {
            "name": "Silent", "icon": "mdi:volume-off", "payload_on": "ON", "payload_off": "OFF",
            "value_template": "{{ 'ON' if value_json.silent else 'OFF' }}",
        }),
        # connectivity: Home Assistant shows it as connected / disconnected, which is what up and down mean here
        ("binary_sensor", "source", {
            "name": "Audio source", "device_class": "connectivity", "state_topic": topics.source,
            "payload_on": SOURCE_STATES[SOURCE_UP], "payload_off": SOURCE_STATES[SOURCE_DOWN],
        }),
    ]
    # An entity's own fields win over the common ones: the source's sensor reads its own topic.
    return [
        Publication(f"{DISCOVERY_PREFIX}/{component}/{node}/{object_id}/config",
                    _json({**common, **fields, "unique_id": f"{node}_{object_id}"}), retain=True)
        for component, object_id, fields in entities
    ]


class MqttMessages:
    """The feed's messages in, MQTT publications out."""

    def __init__(self, hello: dict[str, Any], *, prefix: str, sw_version: str) -> None:
        self.topics = Topics(check_prefix(prefix))
        self.mood_names = list(hello["mood_names"])
        self.events = EventDetector()
        self._discovery = discovery(hello, topics=self.topics, sw_version=sw_version)

    def online(self) -> list[Publication]:
        """What a run starts with: availability, the discovery configs, and its source, open."""
        return [Publication(self.topics.availability, ONLINE, retain=True), *self._discovery,
                Publication(self.topics.source, SOURCE_STATES[SOURCE_UP], retain=True)]  # live opened it

    def offline(self) -> Publication:
        """What a clean stop ends with, and the last will the broker sends when the connection is lost."""
        return Publication(self.topics.availability, OFFLINE, retain=True)

    def process(self, message: dict[str, Any]) -> list[Publication]:
        if message["type"] == "labelled":  # PREFIX/event/like or PREFIX/event/dislike
            body = {"t": message["t"], "taste_source": message["taste_source"]}
            return [Publication(self.topics.event(message["value"]), _json(body), retain=False)]
        if message["type"] == "event" and message["kind"] in SOURCE_STATES:
            body = {"t": message["t"], "detail": message["detail"]}
            return [Publication(self.topics.source, SOURCE_STATES[message["kind"]], retain=True),
                    Publication(self.topics.event(message["kind"]), _json(body), retain=False)]
        if message["type"] != "scores":
            return []  # the feed's top_changed events: EventDetector gives MQTT's own from the scores
        state = Publication(self.topics.state, _json(state_payload(message, mood_names=self.mood_names)), retain=True)
        genre = Publication(self.topics.genre, message["top"] or message["state"], retain=True)
        events = [Publication(self.topics.event(kind), _json(body), retain=False)
                  for kind, body in self.events.update(message)]
        return [state, genre, *events]


class Outbox:
    """What waits for the broker: retained topics (latest payload only) and events (in order, bounded).

    ``take`` gives the retained topics that are due first, in the order they were first put (availability,
    discovery, state, genre), then the events: a subscriber woken by an event then finds the state it describes.
    """

    def __init__(self, *, max_events: int = MAX_QUEUED_EVENTS) -> None:
        self.max_events = max_events
        self.dropped = 0  # events dropped because the queue was full
        self._retained: dict[str, Publication] = {}
        self._due: dict[str, None] = {}  # retained topics to send, as an ordered set
        self._events: deque[Publication] = deque()

    def put(self, publication: Publication) -> None:
        if publication.retain:
            if self._retained.get(publication.topic) != publication:  # unchanged: the broker retains it already
                self._retained[publication.topic] = publication
                self._due[publication.topic] = None
        else:
            if len(self._events) >= self.max_events:
                self._events.popleft()
                self.dropped += 1
            self._events.append(publication)

    def put_back(self, publication: Publication) -> None:
        """A publication taken but not confirmed (the connection went): an event goes first again; a retained
        topic needs nothing, as the reconnect's ``resend_retained`` sends its latest payload."""
        if publication.retain:
            return
        if len(self._events) >= self.max_events:
            self.dropped += 1  # it is the oldest
        else:
            self._events.appendleft(publication)

    def resend_retained(self) -> None:
        """After a (re)connect: every retained topic is due again, the broker may have lost them."""
        self._due = dict.fromkeys(self._retained)

    def take(self) -> Publication | None:
        if self._due:
            topic = next(iter(self._due))
            del self._due[topic]
            return self._retained[topic]
        return self._events.popleft() if self._events else None

    def __len__(self) -> int:
        """How many publications are due."""
        return len(self._due) + len(self._events)
