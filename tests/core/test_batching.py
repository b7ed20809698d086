"""Dynamic batching, with windows and times worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from streamtag.core.batching import Batcher, BatchPolicy


def windows(stream: int, *starts: int):
    return [(start, np.full(4, stream, np.float32)) for start in starts]


def test_a_batch_closes_when_full_or_when_the_oldest_has_waited():
    batcher = Batcher(BatchPolicy(max_windows=3, max_wait_s=0.02))
    assert batcher.deadline_s() is None and not batcher.ready(now_s=5.0)
    batcher.submit("a", windows(0, 0), now_s=1.000)
    assert batcher.deadline_s() == pytest.approx(1.020)
    assert not batcher.ready(now_s=1.010) and batcher.ready(now_s=1.020)  # waited 20 ms
    batcher.submit("b", windows(1, 0, 10), now_s=1.005)
    assert batcher.ready(now_s=1.006)  # 3 windows: full before the wait is over
    batch = batcher.take()
    assert [(key, [s for s, _ in w], since) for key, w, since in batch] == [("a", [0], 1.000), ("b", [0, 10], 1.005)]
    assert batcher.waiting_windows == 0 and batcher.deadline_s() is None


def test_a_large_submission_is_split_and_its_rest_goes_first():
    batcher = Batcher(BatchPolicy(max_windows=4, max_wait_s=0.0))
    batcher.submit("a", windows(0, 0, 10, 20, 30, 40, 50), now_s=0.0)
    batcher.submit("b", windows(1, 0), now_s=0.1)
    first, second = batcher.take(), batcher.take()
    assert [(k, [s for s, _ in w]) for k, w, _ in first] == [("a", [0, 10, 20, 30])]
    assert [(k, [s for s, _ in w]) for k, w, _ in second] == [("a", [40, 50]), ("b", [0])]
    assert second[0][2] == 0.0  # the rest keeps the time it was submitted
    assert batcher.take() == [] and batcher.waiting_windows == 0


def test_a_restarted_stream_drops_only_its_own_windows():
    batcher = Batcher(BatchPolicy(max_windows=8, max_wait_s=1.0))
    batcher.submit("a", windows(0, 0, 10), now_s=0.0)
    batcher.submit("b", windows(1, 0), now_s=0.0)
    batcher.submit("a", windows(0, 20), now_s=0.1)
    assert batcher.drop("a") == 3 and batcher.waiting_windows == 1
    assert [(k, len(w)) for k, w, _ in batcher.take()] == [("b", 1)]


def test_policy_bounds():
    with pytest.raises(ValueError, match="max_windows >= 1"):
        BatchPolicy(max_windows=0)
