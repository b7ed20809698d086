"""``live --osc HOST:PORT``: each hop as OSC messages over UDP (python-osc); the addresses are made in
``streamtag.core.osc_messages``.

UDP never waits for the receiver: a datagram the socket cannot take at once (its buffer full) is dropped and
counted, so tagging is never held up, and a receiver that is not running costs nothing.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass
from typing import Any

from pythonosc.udp_client import SimpleUDPClient

from streamtag.core.osc_messages import osc_messages, osc_source_message
from streamtag.errors import StreamtagError

log = logging.getLogger(__name__)

USAGE = "--osc expects HOST:PORT, e.g. 127.0.0.1:9000 or [::1]:9000"


@dataclass(frozen=True, kw_only=True)
class OscConfig:
    host: str
    port: int


def parse_osc_address(text: str) -> OscConfig:
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    try:
        port_number = int(port)
    except ValueError:
        port_number = 0
    if not sep or not host or not 1 <= port_number <= 65535:
        raise StreamtagError(f"{USAGE}, got {text!r}")
    return OscConfig(host=host, port=port_number)


class OscSink:
    """A ``streamtag.sinks.Sink`` that sends each scores message as OSC messages to one UDP address."""

    def __init__(self, config: OscConfig, *, hello: dict[str, Any]) -> None:
        self.config = config
        self.description = f"osc udp://{config.host}:{config.port}/streamtag"
        self.labels = list(hello["labels"])
        self.mood_names = list(hello["mood_names"])
        self.dropped = 0  # messages the socket would not take
        self._client: SimpleUDPClient | None = None

    async def start(self) -> None:
        # Resolved once, off the loop: python-osc would otherwise look the name up again for every datagram.
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(self.config.host, self.config.port,
                                                                 type=socket.SOCK_DGRAM)
        except OSError as exc:
            raise StreamtagError(f"--osc {self.config.host}:{self.config.port}: cannot resolve the host ({exc})") \
                from None
        family, _, _, _, address = infos[0]
        self._client = SimpleUDPClient(address[0], self.config.port, family=family)  # a non-blocking socket

    def publish(self, message: dict[str, Any]) -> None:
        if self._client is None:
            return
        if message["type"] == "scores":
            messages = osc_messages(message, labels=self.labels, mood_names=self.mood_names)
        elif message["type"] == "event" and (source := osc_source_message(message)) is not None:
            messages = [source]
        else:
            return
        for address, arguments in messages:
            try:
                self._client.send_message(address, arguments)
            except OSError as exc:  # BlockingIOError: the socket's buffer is full; or the network is unreachable
                if not self.dropped:
                    log.warning("%s: %s; dropping messages the socket will not take", self.description, exc)
                self.dropped += 1

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self.dropped:
            log.warning("%d OSC messages to %s:%d were dropped", self.dropped, self.config.host, self.config.port)
