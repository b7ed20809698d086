"""Dynamic batching across streams: windows wait until a batch is full or the oldest has waited long enough.

As Triton and Ray Serve do it: a batch closes when it holds ``max_windows`` windows or when its oldest window
has waited ``max_wait_s``, whichever comes first. No clock of its own: the caller passes the time. A stream's
windows leave in the order they came, so its scorer sees them in stream order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

Windows = list[tuple[int, np.ndarray]]


@dataclass(frozen=True, kw_only=True)
class BatchPolicy:
    max_windows: int = 64  # one CPU run of 64 windows is ~0.1 s: longer would delay every stream's next hop
    max_wait_s: float = 0.02  # 20 ms: under a twentieth of a 0.5 s hop, for batches several times larger

    def __post_init__(self) -> None:
        if self.max_windows < 1 or not self.max_wait_s >= 0:
            raise ValueError(f"a batch needs max_windows >= 1 and max_wait_s >= 0, got {self}")


@dataclass
class _Waiting:
    key: Hashable
    windows: Windows
    since_s: float  # when these windows were submitted


class Batcher:
    def __init__(self, policy: BatchPolicy) -> None:
        self.policy = policy
        self._queue: deque[_Waiting] = deque()
        self.waiting_windows = 0

    def submit(self, key: Hashable, windows: Windows, *, now_s: float) -> None:
        """Windows of the stream ``key``, in its order, due now."""
        if windows:
            self._queue.append(_Waiting(key, list(windows), now_s))
            self.waiting_windows += len(windows)

    def deadline_s(self) -> float | None:
        """When the oldest waiting window has waited ``max_wait_s``; None when nothing waits."""
        return self._queue[0].since_s + self.policy.max_wait_s if self._queue else None

    def ready(self, *, now_s: float) -> bool:
        deadline = self.deadline_s()
        return deadline is not None and (self.waiting_windows >= self.policy.max_windows or now_s >= deadline)

    def take(self) -> list[tuple[Hashable, Windows, float]]:
        """The next batch: (key, windows, submitted at) in submission order, ``max_windows`` windows at most.

        A submission larger than what is left of the batch is split; its rest stays first in line."""
        batch, room = [], self.policy.max_windows
        while self._queue and room:
            waiting = self._queue[0]
            taken = waiting.windows[:room]
            batch.append((waiting.key, taken, waiting.since_s))
            room -= len(taken)
            if len(taken) == len(waiting.windows):
                self._queue.popleft()
            else:
                waiting.windows = waiting.windows[len(taken) :]
        self.waiting_windows -= self.policy.max_windows - room
        return batch

    def drop(self, key: Hashable) -> int:
        """Forget the waiting windows of ``key`` (its stream restarted); how many there were."""
        kept = deque(w for w in self._queue if w.key != key)
        dropped = self.waiting_windows - sum(len(w.windows) for w in kept)
        self._queue, self.waiting_windows = kept, self.waiting_windows - dropped
        return dropped
