"""What ``live --osc`` sends each hop, made from the feed's scores message; no I/O (``streamtag.sinks.osc`` sends).

The address space (docs/integrations.md)::

    /streamtag/genre          s f    the top genre and its probability
    /streamtag/genre/vector   f...   every genre's probability, in the model's label order (hello's labels)
    /streamtag/taste          f      the taste probability
    /streamtag/mood/<name>    f      each mood's rate, 0..1
    /streamtag/state          s      what plays: music, speech, unsure or silence; always sent
    /streamtag/silent         i      1 while silent, else 0; always sent, and last: the end of a hop's set
    /streamtag/source         s s    "down" and why, when live's source loses its input; "up" and the source,
                                     when it has it back (the feed's source_down and source_up events)

While silent only ``/streamtag/state silence`` and ``/streamtag/silent 1`` are sent (there are no scores); while
the state is speech or unsure there is no ``/streamtag/genre`` (no genre is claimed); a value the model gave as NaN is left
out (its message, or the whole vector), as the feed leaves it out.
"""

from __future__ import annotations

import re
from typing import Any

from streamtag.core.messages import SOURCE_STATES

ROOT = "/streamtag"
_NOT_IN_ADDRESS = re.compile(r"[^A-Za-z0-9_.-]+")  # OSC reserves space # * , / ? [ ] { } in address parts


def address_part(name: str) -> str:
    return _NOT_IN_ADDRESS.sub("_", name) or "_"


def osc_messages(scores: dict[str, Any], *, labels: list[str] | tuple[str, ...],
                 mood_names: list[str] | tuple[str, ...]) -> list[tuple[str, list[Any]]]:
    """One scores message as ``[(address, arguments), ...]``, in the order they are sent."""
    genre, top, silent = scores["genre"], scores["top"], bool(scores["silent"])
    messages: list[tuple[str, list[Any]]] = []
    if not silent:
        if top is not None and top in genre:
            messages.append((f"{ROOT}/genre", [top, genre[top]]))
        if all(label in genre for label in labels):
            messages.append((f"{ROOT}/genre/vector", [genre[label] for label in labels]))
        if scores["taste"] is not None:
            messages.append((f"{ROOT}/taste", [scores["taste"]]))
        messages.extend((f"{ROOT}/mood/{address_part(name)}", [scores["moods"][name]])
                        for name in mood_names if name in scores["moods"])
    messages.append((f"{ROOT}/state", [scores["state"]]))
    messages.append((f"{ROOT}/silent", [int(silent)]))
    return messages


def osc_source_message(event: dict[str, Any]) -> tuple[str, list[Any]] | None:
    """A feed event as its OSC message: the source's going down or coming back; other events have none."""
    if event["kind"] not in SOURCE_STATES:
        return None
    return f"{ROOT}/source", [SOURCE_STATES[event["kind"]], event["detail"]]
