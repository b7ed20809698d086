"""``live --mqtt``: the hops, events and Home Assistant discovery to an MQTT broker (aiomqtt, on live's event loop).

The topics and payloads come from ``streamtag.core.mqtt_payloads``; this module only connects and sends.
``publish`` puts a hop's publications in the ``Outbox`` and returns; a background task connects, sends what is
due (QoS 1, one at a time, so a slow broker holds up only the outbox, which is bounded), and when the broker
refuses, is down or goes away, retries with exponential backoff and, once connected again, sends everything
retained anew. The broker sends ``offline`` to ``PREFIX/availability`` (the last will) when the connection is lost
without a goodbye, e.g. when streamtag is killed; a clean stop says ``offline`` itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomqtt
from aiomqtt.exceptions import MqttConnectError

from streamtag import __version__
from streamtag.core.mqtt_payloads import DISCOVERY_PREFIX, MqttMessages, Outbox, check_prefix
from streamtag.errors import StreamtagError

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "streamtag"
DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883
USER_ENV = "STREAMTAG_MQTT_USER"
PASSWORD_ENV = "STREAMTAG_MQTT_PASSWORD"
QOS = 1  # the broker acknowledges each publication: the sender knows what arrived, and waits for a slow broker
PUBLISH_TIMEOUT_S = 5.0  # an acknowledgement later than this: the connection is taken as lost
KEEPALIVE_S = 30
CLOSE_TIMEOUT_S = 3.0  # at the end: time to deliver what is queued and say offline
USAGE = "--mqtt expects mqtt://[USER[:PASSWORD]@]HOST[:PORT][/PREFIX] (mqtts:// for TLS)"


@dataclass(frozen=True, kw_only=True)
class MqttConfig:
    host: str
    port: int = DEFAULT_PORT
    prefix: str = DEFAULT_PREFIX
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    min_backoff_s: float = 1.0  # the first retry after a failure; each next one waits twice as long...
    max_backoff_s: float = 30.0  # ...up to this

    @property
    def url(self) -> str:
        """The broker's URL as shown to people: without the password."""
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{host}:{self.port}/{self.prefix}"


def parse_mqtt_url(text: str, *, environ: Mapping[str, str] = os.environ) -> MqttConfig:
    """``--mqtt``'s URL. A user name or password the URL does not give comes from ``STREAMTAG_MQTT_USER`` and
    ``STREAMTAG_MQTT_PASSWORD`` (which keep the password out of the process list)."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise StreamtagError(f"{USAGE}, got {text!r}")
    try:
        port = parts.port
    except ValueError:
        raise StreamtagError(f"{USAGE}: the port in {text!r} is not a number in 0..65535") from None
    if parts.query or parts.fragment or text.rstrip().endswith(("?", "#")):
        raise StreamtagError(f"{USAGE}: {text!r} has a '?' or '#'; a topic prefix cannot hold a wildcard")
    try:
        prefix = check_prefix(unquote(parts.path).strip("/") or DEFAULT_PREFIX)
    except ValueError as exc:
        raise StreamtagError(f"{USAGE}: {exc}") from None
    username = unquote(parts.username) if parts.username else environ.get(USER_ENV) or None
    password = unquote(parts.password) if parts.password else environ.get(PASSWORD_ENV) or None
    if password is not None and username is None:
        raise StreamtagError(f"an MQTT password needs a user name: put it in the URL (USER@HOST) or in {USER_ENV}")
    tls = parts.scheme == "mqtts"
    return MqttConfig(host=parts.hostname, port=port or (DEFAULT_TLS_PORT if tls else DEFAULT_PORT), prefix=prefix,
                      tls=tls, username=username, password=password)


def _reason(exc: BaseException) -> str:
    """aiomqtt's "Disconnected during message iteration" says less than the error it comes from."""
    return str(exc.__cause__ or exc)


class MqttSink:
    """A ``streamtag.sinks.Sink`` that publishes to one MQTT broker."""

    def __init__(self, config: MqttConfig, *, hello: dict[str, Any]) -> None:
        self.config = config
        self.description = f"mqtt {config.url} (Home Assistant discovery under {DISCOVERY_PREFIX}/)"
        self._messages = MqttMessages(hello, prefix=config.prefix, sw_version=__version__)
        self._outbox = Outbox()
        for publication in self._messages.online():
            self._outbox.put(publication)
        self._wake = asyncio.Event()  # something was put in the outbox
        self._closing = asyncio.Event()
        self._tls: ssl.SSLContext | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def queued(self) -> int:
        """Publications waiting for the broker."""
        return len(self._outbox)

    @property
    def dropped(self) -> int:
        """Events dropped because the queue was full while the broker could not take them."""
        return self._outbox.dropped

    async def start(self) -> None:
        if self.config.tls:
            self._tls = ssl.create_default_context()  # the system's CAs (SSL_CERT_FILE too), and the host name checked
        self._task = asyncio.create_task(self._run(), name="mqtt")
        self._task.add_done_callback(_report_crash)

    def publish(self, message: dict[str, Any]) -> None:
        for publication in self._messages.process(message):
            self._outbox.put(publication)
        self._wake.set()

    async def close(self) -> None:
        if self._task is None:
            return
        self._closing.set()
        self._wake.set()
        try:
            await asyncio.wait_for(self._task, CLOSE_TIMEOUT_S)
        except TimeoutError:
            log.warning("%s did not take the last messages within %g s", self.config.url, CLOSE_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - already reported by _report_crash
            pass
        if self._outbox.dropped:
            log.warning("%d MQTT events were dropped while %s could not take them", self._outbox.dropped,
                        self.config.url)

    def _client(self) -> aiomqtt.Client:
        will = self._messages.offline()
        return aiomqtt.Client(
            self.config.host, self.config.port, username=self.config.username, password=self.config.password,
            will=aiomqtt.Will(will.topic, will.payload, qos=QOS, retain=will.retain), tls_context=self._tls,
            keepalive=KEEPALIVE_S, timeout=PUBLISH_TIMEOUT_S,
        )

    async def _run(self) -> None:
        """Connect, send until the connection is lost, wait, connect again; until ``close``. Closed before it
        first connects, it still tries once: what a short run published is in the outbox."""
        backoff_s, failures = self.config.min_backoff_s, 0
        while True:
            connected = False
            try:
                async with self._client() as client:
                    connected = True
                    if failures:
                        log.warning("publishing to %s again", self.config.url)
                    backoff_s, failures = self.config.min_backoff_s, 0
                    self._outbox.resend_retained()
                    await self._session(client)
                    # Closing, the outbox delivered. Leaving `async with` disconnects cleanly, which tells the
                    # broker to drop the will: say offline first.
                    offline = self._messages.offline()
                    await client.publish(offline.topic, offline.payload, qos=QOS, retain=offline.retain)
                    return
            except aiomqtt.MqttError as exc:
                if isinstance(exc, MqttConnectError):
                    what = (f"the broker refused the connection ({_reason(exc)}); check the user name and password "
                            f"(in the URL, or {USER_ENV} and {PASSWORD_ENV})")
                else:
                    what = f"{'lost the connection' if connected else 'cannot connect'} ({_reason(exc)})"
                if failures == 0:
                    log.warning("%s: %s; tagging goes on, retrying after %g s, then up to every %g s",
                                self.config.url, what, backoff_s, self.config.max_backoff_s)
                else:
                    log.debug("%s: %s (attempt %d)", self.config.url, what, failures + 1)
                failures += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), backoff_s)
            if self._closing.is_set():
                return
            backoff_s = min(2 * backoff_s, self.config.max_backoff_s)

    async def _session(self, client: aiomqtt.Client) -> None:
        """Send until closing (returns) or until the connection is lost (raises MqttError)."""
        sender = asyncio.create_task(self._send(client))
        watcher = asyncio.create_task(self._until_disconnected(client))
        try:
            done, _ = await asyncio.wait({sender, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sender, watcher):
                task.cancel()
            await asyncio.gather(sender, watcher, return_exceptions=True)
        for task in done:
            task.result()

    @staticmethod
    async def _until_disconnected(client: aiomqtt.Client) -> None:
        """Subscribed to nothing, the message iterator only ends by raising MqttError when the connection goes:
        this notices a broker that went away while there is nothing to send."""
        async for _ in client.messages:
            pass

    async def _send(self, client: aiomqtt.Client) -> None:
        while True:
            publication = self._outbox.take()
            if publication is None:
                if self._closing.is_set():
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await client.publish(publication.topic, publication.payload, qos=QOS, retain=publication.retain)
            except BaseException:  # the connection went (MqttError) or the session ends (cancelled)
                self._outbox.put_back(publication)
                raise


def _report_crash(task: asyncio.Task[None]) -> None:
    """A bug in the sender must show when it happens, not when live ends (tagging goes on without MQTT)."""
    if not task.cancelled() and task.exception() is not None:
        log.error("publishing to MQTT stopped", exc_info=task.exception())
