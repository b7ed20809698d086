"""``streamtag serve``: many live streams through one model, with dynamic batching across the streams.

    stream tasks (one per source):  source.blocks() -> Tagger.due -> Batcher.submit
    the batch task:                 Batcher.take -> streams.score_together (in a worker thread) -> each
                                    stream's Tagger.assemble -> HopProcessor -> Feed.publish

Each stream keeps its own state (windows, frame ring, smoothing, sequence numbers); the engine is shared and
every batch holds the windows that were due across the streams, up to ``max_windows`` or ``max_wait_s``
(``core.batching``). A stream whose source fails is marked down and reopened with exponential backoff and
jitter; no other stream waits for it. The model runs in a worker thread, so sources and feed clients are served
while it runs; batches run one at a time, which keeps each stream's windows in order.

One port serves it all (docs/serve.md): ``/streams`` (JSON index), ``ws://HOST:PORT/streams/<id>`` (one
stream's feed, the same messages as ``live``), ``ws://HOST:PORT/streams`` (every stream, each message with its
``stream`` id), ``/`` (a page of the streams), ``/dashboard?feed=...``, ``/metrics`` (Prometheus) and ``/health``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamtag.core.batching import Batcher, BatchPolicy
from streamtag.core.hops import HopProcessor
from streamtag.core.messages import model_hello
from streamtag.core.smoothing import SmoothingConfig
from streamtag.core.tagger import Tagger
from streamtag.engine import Engine
from streamtag.errors import StreamtagError
from streamtag.feed import Feed, FeedConfig
from streamtag.prometheus_metrics import ServeMetrics
from streamtag.sources.choice import SourceSpec, open_source
from streamtag.streams import score_together

log = logging.getLogger(__name__)

RETRY_FIRST_S = 1.0
RETRY_MAX_S = 30.0
PAGES = {"/": "streams.html", "/dashboard": "dashboard.html", "/overlay": "overlay.html"}


@dataclass(frozen=True, kw_only=True)
class StreamConfig:
    id: str
    source: str  # a URL, a file, mic, loopback, a PulseAudio source name with device
    hop_s: float | None = None  # None: the server's
    device: str | None = None
    loop: bool = False  # a file starts again at its end
    taste: str | None = None  # a taste profile: a file (`streamtag taste export`), or a name in streamtag's data folder


@dataclass(frozen=True, kw_only=True)
class ServeConfig:
    streams: tuple[StreamConfig, ...]
    model_path: Path | None = None
    provider: str = "auto"
    hop_s: float = 0.5
    feed: FeedConfig = field(default_factory=FeedConfig)
    batch: BatchPolicy = field(default_factory=BatchPolicy)
    duration_s: float | None = None  # stop after this long (wall clock); None: until SIGINT/SIGTERM
    threads: int = 0


def stream_ids(sources: list[str]) -> list[str]:
    """Unique, URL-safe ids from what the sources are called: ``http://host/radio1.ogg`` -> ``radio1``."""
    ids: list[str] = []
    for source in sources:
        name = Path(source.split("?")[0].rstrip("/")).stem or source
        base = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-").lower() or "stream"
        candidate, n = base, 2
        while candidate in ids:
            candidate, n = f"{base}-{n}", n + 1
        ids.append(candidate)
    return ids


def load_config(path: Path) -> list[StreamConfig]:
    """Streams from a TOML file: ``[[stream]]`` tables with ``source`` and optional ``id``, ``hop_s``, ``device``,
    ``loop``."""
    import tomllib

    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise StreamtagError(f"{path}: cannot read the streams file ({exc}); see docs/serve.md for its form") from exc
    tables = data.get("stream")
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) and "source" in t for t in tables):
        raise StreamtagError(f"{path}: expected [[stream]] tables, each with a source; see docs/serve.md")
    known = {"id", "source", "hop_s", "device", "loop", "taste"}
    for table in tables:
        if set(table) - known:
            raise StreamtagError(f"{path}: unknown keys {sorted(set(table) - known)} in a [[stream]]; known: {sorted(known)}")
    ids = stream_ids([str(t["source"]) for t in tables])
    streams = [StreamConfig(id=str(t.get("id", default)), source=str(t["source"]), hop_s=t.get("hop_s"),
                            device=t.get("device"), loop=bool(t.get("loop", False)), taste=t.get("taste"))
               for t, default in zip(tables, ids, strict=True)]
    if len({s.id for s in streams}) != len(streams):
        raise StreamtagError(f"{path}: two streams have the same id")
    return streams


class _Stream:
    """One stream's state: its tagger (windows and frame ring), hop step, hello and health."""

    def __init__(self, config: StreamConfig, engine: Engine, *, hop_s: float, feed: Feed) -> None:
        info = engine.info
        self.config = config
        self.hop_samples = info.hop_samples_for(config.hop_s or hop_s)
        self.hop_s = self.hop_samples / info.sample_rate
        self._engine = engine
        self.profile = _stream_profile(config, engine)
        self.restart()
        self.processor = HopProcessor(info, hop_s=self.hop_s, smoothing=SmoothingConfig(hop_s=self.hop_s))
        self.state = "starting"
        self.error: str | None = None
        self.up_since: float | None = None
        self.restarts = 0
        self.top: str | None = None
        self.description = config.source
        self.hello = model_hello(info, hop_s=self.hop_s, provider=engine.provider, source=config.source,
                                 taste_source="crowd" if self.profile is None else self.profile.describe())
        feed.add_channel(f"/streams/{config.id}", lambda: [self.hello])

    def restart(self) -> None:
        """A new session of the source: new windows and a new frame ring. The old tagger is dropped, not reset:
        a batch in the worker thread may still be scoring its last windows."""
        self.tagger = Tagger(self._engine, hop_samples=self.hop_samples, batch_size=1,
                             taste_scorer=None if self.profile is None else self.profile.scorer)

    def index_entry(self, now: float) -> dict[str, Any]:
        return {"id": self.config.id, "source": self.config.source, "state": self.state, "top": self.top,
                "uptime_s": None if self.up_since is None else round(now - self.up_since, 1),
                "hop_s": round(self.hop_s, 4), "restarts": self.restarts, "error": self.error,
                "feed": f"/streams/{self.config.id}"}


def _stream_profile(config: StreamConfig, engine: Engine):
    """The stream's taste profile: ``taste`` is a profile file, or the name of one in streamtag's data folder
    (``NAME.json`` there). A profile that is missing, empty or made for another model stops the server at start,
    with the fix: a stream must not show someone's taste silently as the crowd's."""
    if config.taste is None:
        return None
    from streamtag.taste.store import load_active_profile, profile_home

    path = Path(config.taste).expanduser()
    if path.suffix != ".json" and len(path.parts) == 1:
        path = profile_home() / f"{config.taste}.json"
    if not path.is_file():
        raise StreamtagError(f"stream {config.id}: no taste profile at {path}; make one with 'streamtag taste learn' "
                             "and 'streamtag taste export PATH', or leave taste out for the crowd's")
    profile = load_active_profile(engine.info, path)
    if profile is None:
        raise StreamtagError(f"stream {config.id}: the taste profile {path} has no labels yet")
    return profile


class Server:
    """The streams, the batcher and the feed of one ``streamtag serve``."""

    def __init__(self, config: ServeConfig, *, engine: Engine | None = None) -> None:
        self.config = config
        # Host frame rings: a batch stacks the log-mel windows of many streams into one network run.
        self.engine = engine or Engine(config.model_path, provider=config.provider, threads=config.threads,
                                       device_ring=False)
        self.metrics = ServeMetrics()
        self.feed = Feed(config.feed, hello=None, pages=PAGES,
                         routes={"/streams": self._index, "/metrics": self.metrics.exposition, "/health": self._health})
        self.streams = {s.id: _Stream(s, self.engine, hop_s=config.hop_s, feed=self.feed) for s in config.streams}
        self.feed.add_channel("/streams", lambda: [{**s.hello, "stream": s.config.id} for s in self.streams.values()])
        self.batcher = Batcher(config.batch)
        self._wake = asyncio.Event()
        self._started = time.monotonic()

    # -- HTTP routes -------------------------------------------------------------------------------------------

    def _index(self) -> tuple[int, str, bytes]:
        now = time.monotonic()
        info = self.engine.info
        body = {"model": {"name": info.name, "version": info.version}, "provider": self.engine.provider,
                "streams": [s.index_entry(now) for s in self.streams.values()]}
        return 200, "application/json", json.dumps(body, allow_nan=False).encode()

    def _health(self) -> tuple[int, str, bytes]:
        """200 while any stream is up (``degraded`` when some are down), 503 when none is."""
        up = sum(s.state == "up" for s in self.streams.values())
        status = "ok" if up == len(self.streams) else ("degraded" if up else "down")
        body = {"status": status, "streams_up": up, "streams": len(self.streams)}
        return (200 if up else 503), "application/json", json.dumps(body).encode()

    # -- running -----------------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Ingest and batch until ``stop``; the feed must have been started (``feed.start()``)."""
        tasks = [asyncio.create_task(self._ingest(s, stop)) for s in self.streams.values()]
        tasks.append(asyncio.create_task(self._batches(stop)))
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self.feed.close()

    async def _ingest(self, stream: _Stream, stop: asyncio.Event) -> None:
        """Read the stream's source into the batcher; reopen it with backoff when it fails."""
        loop = asyncio.get_running_loop()
        delay = RETRY_FIRST_S
        info = self.engine.info
        while not stop.is_set():
            source = None
            try:
                spec = SourceSpec(source=stream.config.source, device=stream.config.device, loop=stream.config.loop)
                source = open_source(spec, out_rate=info.sample_rate)
                stream.description = stream.hello["source"] = source.description
                stream.state, stream.error, stream.up_since = "up", None, time.monotonic()
                self.metrics.stream_up(stream.config.id, True)
                async for block in source.blocks():
                    windows = stream.tagger.due(block)
                    if windows:
                        self.batcher.submit(stream.config.id, windows, now_s=loop.time())
                        self._wake.set()
                        self.metrics.stream_dropped(stream.config.id, source.stats.dropped_s)
                    delay = RETRY_FIRST_S  # it delivered: the next failure starts the backoff again
                stream.state = "ended"
                self.metrics.stream_up(stream.config.id, False)
                return
            except StreamtagError as exc:
                stream.state, stream.error, stream.up_since = "down", str(exc), None
                stream.restarts += 1
                self.metrics.stream_up(stream.config.id, False)
                log.warning("stream %s is down (%s); retrying in %.1f s", stream.config.id, exc, delay)
            finally:
                if source is not None:
                    source.close()
            self.batcher.drop(stream.config.id)
            stream.restart()
            # Jitter: streams that fell together (one network outage) do not all come back at the same instant.
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(RETRY_MAX_S, delay * 2)

    async def _batches(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            deadline = self.batcher.deadline_s()
            if deadline is None or not self.batcher.ready(now_s=loop.time()):
                timeout = None if deadline is None else max(0.0, deadline - loop.time())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
                self._wake.clear()
                continue
            jobs = self.batcher.take()
            work = [(self.streams[key].tagger.stream, windows) for key, windows, _ in jobs]
            started = time.perf_counter()
            try:
                scores = await asyncio.to_thread(score_together, work)
            except Exception:  # noqa: BLE001 - a failing batch must not stop the other streams for good
                log.exception("a batch of %d windows failed; its streams start their windows again", len(work))
                for stream_scorer, _ in work:
                    stream_scorer.reset()  # the worker is done with them: nothing else touches them now
                continue
            run_s = time.perf_counter() - started
            self.metrics.batch(sum(len(w) for _, w, _ in jobs), run_s)
            now = loop.time()
            for (key, windows, since_s), batch_scores in zip(jobs, scores, strict=True):
                self._deliver(self.streams[key], windows, batch_scores, latency_ms=(now - since_s) * 1000.0)

    def _deliver(self, stream: _Stream, windows, scores, *, latency_ms: float) -> None:
        for window in stream.tagger.assemble(windows, scores):
            for message in stream.processor.process(window, latency_ms=latency_ms):
                if message["type"] == "scores":
                    stream.top = message["top"]
                    self.metrics.hop(stream.config.id, latency_ms / 1000.0)
                self.feed.publish(message, channel=f"/streams/{stream.config.id}")
                self.feed.publish({**message, "stream": stream.config.id}, channel="/streams")


async def serve(config: ServeConfig, *, stop: asyncio.Event | None = None, engine: Engine | None = None) -> int:
    """Serve until SIGINT/SIGTERM, ``stop`` is set or ``duration_s`` passes; returns 0."""
    stop = stop or asyncio.Event()
    server = Server(config, engine=engine)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread, or Windows
            loop.add_signal_handler(sig, stop.set)
    if config.duration_s is not None:
        loop.call_later(config.duration_s, stop.set)
    await server.feed.start()  # a busy port fails here, before any source is opened
    http = server.feed.url.replace("ws://", "http://", 1)
    print(f"streamtag: serving {len(server.streams)} streams with {server.engine.info.name} "
          f"{server.engine.info.version} on {server.engine.provider.upper()}; streams {http}/streams, "
          f"feeds {server.feed.url}/streams/<id>, page {http}/", file=sys.stderr, flush=True)
    await server.run(stop)
    print(f"streamtag: stopped after {time.monotonic() - server._started:.1f} s; "
          f"{server.metrics.windows_total()} windows in {server.metrics.batches_total()} batches", file=sys.stderr,
          flush=True)
    return 0
