"""The ring buffer against a slow, obvious model: every write appended, the oldest frames trimmed to capacity."""

from __future__ import annotations

import threading

import numpy as np

from streamtag.sources.ring import RingBuffer


def test_ring_buffer_keeps_order_across_wraparound(rng):
    ring = RingBuffer(capacity_frames=10, channels=2)
    expected, got = [], []
    for size in [3, 4, 2, 7, 1, 9, 5]:  # never more than capacity between reads
        block = rng.standard_normal((size, 2)).astype(np.float32)
        assert ring.write(block) == 0
        expected.append(block)
        got.append(ring.read())
    np.testing.assert_array_equal(np.concatenate(got), np.concatenate(expected))
    assert ring.read().shape == (0, 2)


def test_ring_buffer_drops_the_oldest_when_full():
    ring = RingBuffer(capacity_frames=8, channels=1)
    frames = np.arange(20, dtype=np.float32).reshape(-1, 1)
    assert ring.write(frames[:6]) == 0
    assert ring.write(frames[6:11]) == 3  # 11 written, room for 8: frames 0, 1, 2 go
    assert ring.available == 8
    np.testing.assert_array_equal(ring.read()[:, 0], np.arange(3, 11))
    assert ring.write(frames[:20]) == 12  # one block larger than the whole buffer keeps its newest 8
    np.testing.assert_array_equal(ring.read()[:, 0], np.arange(12, 20))


def test_ring_buffer_matches_a_list_that_trims_its_oldest_frames(rng):
    capacity = 16
    ring = RingBuffer(capacity_frames=capacity, channels=2)
    model: list[np.ndarray] = []  # the unread frames, one (2,) row each
    model_dropped = 0
    written = read = 0
    for _ in range(500):
        size = int(rng.integers(0, 2 * capacity + 3))  # empty blocks, small ones, and ones past capacity
        block = np.arange(written, written + size, dtype=np.float32).repeat(2).reshape(-1, 2)
        block[:, 1] *= -1
        written += size
        model.extend(block)
        overrun = max(0, len(model) - capacity)
        del model[:overrun]
        model_dropped += overrun
        assert ring.write(block) == overrun  # the count the source adds up
        assert ring.available == len(model)
        if rng.random() < 0.3:
            out = ring.read()
            expected = np.array(model, dtype=np.float32).reshape(-1, 2)
            np.testing.assert_array_equal(out, expected)
            assert out.dtype == np.float32
            read += len(out)
            model.clear()
    read += len(ring.read())
    assert read + model_dropped == written


def test_ring_buffer_with_a_concurrent_writer_never_tears_blocks():
    ring = RingBuffer(capacity_frames=4096, channels=1)
    total = 200 * 256

    dropped = []

    def writer():
        for i in range(200):
            dropped.append(ring.write(np.arange(i * 256, (i + 1) * 256, dtype=np.float32).reshape(-1, 1)))

    thread = threading.Thread(target=writer)
    thread.start()
    out = []
    while thread.is_alive() or ring.available:
        out.append(ring.read())
    thread.join()
    got = np.concatenate(out)[:, 0]
    # whatever the interleaving: what was read plus what was dropped is everything, and what was read is the
    # writer's frames in order, losing only whole runs of the oldest
    assert len(got) + sum(dropped) == total
    assert got[-1] == total - 1
    steps = np.diff(got)
    assert np.all(steps >= 1)
    assert np.sum(steps - 1) + got[0] == sum(dropped)


def test_the_ring_holds_a_copy_of_each_block(rng):
    """PortAudio reuses its buffer once the callback returns: what the ring hands out must not change with it."""
    ring = RingBuffer(capacity_frames=8, channels=1)
    block = rng.standard_normal((6, 1)).astype(np.float32)
    expected = block.copy()
    ring.write(block)
    block[:] = 0
    np.testing.assert_array_equal(ring.read(), expected)
