"""The websocket feed of ``streamtag live``, and the dashboard pages served on the same port.

The pipeline calls ``Feed.publish(message)``, which never waits: each client has its own bounded queue and its
own sender task. When a client reads too slowly (or not at all) its queue fills and its oldest messages are
dropped and counted; the next ``scores`` message it receives carries that count in ``dropped``. Other clients and
the pipeline are not delayed. The messages are made in ``streamtag.core.messages`` (documented in
``docs/feed.md`` and ``docs/feed.schema.json``); the sender refuses to send ``NaN`` or ``Infinity`` at all.

Incoming messages: ``{"type": "label", "value": "like" | "dislike"}`` is passed to ``on_label(value)``, and the
client gets an ``ack`` with the text that returns (or the error); ``on_label`` may return an awaitable of that
text. Anything else gets an ``ack`` with an error.
Each client may label ``label_burst`` times at once, then once per ``label_interval_s`` (a token bucket); labels
over that are answered with an error and never reach ``on_label``. The callback is called on the event loop.

Plain HTTP on the same host and port (websockets' ``process_request`` hook): ``/`` is the dashboard,
``/overlay`` the overlay, ``/static/<name>`` the other files of ``streamtag/web`` with a whitelisted name and
extension; everything else is 404. ``HEAD`` gets the headers ``GET`` would, without the body; other methods 405.
Requests from foreign web pages (``Origin``) or foreign names (``Host``, DNS rebinding) are refused with 403,
and a request that repeats ``Host``, ``Origin`` or ``Upgrade`` with 400 (``streamtag.origin``).

When all ``max_clients`` slots are taken, a new client makes room: every connected client is pinged, and those
that do not answer within ``room_ping_timeout_s`` (they read nothing, so their pongs never come) are dropped;
only if everyone answers is the newcomer refused with 503. Clients that connect and never read cannot lock the
dashboard out.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import inspect
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from streamtag import web_files
from streamtag.core.messages import LABEL_VALUES, ack_message
from streamtag.errors import FeedError, StreamtagError
from streamtag.origin import OwnNames, is_loopback_address

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
# Labels per client: a person labels a song or two a minute, and a burst of 5 covers second thoughts and a few
# quick corrections; after that one per 2 s never gets in a person's way, but keeps a script from filling the
# taste profile with thousands of labels (the red team saved 1,700 in 150 s before this limit).
LABEL_BURST = 5
LABEL_INTERVAL_S = 2.0

OnLabel = Callable[[str], "str | None"]
Hellos = Callable[[], list[dict[str, Any]]]  # what a client of a channel gets first, on connect
Route = Callable[[], tuple[int, str, bytes]]  # a dynamic HTTP page: (status, content type, body)


@dataclass(frozen=True, kw_only=True)
class FeedConfig:
    """Where the feed listens and how much it holds per client."""

    host: str = DEFAULT_HOST  # loopback only, unless asked: the feed has no authentication
    port: int = DEFAULT_PORT  # 0 picks a free port (tests)
    max_clients: int = 16
    queue_messages: int = 32  # per client; about 16 s of scores at a 0.5 s hop
    max_message_bytes: int = 4096  # incoming messages larger than this close the connection (code 1009)
    close_timeout_s: float = 1.0
    # A client whose socket takes no data for this long is disconnected. websockets' keepalive cannot do it: its
    # ping waits behind the blocked write, so the pong timeout never starts.
    stall_timeout_s: float = 10.0
    web_dir: Path | None = None  # None: the pages shipped in streamtag/web
    # Names of this machine that Host and Origin may carry besides loopback and the bound address, e.g. its LAN
    # name when the feed is bound to a LAN address; no port, IPv6 addresses without brackets.
    allowed_hosts: tuple[str, ...] = ()
    label_burst: int = LABEL_BURST
    label_interval_s: float = LABEL_INTERVAL_S
    # A client that is reading answers a ping in milliseconds on this machine; one that has not answered in a
    # second is not reading, and gives its slot to a newcomer when all are taken.
    room_ping_timeout_s: float = 1.0


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``PORT`` -> (host, port); IPv6 hosts in brackets, ``[::1]:8765``."""
    text = text.strip()
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or DEFAULT_HOST
    try:
        port_number = int(port)
    except ValueError:
        raise FeedError(f"--ws expects HOST:PORT, e.g. 127.0.0.1:8765, got {text!r}") from None
    if not 0 <= port_number <= 65535:
        raise FeedError(f"port {port_number} is out of range 0..65535")
    return host, port_number


# -------------------------------------------------------------------------------------------------------------
# Server


class TokenBucket:
    """At most ``burst`` takes at once, then one per ``interval_s``. No clock of its own: the caller passes the time."""

    def __init__(self, *, burst: int, interval_s: float, now_s: float) -> None:
        self.burst = burst
        self.interval_s = interval_s
        self._tokens = float(burst)
        self._last_s = now_s

    def take(self, now_s: float) -> bool:
        """Use one token if there is one; False (and nothing used) if not."""
        self._tokens = min(float(self.burst), self._tokens + (now_s - self._last_s) / self.interval_s)
        self._last_s = now_s
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class _Client:
    """One connection's bounded outbox and label allowance. ``put`` never waits; a full outbox drops its oldest."""

    def __init__(self, ws: Any, *, capacity: int, labels: TokenBucket, channel: str = "/") -> None:
        self.ws = ws
        self.channel = channel
        self.capacity = capacity
        self.outbox: collections.deque[dict[str, Any]] = collections.deque()
        self.ready = asyncio.Event()
        self.dropped = 0
        self.labels = labels

    def put(self, message: dict[str, Any]) -> None:
        if len(self.outbox) >= self.capacity:
            self.outbox.popleft()
            self.dropped += 1
        self.outbox.append(message)
        self.ready.set()


class Feed:
    """The websocket server. ``await start()``, then ``publish()`` each message; ``await close()`` at the end."""

    def __init__(
        self, config: FeedConfig | None = None, *, hello: dict[str, Any] | None, on_label: OnLabel | None = None,
        pages: dict[str, str] | None = None, routes: dict[str, Route] | None = None,
    ):
        """``hello``: the first message of the feed at ``/`` (None: no feed there, only ``add_channel``'s);
        ``pages``: URL path -> file of streamtag/web (default: the dashboard at ``/``, the overlay at ``/overlay``);
        ``routes``: URL path -> a function that makes that page when asked (JSON indexes, metrics)."""
        self.config = config or FeedConfig()
        self.hello = hello
        self.on_label = on_label
        self._pages = web_files.PAGES if pages is None else pages
        self._routes = routes or {}
        self._channels: dict[str, Hellos] = {} if hello is None else {"/": lambda: [self.hello]}
        self._clients: set[_Client] = set()
        self._server: Any = None
        self._web_dir = self.config.web_dir or Path(str(resources.files("streamtag.web")))
        self._own = OwnNames(bound_host=self.config.host, allowed=self.config.allowed_hosts)
        self._room = asyncio.Lock()  # one round of pings at a time, however many newcomers wait

    def add_route(self, path: str, route: Route) -> None:
        """A dynamic HTTP page at ``path``."""
        self._routes[path] = route

    def add_channel(self, path: str, hellos: Hellos) -> None:
        """A websocket feed at ``path`` (e.g. ``/streams/radio-1``) whose clients get ``hellos()`` first."""
        self._channels[path] = hellos

    @property
    def port(self) -> int:
        """The port actually bound (differs from the configured one when that was 0)."""
        return self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        host = self.config.host
        return f"ws://{'[' + host + ']' if ':' in host else host}:{self.port}"

    @property
    def client_count(self) -> int:
        return len(self._clients)

    async def start(self) -> None:
        from websockets.asyncio.server import serve

        cfg = self.config
        if cfg.host.lower() != "localhost" and not is_loopback_address(cfg.host):
            log.warning("the feed on %s:%s is reachable from other machines: anyone who reaches it can read the tags "
                        "and send labels to your taste profile", cfg.host or "*", cfg.port)
        try:
            self._server = await serve(
                self._handle,
                cfg.host,
                cfg.port,
                process_request=self._process_request,
                max_size=cfg.max_message_bytes,
                max_queue=4,  # incoming frames buffered per client; clients have little to say
                close_timeout=cfg.close_timeout_s,
                compression=None,  # small JSON; per-message deflate costs CPU for nothing
            )
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise FeedError(
                    f"cannot serve the feed on {cfg.host}:{cfg.port}: the port is in use (another streamtag live?); "
                    "choose another with --ws HOST:PORT, or turn the feed off with --no-ws"
                ) from exc
            raise FeedError(f"cannot serve the feed on {cfg.host}:{cfg.port}: {exc.strerror or exc}") from exc

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def dropped_per_client(self) -> list[int]:
        """Messages each connected client has lost to its full queue so far."""
        return [client.dropped for client in self._clients]

    async def flush(self, *, timeout_s: float = 1.0) -> None:
        """Wait until the clients' queues are empty, or ``timeout_s`` passes (a stalled client never empties)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline and any(client.outbox for client in self._clients):
            await asyncio.sleep(0.02)

    def publish(self, message: dict[str, Any], *, channel: str = "/") -> None:
        """Queue a message for every client of ``channel``; returns at once whatever the clients do."""
        for client in self._clients:
            if client.channel == channel:
                client.put(message)

    # -- connections -------------------------------------------------------------------------------------------

    async def _handle(self, ws: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        cfg = self.config
        loop = asyncio.get_running_loop()
        labels = TokenBucket(burst=cfg.label_burst, interval_s=cfg.label_interval_s, now_s=loop.time())
        channel = urlsplit(ws.request.path).path
        client = _Client(ws, capacity=cfg.queue_messages, labels=labels, channel=channel)
        for hello in self._channels[channel]():
            client.put(hello)
        self._clients.add(client)
        sender = asyncio.create_task(self._send_loop(client))
        try:
            async for raw in ws:
                client.put(await self._answer(raw, client, now_s=loop.time()))
        except ConnectionClosed:
            pass
        finally:
            self._clients.discard(client)
            sender.cancel()

    async def _send_loop(self, client: _Client) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                await client.ready.wait()
                while client.outbox:
                    message = client.outbox.popleft()
                    if message.get("type") == "scores":
                        message = {**message, "dropped": client.dropped}
                    try:
                        text = json.dumps(message, separators=(",", ":"), allow_nan=False)
                    except ValueError:  # a builder let a NaN or Inf through: a bug, but no reason to stop the feed
                        log.error("feed message not sent: it is not strict JSON (NaN or Infinity): %.200r", message)
                        continue
                    try:
                        await asyncio.wait_for(client.ws.send(text), self.config.stall_timeout_s)
                    except TimeoutError:
                        log.info("feed client %s took nothing for %.0f s: disconnected",
                                 client.ws.remote_address, self.config.stall_timeout_s)
                        client.ws.transport.abort()  # a close handshake would wait behind the same full buffer
                        return
                client.ready.clear()
        except ConnectionClosed:
            pass

    async def _answer(self, raw: str | bytes, client: _Client, *, now_s: float) -> dict[str, Any]:
        try:
            request = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: '[[[[...' within max_size
            return ack_message(value=None, ok=False, text="messages must be JSON objects")
        if not isinstance(request, dict) or request.get("type") != "label":
            return ack_message(value=None, ok=False, text='unknown message; send {"type": "label", "value": "like"}')
        value = request.get("value")
        if value not in LABEL_VALUES:
            return ack_message(value=None, ok=False, text=f"label value must be one of {', '.join(LABEL_VALUES)}")
        if self.on_label is None or client.channel != "/":
            return ack_message(value=value, ok=False, text="this feed does not take labels (no taste profile)")
        if not client.labels.take(now_s):
            cfg = self.config
            return ack_message(value=value, ok=False, text=(
                f"too many labels: slow down ({cfg.label_burst} at once, then one every {cfg.label_interval_s:g} s)"))
        try:
            text = self.on_label(value)
            if inspect.isawaitable(text):  # live's labeller refits and writes on a worker thread
                text = await text
        except StreamtagError as exc:
            return ack_message(value=value, ok=False, text=str(exc))
        except Exception as exc:  # noqa: BLE001 - a failing callback must not take the feed down
            log.exception("label callback failed")
            return ack_message(value=value, ok=False, text=f"labelling failed: {exc}")
        return ack_message(value=value, ok=True, text=text or f"recorded: {value}")

    # -- plain HTTP --------------------------------------------------------------------------------------------

    async def _process_request(self, connection: Any, request: Any) -> Any:
        response = self._respond(connection, request)
        if response is _FULL:
            response = await self._make_room(connection)
        if request.method == "HEAD" and response is not None:
            response.body = b""  # the headers GET would get, Content-Length included (RFC 9110, 9.3.2)
        return response

    async def _make_room(self, connection: Any) -> Any:
        """None (go on with the handshake) once a client that answers no ping is dropped, else a 503."""
        async with self._room:
            if len(self._clients) >= self.config.max_clients:
                clients = list(self._clients)
                answered = await asyncio.gather(*(self._answers_ping(c) for c in clients))
                for client, alive in zip(clients, answered, strict=True):
                    if not alive:
                        log.info("feed client %s answered no ping in %.1f s: its slot goes to a new client",
                                 client.ws.remote_address, self.config.room_ping_timeout_s)
                        self._clients.discard(client)
                        client.ws.transport.abort()  # a close handshake would wait on a client that does not read
            if len(self._clients) >= self.config.max_clients:
                return connection.respond(503, f"too many feed clients (limit {self.config.max_clients})\n")
            return None

    async def _answers_ping(self, client: _Client) -> bool:
        try:
            async with asyncio.timeout(self.config.room_ping_timeout_s):
                await (await client.ws.ping())
            return True
        except Exception:  # noqa: BLE001 - a timeout or a closed connection: either way it is not reading
            return False

    def _respond(self, connection: Any, request: Any) -> Any:
        refusal = self._own.refusal(request.headers)
        if refusal:
            return connection.respond(*refusal)
        if request.method not in _METHODS:
            response = connection.respond(405, f"{request.method} is not served here\n")
            response.headers["Allow"] = ", ".join(_METHODS)
            return response
        # HEAD cannot be upgraded (websockets would answer 405, with a body): it gets the headers of the page
        path = urlsplit(request.path).path
        if request.method == "GET" and request.headers.get("Upgrade", "").lower() == "websocket":
            if path not in self._channels:
                return connection.respond(404, f"no feed at {path}\n")
            if len(self._clients) >= self.config.max_clients:
                return _FULL
            return None  # go on with the websocket handshake
        if path in self._routes:
            status, content_type, body = self._routes[path]()
            return web_files.response(body, content_type, status=status)
        file = web_files.web_file(self._web_dir, self._pages, path)
        if file is None:
            return connection.respond(404, "not found\n")
        return web_files.file_response(file)

_METHODS = ("GET", "HEAD")
_FULL = object()  # what _respond says of an upgrade when every slot is taken: _make_room decides
