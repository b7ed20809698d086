"""Live teaching: a key press or a feed message labels the last seconds of live audio, saved at once."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from streamtag.core.messages import DISLIKE, LABEL_VALUES, LIKE
from streamtag.errors import CorruptProfileError, ProfileError
from streamtag.taste.fit import KIND_LIVE, make_label, now_iso
from streamtag.taste.profile import MAX_LABELS, ModelIdentity, Profile
from streamtag.taste.store import (
    load_profile,
    profile_lock,
    profile_path_for,
    prune_clips,
    save_clip,
    save_profile,
)

log = logging.getLogger(__name__)

LIVE_LABEL_S = 8.0  # a live label covers the audio of the last seconds
LIVE_LOCK_WAIT_S = 0.25  # at most half a hop of stalled audio when another process holds the profile


class LiveTeacher:
    """Labels the last seconds of live audio from a key press or a feed message, and persists at once.

    ``hear(samples)`` is given every block of audio before the Tagger, and ``observe(windows)`` every batch of
    WindowScores it produces (it keeps the last ``label_s`` seconds of both); ``on_label("like" | "dislike")``
    turns those windows into a label, keeps their audio as the label's clip, refits the profile
    (in place, so the Tagger's scorer sees it on its next batch), writes it atomically and returns a line for
    the user. It blocks for the refit and the write: ``streamtag live`` calls it off the event loop. When a
    Tagger is attached, its ``taste_scorer`` is switched from the crowd's (None) to the
    profile's as soon as the profile has a label.
    """

    def __init__(
        self,
        profile: Profile,
        *,
        path: Path,
        sample_rate: int,
        label_s: float = LIVE_LABEL_S,
        tagger=None,
    ) -> None:
        self.profile = profile
        self.path = path
        self.sample_rate = int(sample_rate)
        self.label_s = float(label_s)
        self._recent: deque = deque()
        # The blocks the recent windows span (at most label_s, or one window when label_s is shorter), plus the
        # blocks heard before they are scored (before the first window: the last label_s + 10 s), each with the
        # stream position of its first sample. Kept as blocks and joined only for a label: a block comes every
        # 10-50 ms, and joining seconds of audio each time would copy them dozens of times a second.
        self._blocks: deque[tuple[int, np.ndarray]] = deque()
        self._audio_limit = int(round((self.label_s + 10.0) * self.sample_rate))
        self._heard = 0
        self._lock = threading.Lock()
        self._tagger = tagger
        self._seen_on_disk = self.path.exists()
        self._attach()

    @classmethod
    def open(cls, info, *, path: Path | None = None, tagger=None, label_s: float = LIVE_LABEL_S) -> LiveTeacher:
        """The teacher for the user's profile for model ``info`` (a new empty one if none exists yet)."""
        identity = ModelIdentity.from_info(info)
        path = path or profile_path_for(identity)
        profile = load_profile(identity, path, create=True)
        return cls(profile, path=path, sample_rate=info.sample_rate, label_s=label_s, tagger=tagger)

    @property
    def scorer(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """The Tagger's taste_scorer: the profile's once it has labels, else None (the crowd's taste)."""
        return self.profile.scorer if self.profile.active else None

    def describe(self) -> str:
        return self.profile.describe() if self.profile.active else "crowd"

    def _attach(self) -> None:
        if self._tagger is not None:
            self._tagger.taste_scorer = self.scorer

    def hear(self, samples: np.ndarray) -> None:
        """The stream's next block of audio, as the Tagger is given it (so sample positions agree)."""
        block = np.array(samples, dtype=np.float32).reshape(-1)  # a copy: the source may reuse its array
        with self._lock:
            self._blocks.append((self._heard, block))
            self._heard += len(block)
            keep_from = self._recent[0].start_sample if self._recent else self._heard - self._audio_limit
            while self._blocks and self._blocks[0][0] + len(self._blocks[0][1]) <= keep_from:
                self._blocks.popleft()

    def _clip(self, start: int, end: int) -> np.ndarray | None:
        """Samples [start, end) of the stream, or None when they were not all heard (a caller that never
        calls ``hear``): the label is then kept without a clip."""
        if not self._blocks or start < self._blocks[0][0] or end > self._heard:
            return None
        first = self._blocks[0][0]
        return np.concatenate([block for _, block in self._blocks])[start - first : end - first]

    def observe(self, windows: Iterable) -> None:
        """Remember the windows (WindowScores) that lie within the last ``label_s`` seconds of the stream.

        A label then covers exactly the audio heard in those seconds (at least the newest window, when
        ``label_s`` is shorter than one window).
        """
        with self._lock:
            for window in windows:
                self._recent.append(window)
            if self._recent:
                horizon = self._recent[-1].end_sample - int(round(self.label_s * self.sample_rate))
                while len(self._recent) > 1 and self._recent[0].start_sample < horizon:
                    self._recent.popleft()

    def on_label(self, value: str) -> str:
        """Label the recent audio ``value`` ("like" or "dislike"), refit, persist; returns a confirmation."""
        if value not in LABEL_VALUES:
            raise ProfileError(f"unknown label {value!r}: use {LIKE!r} or {DISLIKE!r}")
        with self._lock:
            recent = list(self._recent)
            audio = self._clip(recent[0].start_sample, recent[-1].end_sample) if recent else None
        if not recent:
            raise ProfileError("nothing heard yet to label: wait until the first window has been scored")
        # Digital silence is not worth a file: re-embedding it teaches nothing.
        clip = save_clip(audio, self.sample_rate) if audio is not None and np.any(audio) else None
        label = make_label(
            value,
            kind=KIND_LIVE,
            source=now_iso(),
            embeddings=np.stack([w.embedding for w in recent]),
            crowd_probs=np.array([w.crowd_taste for w in recent], dtype=np.float32),
            clip=clip,
        )
        with profile_lock(self.path, wait_s=LIVE_LOCK_WAIT_S):
            # Another process may have changed the file since we read it ('taste learn', 'forget', 'reset'):
            # start from what is on disk. A file that has gone since we last saw it was reset: start empty.
            rebuilt = None
            if self.path.exists():
                try:
                    labels = list(load_profile(self.profile.identity, self.path).labels)
                except CorruptProfileError as exc:
                    # Damaged behind our back (and now set aside): this process still holds every label it
                    # last read or wrote, which is better than a profile of one.
                    labels, rebuilt = list(self.profile.labels), exc.aside
                    log.warning("the taste profile on disk was corrupt (kept aside as %s); rewritten from the %d "
                                "labels this streamtag held", exc.aside, len(labels))
            else:
                labels = [] if self._seen_on_disk else list(self.profile.labels)
            labels.append(label)
            start = time.perf_counter()
            dropped = self.profile.replace_labels(labels)
            save_profile(self.profile, self.path)
            self._seen_on_disk = True
            elapsed_ms = (time.perf_counter() - start) * 1000.0
        if dropped:
            prune_clips()
        self._attach()
        seconds = (recent[-1].end_sample - recent[0].start_sample) / self.sample_rate
        verb = "Liked" if value == LIKE else "Disliked"
        text = (f"{verb} the last {seconds:.0f} s ({len(recent)} windows); taste is now "
                f"{self.profile.describe()}, saved in {elapsed_ms:.0f} ms")
        if dropped:
            text += f"; the oldest label went (a profile keeps the newest {MAX_LABELS})"
        if rebuilt is not None:
            text += f"; the profile on disk was corrupt (kept aside as {rebuilt.name}) and was rewritten from this run's labels"
        return text
