"""Sinks: where ``live`` sends the feed's messages besides the websocket feed (MQTT, OSC). docs/integrations.md.

A sink is a thin adapter: its payloads are made in ``streamtag.core`` (``mqtt_payloads``, ``osc_messages``), and it
never holds up tagging, whatever the other end does: ``publish`` is called on the event loop between hops and
returns at once.
"""

from __future__ import annotations

from typing import Any, Protocol


class Sink(Protocol):
    """``live`` creates a sink with the feed's hello, starts it, hands it every message the feed gets, and closes it."""

    description: str  # what the start-up line says, e.g. "mqtt mqtt://127.0.0.1:1883/streamtag"

    async def start(self) -> None:
        """Begin; a connection that cannot be made yet is not an error (it is retried), a bad address is."""

    def publish(self, message: dict[str, Any]) -> None:
        """Take one feed message (hello is given at creation). Never blocks; never raises for the far end."""

    async def close(self) -> None:
        """Deliver what it can within a few seconds, say goodbye where the protocol has a way to, and stop."""
