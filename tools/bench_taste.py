"""How long a taste profile takes to refit, the work every like or dislike triggers (live: on the event loop).

    python tools/bench_taste.py [--tracks 200] [--repeats 9]

Labels of random 64-d unit embeddings in two clusters, 64 windows each (the most a file keeps), half liked and
half disliked; prints the median refit time over the repeats. Target on the 2-core reference machine: 200 tracks
(12,800 windows) well under 0.5 s.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from streamtag.core.messages import DISLIKE, LIKE
from streamtag.taste.fit import KIND_FILE, MAX_WINDOWS_PER_LABEL, FitConfig, fit_model, make_label

DIM = 64


def _labels(rng: np.random.Generator, n_tracks: int) -> list:
    labels = []
    for i in range(n_tracks):
        centre = np.zeros(DIM)
        centre[i % 2] = 1.0
        x = centre + 0.3 * rng.standard_normal((MAX_WINDOWS_PER_LABEL, DIM))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        labels.append(make_label(LIKE if i % 2 == 0 else DISLIKE, kind=KIND_FILE, source=f"/music/{i}.ogg",
                                 embeddings=x, crowd_probs=np.full(MAX_WINDOWS_PER_LABEL, 0.5)))
    return labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    labels = _labels(np.random.default_rng(0), args.tracks)
    fit_model(labels, FitConfig())  # warm up BLAS
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        fit_model(labels, FitConfig())
        times.append(time.perf_counter() - start)
    print(f"refit of {args.tracks} tracks ({args.tracks * MAX_WINDOWS_PER_LABEL} windows): median "
          f"{statistics.median(times) * 1000:.1f} ms over {args.repeats} (min {min(times) * 1000:.1f}, max "
          f"{max(times) * 1000:.1f})")


if __name__ == "__main__":
    main()
