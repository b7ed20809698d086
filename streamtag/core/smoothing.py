"""Decision logic between the tagger and what people see: EMA smoothing, hysteresis, a silence gate. Pure.

Each hop the tagger gives one window's raw scores. They jump from window to window (a drum fill, a quiet bar),
so what is shown and sent is smoothed:

* **EMA with a time constant.** ``s <- s + alpha * (x - s)`` with ``alpha = 1 - exp(-hop_s / time_constant_s)``
  for genre, taste, moods and tags alike, i.e. a first-order low-pass whose step response reaches 63% after
  ``time_constant_s`` seconds whatever the hop. With the defaults (hop 0.5 s, time constant 2 s)
  ``alpha = 1 - exp(-0.25) = 0.2212``: a new genre that takes over completely shows 63% of its final probability
  after 2 s and 95% after 6 s. The first window after start or after silence is taken as it is (no ramp up from
  zero).
* **Hysteresis on the top label.** The shown top label changes only when another label's smoothed probability
  exceeds the current top's by ``switch_margin`` for ``confirm_s`` seconds of consecutive hops. Two genres at
  near-equal probability therefore do not flicker; the change is reported once, as a ``TopChange``.
* **Silence gate.** A window whose level (RMS of its newest hop, dBFS) is below ``silence_dbfs`` counts as quiet;
  after ``silence_enter_s`` of consecutive quiet windows the output is silent: no top label, no scores, and the
  smoothing state is forgotten so that the music after the pause starts fresh. One window at or above the
  threshold ends the silence. Short quiet passages inside music (a rest, a fade) do not trigger it.

Nothing here reads a clock: time is counted in hops of ``hop_s``, so the same score sequence always gives the
same output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, kw_only=True)
class SmoothingConfig:
    """How scores are smoothed. ``hop_s`` is the time between windows (the live ``--hop``)."""

    hop_s: float = 0.5
    time_constant_s: float = 2.0  # EMA time constant; 0 disables smoothing
    switch_margin: float = 0.05  # a challenger must lead the shown top label by this much probability...
    confirm_s: float = 1.0  # ...for this long (rounded up to whole hops, at least one hop)
    silence_dbfs: float = -55.0  # windows below this RMS level are quiet
    silence_enter_s: float = 1.0  # this long of consecutive quiet windows is silence

    def __post_init__(self) -> None:
        if self.hop_s <= 0:
            raise ValueError(f"hop_s must be positive, got {self.hop_s}")
        if self.time_constant_s < 0 or self.confirm_s < 0 or self.silence_enter_s < 0 or self.switch_margin < 0:
            raise ValueError("time constants, margins and durations must not be negative")

    @property
    def alpha(self) -> float:
        """The EMA weight of a new window."""
        if self.time_constant_s == 0:
            return 1.0
        return 1.0 - math.exp(-self.hop_s / self.time_constant_s)

    @property
    def confirm_hops(self) -> int:
        return max(1, math.ceil(self.confirm_s / self.hop_s - 1e-9))

    @property
    def silence_hops(self) -> int:
        return max(1, math.ceil(self.silence_enter_s / self.hop_s - 1e-9))


@dataclass(frozen=True, kw_only=True)
class TopChange:
    """The shown top label changed (``None`` means silence or nothing shown yet)."""

    previous: int | None
    current: int | None


@dataclass(frozen=True, kw_only=True)
class Smoothed:
    """One hop's output. While ``silent``, ``genre``, ``moods`` and ``tags`` are None and ``top`` is None."""

    genre: np.ndarray | None
    taste: float | None
    moods: np.ndarray | None
    tags: np.ndarray | None  # (T,); T is 0 for a model without tags
    top: int | None
    silent: bool
    change: TopChange | None


class Smoother:
    """The state carried between hops: EMA values, the shown top label, its challenger and the quiet count."""

    def __init__(self, config: SmoothingConfig | None = None) -> None:
        self.config = config or SmoothingConfig()
        self.reset()

    def reset(self) -> None:
        self._genre: np.ndarray | None = None
        self._taste: float | None = None
        self._moods: np.ndarray | None = None
        self._tags: np.ndarray | None = None
        self._top: int | None = None
        self._challenger: int | None = None
        self._challenger_hops = 0
        self._quiet_hops = 0
        self._silent = False

    def update(
        self, *, genre: np.ndarray, taste: float, moods: np.ndarray, tags: np.ndarray, level_dbfs: float
    ) -> Smoothed:
        """Take one window's raw scores and return what to show for it."""
        cfg = self.config
        previous_top = self._top
        if level_dbfs < cfg.silence_dbfs:
            self._quiet_hops += 1
        else:
            self._quiet_hops = 0
            self._silent = False
        if self._quiet_hops >= cfg.silence_hops:
            if not self._silent:
                self.reset()
                self._silent = True
                self._quiet_hops = cfg.silence_hops
            change = TopChange(previous=previous_top, current=None) if previous_top is not None else None
            return Smoothed(genre=None, taste=None, moods=None, tags=None, top=None, silent=True, change=change)

        genre = np.asarray(genre, dtype=np.float64)
        moods = np.asarray(moods, dtype=np.float64)
        tags = np.asarray(tags, dtype=np.float64)
        if self._genre is None:
            self._genre, self._taste, self._moods, self._tags = genre.copy(), float(taste), moods.copy(), tags.copy()
        else:
            a = cfg.alpha
            self._genre += a * (genre - self._genre)
            self._moods += a * (moods - self._moods)
            self._tags += a * (tags - self._tags)
            self._taste += a * (float(taste) - self._taste)
        self._update_top()
        change = TopChange(previous=previous_top, current=self._top) if self._top != previous_top else None
        return Smoothed(
            genre=self._genre.copy(),
            taste=self._taste,
            moods=self._moods.copy(),
            tags=self._tags.copy(),
            top=self._top,
            silent=False,
            change=change,
        )

    def _update_top(self) -> None:
        best = int(np.argmax(self._genre))
        if self._top is None:
            self._top = best
            self._challenger, self._challenger_hops = None, 0
            return
        lead = self._genre[best] - self._genre[self._top]
        if best == self._top or lead <= self.config.switch_margin:
            self._challenger, self._challenger_hops = None, 0
            return
        if best == self._challenger:
            self._challenger_hops += 1
        else:
            self._challenger, self._challenger_hops = best, 1
        if self._challenger_hops >= self.config.confirm_hops:
            self._top = best
            self._challenger, self._challenger_hops = None, 0
