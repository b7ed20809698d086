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
  threshold ends the silence. Short quiet passages inside music (a rest, a fade) do not trigger it. Digital
  silence (every sample 0: the level floor) is silent at once: it is never music that pauses.
* **What is playing** (``state``): "music", "speech" or "unsure" ("silence" while silent). Each window's
  content probabilities (music, speech, other: ``content.py``'s head, where the model has one) are smoothed
  like the scores but slower (``content_time_constant_s``): what kind of sound plays changes more slowly than
  the genre bars, and a sound between music and noise (a dog, a whale) then stays on one side; the candidate is "speech" when the smoothed speech probability passes
  ``speech_p``, "unsure" when the smoothed music probability is under ``music_p`` or the top genre's smoothed
  probability under ``unsure_top_p`` (no genre of the vocabulary fits), else "music". The first window of a
  stream sets the state at once; after that (silence included: the state before it holds after it) a new
  candidate takes over after ``state_confirm_s`` of consecutive hops, the same hysteresis as the top label's. While the state is not "music" no top label is
  shown (``top`` is None, and the change is reported as for silence); the scores are still given.

Nothing here reads a clock: time is counted in hops of ``hop_s``, so the same score sequence always gives the
same output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from streamtag.core.levels import SILENCE_FLOOR_DBFS


@dataclass(frozen=True, kw_only=True)
class SmoothingConfig:
    """How scores are smoothed. ``hop_s`` is the time between windows (the live ``--hop``)."""

    hop_s: float = 0.5
    time_constant_s: float = 2.0  # EMA time constant; 0 disables smoothing
    switch_margin: float = 0.05  # a challenger must lead the shown top label by this much probability...
    confirm_s: float = 1.0  # ...for this long (rounded up to whole hops, at least one hop)
    silence_dbfs: float = -55.0  # windows below this RMS level are quiet
    silence_enter_s: float = 1.0  # this long of consecutive quiet windows is silence
    # From tools/fit_content_head.py's held-out folds (docs/content.md): held-out music is shown as music 95 %
    # of hops; 0.3 would keep 98 % but show 35 % of other sounds as music (0.4: 29 %), and the whale and the dog
    # of cc-audio as music most of the time. Speech at 0.5 rather than 0.6: more caught, no more music lost.
    speech_p: float = 0.5  # smoothed speech probability above this: speech
    music_p: float = 0.4  # smoothed music probability below this: unsure
    unsure_top_p: float = 0.4  # smoothed top-genre probability below this: unsure (4 genres: 0.25 is chance)
    state_confirm_s: float = 2.0  # a new state must hold this long (whole hops, at least one) to be shown
    # The content probabilities' EMA. 6 s against 2 s, on tools/fit_content_head.py's folds and held-out files
    # (an earlier fit of the same data): held-out music shown as music 94.4 % of hops instead of 91.4 %, the dog
    # 72 % unsure instead of 52 %; the cost is that speech after music shows 6.5 s in (at a stream's start: at once).
    content_time_constant_s: float = 6.0

    def __post_init__(self) -> None:
        if self.hop_s <= 0:
            raise ValueError(f"hop_s must be positive, got {self.hop_s}")
        if min(self.time_constant_s, self.confirm_s, self.silence_enter_s, self.switch_margin, self.state_confirm_s,
               self.content_time_constant_s) < 0:
            raise ValueError("time constants, margins and durations must not be negative")

    @property
    def alpha(self) -> float:
        """The EMA weight of a new window."""
        return self._weight(self.time_constant_s)

    @property
    def content_alpha(self) -> float:
        """The EMA weight of a new window's content probabilities."""
        return self._weight(self.content_time_constant_s)

    @property
    def confirm_hops(self) -> int:
        return self._hops(self.confirm_s)

    @property
    def silence_hops(self) -> int:
        return self._hops(self.silence_enter_s)

    @property
    def state_confirm_hops(self) -> int:
        return self._hops(self.state_confirm_s)

    def _weight(self, time_constant_s: float) -> float:
        return 1.0 if time_constant_s == 0 else 1.0 - math.exp(-self.hop_s / time_constant_s)

    def _hops(self, seconds: float) -> int:
        """``seconds`` rounded up to whole hops, at least one."""
        return max(1, math.ceil(seconds / self.hop_s - 1e-9))


MUSIC, SPEECH, UNSURE, SILENCE = "music", "speech", "unsure", "silence"
STATES = (MUSIC, SPEECH, UNSURE, SILENCE)


def state_of(top_p: float, content: np.ndarray | None, config: SmoothingConfig) -> str:
    """What plays, judged from the top genre's probability and the content probabilities (music, speech, other;
    None for a model without a content head): the rule of the module docstring, without hysteresis."""
    if content is not None:
        if float(content[1]) > config.speech_p:
            return SPEECH
        if float(content[0]) < config.music_p:
            return UNSURE
    return _genre_state(top_p, config)


def clip_state_of(top_p: float, content: np.ndarray | None, config: SmoothingConfig) -> str:
    """A whole file's state, from its windows' means (``tag``): the content class they favour, then the genre
    rule. Live's thresholds guard a stream against a few odd windows turning music "unsure"; a file's means
    have already averaged those away, so the likelier class decides."""
    if content is not None and int(np.argmax(content)) != 0:
        return SPEECH if int(np.argmax(content)) == 1 else UNSURE
    return _genre_state(top_p, config)


def _genre_state(top_p: float, config: SmoothingConfig) -> str:
    """Music, unless no genre of the vocabulary stands out."""
    return UNSURE if top_p < config.unsure_top_p else MUSIC


@dataclass(frozen=True, kw_only=True)
class TopChange:
    """The shown top label changed (``None`` means silence or nothing shown yet)."""

    previous: int | None
    current: int | None


@dataclass(frozen=True, kw_only=True)
class Smoothed:
    """One hop's output. While ``silent``, ``genre``, ``moods`` and ``tags`` are None and ``top`` is None; while
    ``state`` is "speech" or "unsure", ``top`` is None."""

    genre: np.ndarray | None
    taste: float | None
    moods: np.ndarray | None
    tags: np.ndarray | None  # (T,); T is 0 for a model without tags
    top: int | None
    silent: bool
    change: TopChange | None
    state: str = MUSIC
    content: np.ndarray | None = None  # smoothed (music, speech, other); None for a model without a content head


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
        self._top = Confirmed()  # the top label's index
        self._quiet_hops = 0
        self._silent = False
        self._content: np.ndarray | None = None
        self._state = Confirmed()  # what plays; its value is None only before the first window

    @property
    def shown_top(self) -> int | None:
        """The top label as shown: none unless the state is music."""
        return self._top.value if self._state.value == MUSIC else None

    def update(
        self, *, genre: np.ndarray, taste: float, moods: np.ndarray, tags: np.ndarray, level_dbfs: float,
        content: np.ndarray | None = None,
    ) -> Smoothed:
        """Take one window's raw scores (and its content probabilities, where there are any) and return what to
        show for it."""
        cfg = self.config
        previous_top = self.shown_top
        if level_dbfs < cfg.silence_dbfs:
            self._quiet_hops += 1
        else:
            self._quiet_hops = 0
            self._silent = False
        if level_dbfs <= SILENCE_FLOOR_DBFS:  # every sample 0
            self._quiet_hops = max(self._quiet_hops, cfg.silence_hops)
        if self._quiet_hops >= cfg.silence_hops:
            if not self._silent:
                # What played before a pause is what most likely plays after it (a break between songs, or
                # in speech), and the first windows after it are mostly the pause's zeros: keep the state.
                state = self._state.value
                self.reset()
                self._silent = True
                self._quiet_hops = cfg.silence_hops
                self._state.value = state
            change = TopChange(previous=previous_top, current=None) if previous_top is not None else None
            return Smoothed(genre=None, taste=None, moods=None, tags=None, top=None, silent=True, change=change,
                            state=SILENCE)

        genre = np.asarray(genre, dtype=np.float64)
        moods = np.asarray(moods, dtype=np.float64)
        tags = np.asarray(tags, dtype=np.float64)
        content = None if content is None else np.asarray(content, dtype=np.float64)
        if self._genre is None:
            self._genre, self._taste, self._moods, self._tags = genre.copy(), float(taste), moods.copy(), tags.copy()
            self._content = None if content is None else content.copy()
        else:
            a = cfg.alpha
            self._genre += a * (genre - self._genre)
            self._moods += a * (moods - self._moods)
            self._tags += a * (tags - self._tags)
            self._taste += a * (float(taste) - self._taste)
            if content is not None:
                c = cfg.content_alpha
                self._content = content.copy() if self._content is None else self._content + c * (content - self._content)
        best = int(np.argmax(self._genre))
        current = self._top.value
        # a challenger must lead the shown label by the margin to count at all
        leads = current is None or self._genre[best] - self._genre[current] > cfg.switch_margin
        self._top.offer(best if leads else current, cfg.confirm_hops)
        self._state.offer(state_of(float(self._genre[self._top.value]), self._content, cfg), cfg.state_confirm_hops)
        top = self.shown_top
        change = TopChange(previous=previous_top, current=top) if top != previous_top else None
        return Smoothed(
            genre=self._genre.copy(),
            taste=self._taste,
            moods=self._moods.copy(),
            tags=self._tags.copy(),
            top=top,
            silent=False,
            change=change,
            state=self._state.value,
            content=None if self._content is None else self._content.copy(),
        )


class Confirmed:
    """A shown value that a new one replaces only once it has been offered ``hops`` times in a row; the first
    value offered is shown at once. The top label and the state both change this way."""

    def __init__(self) -> None:
        self.value = None
        self._challenger = None
        self._hops = 0

    def offer(self, candidate, hops: int) -> None:
        if self.value is None or candidate == self.value:
            self.value = candidate if self.value is None else self.value
            self._challenger, self._hops = None, 0
            return
        self._hops = self._hops + 1 if candidate == self._challenger else 1
        self._challenger = candidate
        if self._hops >= hops:
            self.value, self._challenger, self._hops = candidate, None, 0
