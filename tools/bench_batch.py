"""Windows/s at batch 1 to 2048, and one live stream's per-hop time, on a provider (the GPU check's figures).

    python tools/bench_batch.py [--provider cuda|cpu] [--batches 1,8,64,256,1024,2048] [--json]

Real audio (the GTZAN clips in ../shared/data) cut into windows; ``engine.run`` on each batch size, median of 5
after a warm-up. Then one stream fed hop by hop (0.5 s, whole frames) as `live` runs it: the per-hop time p50/p99
with each spectrogram frame computed once (on CUDA the frames stay in device memory) and with whole windows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streamtag.audio import load_audio  # noqa: E402
from streamtag.core.tagger import Tagger  # noqa: E402
from streamtag.engine import Engine  # noqa: E402

CLIPS = sorted((REPO.parent / "shared" / "data" / "gtzan" / "samples").glob("*.flac"))
REPEATS = 5


def _windows(engine: Engine, n: int) -> np.ndarray:
    rate, size = engine.info.sample_rate, engine.info.window_samples
    audio = np.concatenate([load_audio(p, sample_rate=rate) for p in CLIPS])
    starts = np.linspace(0, audio.size - size, n).astype(int)
    return np.stack([audio[s : s + size] for s in starts])


def batch_sweep(engine: Engine, batches: list[int]) -> list[dict]:
    pool = _windows(engine, max(batches))
    rows = []
    for b in batches:
        x = pool[:b]
        engine.run(x)  # warm-up: allocations and kernels for this shape
        times = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            engine.run(x)
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        rows.append({"batch": b, "ms": round(median * 1000, 3), "windows_per_s": round(b / median, 1)})
    return rows


def hop_times(engine: Engine, *, hop_s: float = 0.5) -> dict:
    audio = load_audio(CLIPS[0], sample_rate=engine.info.sample_rate)
    hop = engine.info.hop_samples_for(hop_s)
    tagger = Tagger(engine, hop_samples=hop, batch_size=1)
    tagger.feed(audio[: engine.info.window_samples])  # the first window: all its frames
    times = []
    for i in range(engine.info.window_samples, audio.size - hop, hop):
        start = time.perf_counter()
        tagger.feed(audio[i : i + hop])
        times.append(time.perf_counter() - start)
    return {"hops": len(times), "shares_frames": tagger.shares_frames, "p50_ms": round(float(np.percentile(times, 50)) * 1000, 3),
            "p99_ms": round(float(np.percentile(times, 99)) * 1000, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--provider", default="cuda")
    parser.add_argument("--batches", default="1,8,64,256,1024,2048")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    engine = Engine(None, provider=args.provider, device_ring=False)
    result = {
        "provider": engine.provider,
        "batches": batch_sweep(engine, batches),
        "live_hop_frames_once": hop_times(Engine(None, provider=args.provider, threads=1)),
        "live_hop_whole_windows": hop_times(Engine(None, provider=args.provider, threads=1, full_window=True)),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"provider {result['provider']}")
    for row in result["batches"]:
        print(f"  batch {row['batch']:5d}: {row['ms']:9.2f} ms  {row['windows_per_s']:10.0f} windows/s")
    for name in ("live_hop_frames_once", "live_hop_whole_windows"):
        r = result[name]
        print(f"  {name}: p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms over {r['hops']} hops")
    return 0


if __name__ == "__main__":
    sys.exit(main())
