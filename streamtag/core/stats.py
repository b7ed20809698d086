"""What a live pipeline reports besides scores, counted once and read where it is shown.

The source counts what it captured and lost (``CaptureStats``); ``PipelineStats`` holds those counters (not
copies of them), the per-hop latencies and the feed's client count, for the display, the feed and the summary.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable
from dataclasses import dataclass, field

LATENCY_HISTORY = 1200  # hops the latency percentiles cover: 10 minutes at a 0.5 s hop


@dataclass
class CaptureStats:
    """Counters a source keeps while it runs. Never reset while live."""

    status_callbacks: int = 0  # device callbacks that carried any PortAudio status flag
    input_overflows: int = 0  # ...of which the device's own input overflowed (audio lost before we saw it)
    dropped_frames: int = 0  # frames dropped by the ring buffer because the consumer fell behind
    frames_in: int = 0  # frames received from the device, file or pipe, at the input rate
    in_rate: int = 0

    @property
    def dropped_s(self) -> float:
        return self.dropped_frames / self.in_rate if self.in_rate else 0.0


@dataclass
class PipelineStats:
    """Latency history, lost audio, feed clients: the one object the display and the summary read."""

    capture: CaptureStats = field(default_factory=CaptureStats)
    latencies_ms: collections.deque = field(default_factory=lambda: collections.deque(maxlen=LATENCY_HISTORY))
    feed_url: str | None = None
    feed_clients: Callable[[], int] = lambda: 0
    last_block_s: float | None = None  # when the source last delivered audio (the caller's monotonic clock)
    source_down: str | None = None  # why, while the source has lost its input and is being reopened
    hops: int = 0

    @property
    def audio_dropped_s(self) -> float:
        return self.capture.dropped_s

    @property
    def overflows(self) -> int:
        return self.capture.input_overflows

    def percentile_ms(self, q: float) -> float | None:
        """Nearest-rank percentile of the recent per-hop latencies (the smallest value >= q% of them)."""
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]
