"""The metrics of ``live`` and ``serve`` in the Prometheus text format (prometheus-client), at ``/metrics``.

prometheus-client is the reference implementation of the format: its histograms, label escaping and
exposition are what every Prometheus scraper expects, so there is nothing of ours to get wrong there.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Hop latency (a window's wait in the batcher plus its batch's run): from 1 ms to a 2 s hop.
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class ServeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._windows = Counter("streamtag_windows", "Windows scored", registry=self.registry)
        self._batches = Histogram("streamtag_batch_windows", "Windows per model run", buckets=BATCH_BUCKETS,
                                  registry=self.registry)
        self._batch_s = Histogram("streamtag_batch_seconds", "Seconds per model run", buckets=LATENCY_BUCKETS_S,
                                  registry=self.registry)
        self._hops = Counter("streamtag_stream_hops", "Hops delivered, per stream", ["stream"], registry=self.registry)
        self._latency = Histogram("streamtag_stream_latency_seconds", "Hop latency: batcher wait and model run",
                                  ["stream"], buckets=LATENCY_BUCKETS_S, registry=self.registry)
        self._up = Gauge("streamtag_stream_up", "1 while the stream's source delivers audio", ["stream"],
                         registry=self.registry)
        self._dropped = Gauge("streamtag_stream_audio_dropped_seconds",
                              "Audio the stream's source dropped because tagging fell behind, this session",
                              ["stream"], registry=self.registry)

    def batch(self, windows: int, seconds: float) -> None:
        self._windows.inc(windows)
        self._batches.observe(windows)
        self._batch_s.observe(seconds)

    def hop(self, stream: str, latency_s: float) -> None:
        self._hops.labels(stream).inc()
        self._latency.labels(stream).observe(latency_s)

    def stream_up(self, stream: str, up: bool) -> None:
        self._up.labels(stream).set(1 if up else 0)

    def stream_dropped(self, stream: str, seconds: float) -> None:
        self._dropped.labels(stream).set(seconds)

    def windows_total(self) -> int:
        return int(self.registry.get_sample_value("streamtag_windows_total") or 0)

    def batches_total(self) -> int:
        return int(self.registry.get_sample_value("streamtag_batch_windows_count") or 0)

    def exposition(self) -> tuple[int, str, bytes]:
        return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)


class LiveMetrics:
    """``live``'s hops, latency, lost audio and feed clients; the counters are read when scraped, not copied."""

    def __init__(self, stats, *, feed=None) -> None:
        """``stats``: the pipeline's ``core.stats.PipelineStats``; ``feed``: the ``Feed``, if there is one."""
        self.registry = CollectorRegistry()
        self._hops = Counter("streamtag_hops", "Hops scored", registry=self.registry)
        self._latency = Histogram("streamtag_hop_latency_seconds", "From a block's arrival to its window's scores",
                                  buckets=LATENCY_BUCKETS_S, registry=self.registry)
        Gauge("streamtag_audio_dropped_seconds", "Audio the ring buffer dropped because tagging fell behind",
              registry=self.registry).set_function(lambda: stats.audio_dropped_s)
        Gauge("streamtag_input_overflows", "Overflows the audio device reported", registry=self.registry
              ).set_function(lambda: stats.overflows)
        if feed is not None:
            Gauge("streamtag_feed_clients", "Feed clients connected", registry=self.registry
                  ).set_function(lambda: feed.client_count)
            Gauge("streamtag_feed_dropped_messages", "Messages the connected feed clients lost to a full queue",
                  registry=self.registry).set_function(lambda: sum(feed.dropped_per_client))

    def watch_mqtt(self, sink) -> None:
        """The MQTT sink's queue (``queued``, ``dropped``), read when scraped."""
        Gauge("streamtag_mqtt_queued", "Publications waiting for the MQTT broker", registry=self.registry
              ).set_function(lambda: sink.queued)
        Gauge("streamtag_mqtt_dropped_events", "MQTT events dropped while the broker could not take them",
              registry=self.registry).set_function(lambda: sink.dropped)

    def hop(self, latency_s: float) -> None:
        self._hops.inc()
        self._latency.observe(latency_s)

    def exposition(self) -> tuple[int, str, bytes]:
        return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)
