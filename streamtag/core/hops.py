"""One scored window in, the feed messages of that hop out: smoothing, top-genre events, sequence numbers."""

from __future__ import annotations

from typing import Any

from streamtag.core.messages import event_message, scores_message
from streamtag.core.scorer import ModelFacts
from streamtag.core.smoothing import Smoother, SmoothingConfig
from streamtag.core.tagger import WindowScores


class HopProcessor:
    """Window scores in, feed messages out: smoothing, the top-genre events, sequence numbers. No I/O."""

    def __init__(self, info: ModelFacts, *, hop_s: float, smoothing: SmoothingConfig | None = None) -> None:
        self.info = info
        self.smoother = Smoother(smoothing or SmoothingConfig(hop_s=hop_s))
        self.seq = 0

    def process(self, window: WindowScores, *, latency_ms: float, audio_dropped_s: float = 0.0,
                taste_source: str | None = None) -> list[dict[str, Any]]:
        rate = self.info.sample_rate
        t_s = window.end_sample / rate
        out = self.smoother.update(
            genre=window.genre, taste=window.taste, moods=window.moods, tags=window.tags,
            level_dbfs=window.level_dbfs, content=window.content,
        )
        labels = self.info.labels
        messages = []
        if out.change is not None:
            messages.append(
                event_message(
                    seq=self.seq,
                    t=t_s,
                    previous=None if out.change.previous is None else labels[out.change.previous],
                    current=None if out.change.current is None else labels[out.change.current],
                )
            )
        messages.append(
            scores_message(
                seq=self.seq,
                t=t_s,
                window_start_s=window.start_sample / rate,
                window_end_s=t_s,
                labels=labels,
                mood_names=self.info.mood_names,
                tag_names=self.info.tag_names,
                genre=out.genre,
                top=out.top,
                taste=out.taste,
                moods=out.moods,
                tags=out.tags,
                level_dbfs=window.level_dbfs,
                silent=out.silent,
                state=out.state,
                latency_ms=latency_ms,
                audio_dropped_s=audio_dropped_s,
                taste_source=taste_source,
            )
        )
        self.seq += 1
        return messages
