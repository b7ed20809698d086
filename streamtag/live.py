"""``streamtag live``: a source, the tagger, smoothing, the feed and the display, wired together.

The pipeline, per block of audio from the source:

    source.blocks() -> Tagger.feed (windows of the model's length every hop, batch 1) -> Smoother
        -> feed messages (scores, and an event when the top genre changes) -> Feed.publish + Display.show
        (+ each sink's publish: MQTT, OSC)

A device source that is lost (the sound server quit, the device went) is reopened in place unless
``exit_on_loss``: meanwhile the feed and the pages stay up, say "source down" (a ``source_down`` event, and
``source_down`` in the hello for clients that connect then) and ``/health`` answers 503. The tagger is not reset:
windows go on from the samples seen, so the first window after the gap is scored within a hop of the audio's return
(a window then spans the gap, as the stream time ``t`` does not count it).

``streamtag.core.hops.HopProcessor`` is the part without I/O (window scores in, feed messages out);
``run_live`` is the adapter that owns the event loop, the source, the feed and the display. Everything runs on one asyncio loop: the model
call for one window takes a few milliseconds, shorter than any useful hop, so there is no worker thread to
synchronise with, and a label from the display or the feed is handled between two hops.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from streamtag.core.hops import HopProcessor
from streamtag.core.messages import labelled_message, model_hello, source_event
from streamtag.core.smoothing import SmoothingConfig
from streamtag.core.stats import PipelineStats
from streamtag.core.tagger import Tagger, WindowScores
from streamtag.display import Display, LineDisplay, TuiDisplay
from streamtag.engine import Engine
from streamtag.errors import StreamtagError
from streamtag.feed import Feed, FeedConfig
from streamtag.prometheus_metrics import LiveMetrics
from streamtag.sinks import Sink
from streamtag.sinks.mqtt import MqttConfig, MqttSink
from streamtag.sinks.osc import OscConfig, OscSink
from streamtag.sources.base import Source
from streamtag.sources.choice import SourceSpec, open_source

log = logging.getLogger(__name__)

DEFAULT_HOP_S = 0.5


@dataclass(frozen=True, kw_only=True)
class LiveConfig:
    source: SourceSpec = field(default_factory=SourceSpec)
    model_path: Path | None = None
    provider: str = "auto"
    hop_s: float = DEFAULT_HOP_S
    feed: FeedConfig | None = field(default_factory=FeedConfig)  # None: no websocket feed
    mqtt: MqttConfig | None = None  # publish to an MQTT broker, with Home Assistant discovery (docs/integrations.md)
    osc: OscConfig | None = None  # send each hop as OSC messages over UDP (docs/integrations.md)
    output: str = "tui"  # "tui", "lines" or "json"
    smoothing: SmoothingConfig | None = None  # None: the defaults at this hop
    duration_s: float | None = None  # stop after this much stream time
    # onnxruntime intra-op threads. One: at batch 1 a thread pool spin-waits between hops, which on the 2-core
    # reference machine cost 8x the CPU (0.8 vs 0.1 core-s per 20 windows) and was slower (14 vs 9 ms median).
    threads: int = 1
    full_window: bool = False  # compute every window's spectrogram whole (for comparison: same scores, more work)
    exit_on_loss: bool = False  # a lost device ends the run with a DeviceError instead of being reopened


class LiveTaste(Protocol):
    """A personal taste profile taught while tagging (``streamtag.taste.teacher.LiveTeacher`` implements it).

    ``hear`` gets every block of audio before the Tagger does, and ``observe`` every scored window (it keeps
    what a label refers to: the last seconds, and their audio); ``on_label`` is
    called with "like" or "dislike" from the ``g``/``b`` keys or a feed ``label`` message and returns the
    confirmation to show (or raises StreamtagError); ``describe`` says whose taste ``taste`` is now.
    """

    def hear(self, samples: np.ndarray) -> None: ...

    def observe(self, windows: list[WindowScores]) -> None: ...

    def on_label(self, value: str) -> str: ...

    def describe(self) -> str: ...


TasteFactory = Callable[[Engine, Tagger], LiveTaste]


def _quiet_onnxruntime() -> None:
    """onnxruntime logs warnings (e.g. unused initialisers, memcpy nodes) that mean nothing to a listener."""
    with contextlib.suppress(Exception):
        import onnxruntime

        onnxruntime.set_default_logger_severity(3)
    logging.getLogger("websockets").setLevel(logging.ERROR)  # each refused or dropped client is not a warning


# Sources deliver a block every 10-50 ms; no audio for this long means the source is stuck or gone.
AUDIO_STALE_S = 2.0


def _health(stats: PipelineStats) -> tuple[int, str, bytes]:
    """``/health``: 200 while audio flows, 503 when none has come for ``AUDIO_STALE_S`` or the source is down."""
    age = None if stats.last_block_s is None else time.monotonic() - stats.last_block_s
    flowing = age is not None and age < AUDIO_STALE_S and stats.source_down is None
    status = "ok" if flowing else "no audio" if stats.source_down is None else "source down"
    body = {"status": status, "audio_age_s": None if age is None else round(age, 2),
            "hops": stats.hops, "audio_dropped_s": round(stats.audio_dropped_s, 3)}
    if stats.source_down is not None:
        body["detail"] = stats.source_down
    return (200 if flowing else 503), "application/json", json.dumps(body).encode()


def _frontend_words(tagger: Tagger) -> str:
    parts = tagger.engine.parts
    return f"{parts.frontend_kind} front end on new frames only" if tagger.shares_frames else "whole windows"


async def run_live(
    config: LiveConfig,
    *,
    taste: TasteFactory | None = None,
    engine: Engine | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Tag until the source ends, ``q``, SIGINT/SIGTERM, ``stop`` is set or ``duration_s`` passes. Returns 0."""
    _quiet_onnxruntime()
    engine = engine or Engine(config.model_path, provider=config.provider, threads=config.threads,
                              full_window=config.full_window)
    info = engine.info
    hop_samples = info.hop_samples_for(config.hop_s)  # whole spectrogram frames where the model streams
    hop_s = hop_samples / info.sample_rate
    stop = stop or asyncio.Event()
    tagger = Tagger(engine, hop_samples=hop_samples, batch_size=1)
    # first-run allocations before the first hop, on the path the stream takes (a first window and a hop)
    Tagger(engine, hop_samples=hop_samples, batch_size=1).feed(np.zeros(info.window_samples + hop_samples, np.float32))
    teacher = taste(engine, tagger) if taste is not None else None
    smoothing = None if config.smoothing is None else dataclasses.replace(config.smoothing, hop_s=hop_s)
    processor = HopProcessor(info, hop_s=hop_s, smoothing=smoothing)
    source: Source = open_source(config.source, out_rate=info.sample_rate, reopen=not config.exit_on_loss)
    print(
        f"streamtag: {info.name} {info.version} on {engine.provider.upper()} "
        f"(window {info.window_s:.2f} s, hop {hop_s:.3f} s, {_frontend_words(tagger)}); source {source.description}",
        file=sys.stderr,
        flush=True,
    )
    hello = model_hello(info, hop_s=hop_s, provider=engine.provider, source=source.description,
                        taste_source=teacher.describe() if teacher is not None else "crowd")
    sinks: list[Sink] = []  # filled below; the labeller tells whichever are there
    on_label = _labeller(teacher, hello, tagger=tagger, sinks=sinks) if teacher is not None else None
    stats = PipelineStats(capture=source.stats)
    metrics: LiveMetrics | None = None
    feed: Feed | None = None
    display: Display | None = None
    try:
        if config.feed is not None:
            feed = Feed(config.feed, hello=hello, on_label=on_label, routes={"/health": lambda: _health(stats)})
            metrics = LiveMetrics(stats, feed=feed)
            feed.add_route("/metrics", metrics.exposition)
            await feed.start()
            stats.feed_url, stats.feed_clients = feed.url, lambda: feed.client_count
            http = feed.url.replace("ws://", "http://", 1)
            print(f"streamtag: feed {feed.url}  dashboard {http}/  overlay {http}/overlay", file=sys.stderr, flush=True)
        # The sinks get what the feed gets; publishing to them never holds up a hop (streamtag/sinks/).
        if config.mqtt is not None:
            sinks.append(MqttSink(config.mqtt, hello=hello))
            if metrics is not None:
                metrics.watch_mqtt(sinks[-1])
        if config.osc is not None:
            sinks.append(OscSink(config.osc, hello=hello))
        for sink in sinks:
            await sink.start()
            print(f"streamtag: {sink.description}", file=sys.stderr, flush=True)
        if config.output == "tui":
            display = TuiDisplay(on_quit=stop.set, on_label=on_label)
        else:
            # Without a feed, nobody is left to tell once the output's reader has gone: stop then.
            display = LineDisplay(as_json=config.output == "json", on_closed=stop.set if feed is None else None)
        display.start(hello)
        _install_signal_handlers(stop)

        def publish(message: dict[str, Any]) -> None:
            if feed is not None:
                feed.publish(message)
            for sink in sinks:
                sink.publish(message)
            display.show(message, stats)

        def on_source_state(up: bool, detail: str) -> None:
            stats.source_down = None if up else detail
            if up:
                hello.pop("source_down", None)
            else:
                hello["source_down"] = detail  # what clients that connect while it is down are told (same dict)
            publish(source_event(seq=processor.seq, t=tagger.samples_seen / info.sample_rate, up=up, detail=detail))
            words = f"source up: {detail}" if up else f"source down: {detail}; reopening it"
            print(f"streamtag: {words}", file=sys.stderr, flush=True)

        source.on_state = on_source_state

        def handle(windows: list[WindowScores], taken_s: float) -> None:
            if teacher is not None and windows:
                teacher.observe(windows)
            for window in windows:
                # From the block reaching the tagger to this window's scores: a block that completes two windows
                # (a burst from the device) charges both to each, as both waited for them.
                latency_ms = (time.perf_counter() - taken_s) * 1000.0
                stats.latencies_ms.append(latency_ms)
                stats.hops += 1
                if metrics is not None:
                    metrics.hop(latency_ms / 1000.0)
                for message in processor.process(window, latency_ms=latency_ms, audio_dropped_s=stats.audio_dropped_s,
                                                 taste_source=hello["taste_source"]):
                    publish(message)

        async def pump() -> str:
            limit = None if config.duration_s is None else round(config.duration_s * info.sample_rate)
            async for block in source.blocks():
                taken_s = time.perf_counter()
                stats.last_block_s = time.monotonic()
                if limit is not None:
                    block = block[: max(0, limit - tagger.samples_seen)]
                if teacher is not None:
                    teacher.hear(block)
                handle(tagger.feed(block), taken_s)
                if limit is not None and tagger.samples_seen >= limit:
                    handle(tagger.finish(), time.perf_counter())  # a duration shorter than a window: one padded
                    return "duration reached"
                if stop.is_set():
                    return "stopped"
            handle(tagger.finish(), time.perf_counter())
            return "end of input"

        pump_task = asyncio.create_task(pump())
        stop_task = asyncio.create_task(stop.wait())
        await asyncio.wait({pump_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        stop_task.cancel()
        if not pump_task.done():
            pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump_task
            reason = "stopped"
        else:
            reason = pump_task.result()  # re-raises a DeviceError or AudioFileError from the source
        if feed is not None:
            await feed.flush(timeout_s=1.0)  # clients that keep up get the last messages before the server closes
    finally:
        source.close()
        if display is not None:
            display.stop()
        if feed is not None:
            await feed.close()
        for sink in sinks:
            await sink.close()
    seen_s = tagger.samples_seen / info.sample_rate
    p50, p99 = stats.percentile_ms(50), stats.percentile_ms(99)
    summary = f"streamtag: {reason} after {seen_s:.1f} s of audio, {processor.seq} hops"
    if p50 is not None:
        summary += f"; latency p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    if stats.audio_dropped_s or stats.overflows:
        summary += f"; dropped {stats.audio_dropped_s:.2f} s of audio, {stats.overflows} overflows"
    print(summary, file=sys.stderr, flush=True)
    return 0


def _labeller(teacher: LiveTaste, hello: dict[str, Any], *, tagger: Tagger, sinks: list) -> Callable[[str], Any]:
    """The ``on_label`` given to the feed and the keys: label, say whose taste is shown from now on, and tell the
    sinks (MQTT's like and dislike events).

    The label's refit and write run on a worker thread, one label at a time and in order, so that hops are not
    held up: they took up to 88 ms on a profile of 1,700 labels. The profile swaps its fit in as one object, so
    the tagger scores with the old fit or the new one."""
    one_at_a_time = asyncio.Lock()

    async def on_label(value: str) -> str:
        async with one_at_a_time:
            text = await asyncio.to_thread(teacher.on_label, value)
        hello["taste_source"] = teacher.describe()  # new feed clients and the display see it (same dict)
        message = labelled_message(value=value, t=tagger.samples_seen / tagger.info.sample_rate,
                                   taste_source=hello["taste_source"])
        for sink in sinks:
            sink.publish(message)
        return text

    return on_label


def _install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # Windows, or not the main thread
            loop.add_signal_handler(sig, stop.set)


def live_main(config: LiveConfig, **kwargs: Any) -> int:
    """Run ``run_live`` on a new event loop; StreamtagErrors propagate to the CLI, which prints them."""
    # aiomqtt drives its socket with add_reader/add_writer, which Windows' default (proactor) loop does not have.
    loop_factory = asyncio.SelectorEventLoop if sys.platform == "win32" and config.mqtt is not None else None
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(run_live(config, **kwargs))
    except StreamtagError:
        raise
    except KeyboardInterrupt:
        return 130


