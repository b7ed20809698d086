"""How many live streams one `streamtag serve` tags in real time on this machine.

    python tools/bench_serve.py [--icecast] [--seconds 20] [--counts 8,16,32,64,96,128] [--hop 0.5] [--provider cpu]
                                [--json]

For each N, serves N streams for ``--seconds``: with ``--icecast``, N mounts of a private Icecast on 127.0.0.1
(tools/local_icecast.py), each fed by ``ffmpeg -re`` with one of the GTZAN clips in ../shared/data encoded to Ogg
Vorbis once and then sent as it is (``-c copy``: the feeders cost little, as a radio's encoder would run
elsewhere); without it, real-time playback of the clips themselves, looping. It reports: hops delivered after a warm-up against the hops the wall clock allows, p50/p99 hop latency (a window's wait in the batcher plus its batch's run), the batch sizes reached, the
windows/s against a single stream in one process, and memory per stream (RSS growth over the serve). N counts
as real time when every stream delivers its hops and the p99 latency is under the hop. Stops at the first N that
is not real time. 127.0.0.1 only; each run is bounded by ``--seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import statistics
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streamtag.core.batching import BatchPolicy  # noqa: E402
from streamtag.feed import FeedConfig  # noqa: E402
from streamtag.serve import ServeConfig, Server, StreamConfig  # noqa: E402

CLIPS = sorted((REPO.parent / "shared" / "data" / "gtzan" / "samples").glob("*.flac"))
# Left out of the figures: the first window needs 3 s of audio, and a network stream's connection comes with a
# burst of a few seconds of audio from Icecast (burst-on-connect) that every stream's windows catch up on.
WARMUP_S = 8.0


class _Recording(Server):
    """The server, recording each delivered hop's latency and each batch's size."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.latencies: dict[str, list[float]] = {s: [] for s in self.streams}
        self.batch_sizes: list[int] = []
        self.t0 = None

    def _deliver(self, stream, windows, scores, *, latency_ms: float) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() - self.t0 >= WARMUP_S:
            self.latencies[stream.config.id] += [latency_ms] * len(windows)  # one hop a window
        super()._deliver(stream, windows, scores, latency_ms=latency_ms)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _serve(n: int, *, seconds: float, hop_s: float, batch: BatchPolicy, engine, provider: str,
                 sources: list[str]) -> dict:
    streams = tuple(StreamConfig(id=f"s{i}", source=source, loop=True) for i, source in enumerate(sources))
    config = ServeConfig(streams=streams, hop_s=hop_s, feed=FeedConfig(port=0), batch=batch, provider=provider)
    rss_before = _rss_mb()
    server = _Recording(config, engine=engine)
    stop = asyncio.Event()
    await server.feed.start()
    loop = asyncio.get_running_loop()
    server.t0 = loop.time()
    loop.call_later(seconds, stop.set)
    await server.run(stop)
    hop = next(iter(server.streams.values())).hop_s
    # Steady state: the hops each stream delivered after the warm-up (its first window, a network source's
    # connection), against the hops that much wall-clock time holds.
    expected = int((seconds - WARMUP_S) / hop)
    delivered = {s: len(v) for s, v in server.latencies.items()}
    all_latencies = np.concatenate([np.array(v) for v in server.latencies.values() if v] or [np.zeros(1)])
    p99_per_stream = [float(np.percentile(v, 99)) for v in server.latencies.values() if v]
    batches = server.metrics.batches_total()
    windows = server.metrics.windows_total()
    return {
        "streams": n, "seconds": seconds, "hop_s": round(hop, 4),
        "hops_min": min(delivered.values()), "hops_expected": expected,
        "latency_p50_ms": round(float(np.percentile(all_latencies, 50)), 2),
        "latency_p99_ms": round(float(np.percentile(all_latencies, 99)), 2),
        "worst_stream_p99_ms": round(max(p99_per_stream), 2) if p99_per_stream else None,
        "windows_per_s": round(windows / seconds, 1), "mean_batch": round(windows / max(1, batches), 2),
        "rss_mb_per_stream": round(max(0.0, _rss_mb() - rss_before) / n, 2),
        "real_time": min(delivered.values()) >= expected - 2 and max(p99_per_stream or [1e9]) < 1000 * hop,
    }


def _single_stream_windows_per_s(engine, hop_s: float) -> float:
    """One stream in one process, fed hop by hop as fast as it goes (the `streamtag bench` figure)."""
    import time

    from streamtag.audio import load_audio
    from streamtag.core.tagger import Tagger

    audio = load_audio(CLIPS[0], sample_rate=engine.info.sample_rate)
    hop = engine.info.hop_samples_for(hop_s)
    times = []
    for _ in range(3):
        tagger = Tagger(engine, hop_samples=hop, batch_size=1)
        start = time.perf_counter()
        n = sum(len(tagger.feed(audio[i : i + hop])) for i in range(0, audio.size, hop))
        times.append(time.perf_counter() - start)
    return n / statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--counts", default="8,16,32,64,96,128")
    parser.add_argument("--hop", type=float, default=0.5)
    parser.add_argument("--max-batch", type=int, default=BatchPolicy.max_windows)
    parser.add_argument("--max-wait-ms", type=float, default=BatchPolicy.max_wait_s * 1000)
    parser.add_argument("--provider", default="cpu")
    parser.add_argument("--icecast", action="store_true", help="serve mounts of a local Icecast, not files")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not CLIPS:
        raise SystemExit("bench_serve.py: no clips in ../shared/data/gtzan/samples")
    from streamtag.engine import Engine

    engine = Engine(None, provider=args.provider, device_ring=False)
    single = _single_stream_windows_per_s(Engine(None, provider=args.provider, threads=1), args.hop)
    batch = BatchPolicy(max_windows=args.max_batch, max_wait_s=args.max_wait_ms / 1000)
    with contextlib.ExitStack() as stack:
        icecast = _icecast(stack) if args.icecast else None
        results = _search(args, engine=engine, batch=batch, icecast=icecast)
    best = max((r["streams"] for r in results if r["real_time"]), default=0)
    summary = {"source": "icecast" if args.icecast else "files", "single_stream_windows_per_s": round(single, 1),
               "max_real_time_streams": best, "runs": results}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"single stream, one process: {single:.0f} windows/s; real-time streams on this machine: {best}")
    return 0


def _icecast(stack: contextlib.ExitStack):
    """A local Icecast, and the clips encoded once to Ogg Vorbis for ``-c copy`` feeders."""
    import subprocess
    import tempfile

    from tools.local_icecast import local_icecast

    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-icecast-")))
    server = stack.enter_context(local_icecast(folder))
    encoded = []
    for clip in CLIPS:
        out = folder / f"{clip.stem}.ogg"
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(clip), "-c:a", "libvorbis", "-q:a", "6",
                        str(out)], check=True)
        encoded.append(out)
    return server, encoded


def _search(args, *, engine, batch: BatchPolicy, icecast) -> list[dict]:
    results = []
    mounts = []
    for n in (int(c) for c in args.counts.split(",")):
        if icecast is None:
            sources = [str(CLIPS[i % len(CLIPS)]) for i in range(n)]
        else:
            server, encoded = icecast
            while len(mounts) < n:
                mounts.append(server.feed(encoded[len(mounts) % len(encoded)], codec="copy"))
            sources = [m.url for m in mounts[:n]]
        result = asyncio.run(_serve(n, seconds=args.seconds, hop_s=args.hop, batch=batch, engine=engine,
                                    provider=args.provider, sources=sources))
        results.append(result)
        if not args.json:
            print(f"{n:4d} streams: hops {result['hops_min']}/{result['hops_expected']} per stream, latency p50 "
                  f"{result['latency_p50_ms']:.1f} ms p99 {result['latency_p99_ms']:.1f} ms (worst stream "
                  f"{result['worst_stream_p99_ms']} ms), {result['windows_per_s']:.0f} windows/s, mean batch "
                  f"{result['mean_batch']:.1f}, {result['rss_mb_per_stream']:.2f} MB/stream -> "
                  f"{'real time' if result['real_time'] else 'NOT real time'}", flush=True)
        if not result["real_time"]:
            break
    for mount in mounts:
        mount.stop()
    return results


if __name__ == "__main__":
    sys.exit(main())
