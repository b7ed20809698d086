"""`streamtag bench` (also tools/bench_live.py): live latency and CPU use, and offline tagging speed.

Three figures, printed and not asserted (they depend on the machine):

* **per-hop processing latency** p50/p99 of a real `streamtag live` process tagging a file at real-time pace
  (or ``--live-source loopback|mic``) with the given hop (what its feed reports as ``latency_ms``: windowing, the model, smoothing);
* **CPU use** of that process in steady state, as a share of one core: (utime + stime) from /proc over the wall
  time, measured after a warm-up so that loading the model and the first windows are not counted;
* **offline speed** as a multiple of real time: the streaming tagger over whole files with the model's own hop
  and batches of 32, decoding excluded.

Targets on the 2-core CPU reference machine: p99 < 15 ms, < 10% of one core at a 0.5 s hop, offline >= 300x.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_P99_MS = 15.0
TARGET_CPU_PERCENT = 10.0
TARGET_OFFLINE_X = 300.0
_SUMMARY = re.compile(r"latency p50 ([\d.]+) ms, p99 ([\d.]+) ms")


def register(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="measure live latency, CPU use and offline speed")
    add_arguments(parser)
    parser.set_defaults(run=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="*", type=Path, help="audio files (default: the GTZAN samples in ../shared/data)")
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--provider", choices=("auto", "cpu", "cuda"), default="cpu")
    parser.add_argument("--hop", type=float, default=0.5)
    parser.add_argument("--live-s", type=float, default=30.0, help="seconds of live tagging to measure")
    parser.add_argument("--warmup-s", type=float, default=5.0, help="seconds of live tagging left out of CPU use")
    parser.add_argument("--live-source", default=None, metavar="SOURCE",
                        help="what `live` tags while measured: a file (default: the first file), mic or loopback")
    parser.add_argument("--device", default=None, help="--device for a mic or loopback live source")
    parser.add_argument("--json", action="store_true")


def _default_files() -> list[Path]:
    samples = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "gtzan" / "samples"
    return sorted(samples.glob("*.flac"))


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def bench_live(
    source: str, *, model: Path | None, provider: str, hop_s: float, live_s: float, warmup_s: float,
    device: str | None = None,
) -> dict:
    """Run `streamtag live` on ``source`` (a file at real-time pace, mic or loopback); its latency summary and
    its steady-state CPU use."""
    cmd = [sys.executable, "-m", "streamtag.cli", "live", "--source", source, "--no-tui", "--no-ws",
           "--no-taste", "--hop", str(hop_s), "--provider", provider, "--duration", str(live_s)]
    if model is not None:
        cmd += ["--model", str(model)]
    if device is not None:
        cmd += ["--device", device]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    started = time.monotonic()
    header = proc.stderr.readline()  # printed once the model is loaded and the source is open
    t0, cpu0 = time.monotonic(), _cpu_seconds(proc.pid)
    time.sleep(warmup_s)
    t1, cpu1 = time.monotonic(), _cpu_seconds(proc.pid)
    time.sleep(max(0.0, live_s - warmup_s - 1.0))
    t2, cpu2 = time.monotonic(), _cpu_seconds(proc.pid)
    rest = proc.communicate(timeout=live_s + 60)[1]
    match = _SUMMARY.search(rest)
    if proc.returncode != 0 or match is None:
        raise RuntimeError(f"streamtag live failed ({proc.returncode}): {header}{rest}")
    return {
        "source": Path(source).name,
        "startup_s": round(t0 - started, 2),
        "latency_p50_ms": float(match.group(1)),
        "latency_p99_ms": float(match.group(2)),
        "cpu_percent_of_one_core": round(100.0 * (cpu2 - cpu1) / (t2 - t1), 2),
        "cpu_percent_warmup": round(100.0 * (cpu1 - cpu0) / (t1 - t0), 2),
        "provider_line": header.strip(),
    }


# (onnxruntime threads, 0 = its default; batch size); the first is what `tag` uses
OFFLINE_SETTINGS = ((0, 8), (0, 32), (1, 8), (1, 1))
OFFLINE_REPEATS = 3  # the median pass is reported


def bench_offline(files: list[Path], *, model: Path | None, provider: str) -> dict:
    """Offline speed for a few thread/batch settings; the first is what `tag` uses by default."""
    from streamtag.audio import load_audio
    from streamtag.engine import Engine
    from streamtag.tagger import Tagger

    runs = []
    for threads, batch_size in OFFLINE_SETTINGS:
        engine = Engine(model, provider=provider, threads=threads)
        rate = engine.info.sample_rate
        clips = [load_audio(f, sample_rate=rate) for f in files]
        Tagger(engine, batch_size=batch_size).feed(clips[0][: engine.info.window_samples * 4])  # warm-up
        audio_s = sum(len(c) for c in clips) / rate
        passes = []
        for _ in range(OFFLINE_REPEATS):
            start = time.perf_counter()
            n_windows = 0
            for clip in clips:
                tagger = Tagger(engine, batch_size=batch_size)
                n_windows += len(tagger.feed(clip)) + len(tagger.finish())
            passes.append(time.perf_counter() - start)
        elapsed = statistics.median(passes)
        runs.append({"threads": threads, "batch_size": batch_size, "audio_s": round(audio_s, 1), "windows": n_windows,
                     "elapsed_s": round(elapsed, 3), "times_real_time": round(audio_s / elapsed, 1)})
    return {"files": len(files), "provider": engine.provider, "runs": runs}


def run(args: argparse.Namespace) -> int:
    files = args.files or _default_files()
    if not files:
        print("streamtag: error: no audio files given and none found in ../shared/data/gtzan/samples", file=sys.stderr)
        return 2
    offline = bench_offline(files, model=args.model, provider=args.provider)
    live = bench_live(args.live_source or str(files[0]), model=args.model, provider=args.provider, hop_s=args.hop,
                      live_s=args.live_s, warmup_s=args.warmup_s, device=args.device)
    result = {"cpu_count": os.cpu_count(), "hop_s": args.hop, "live": live, "offline": offline}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"machine: {os.cpu_count()} CPU(s); provider {offline['provider']}; {live['provider_line']}")
    print(f"live, hop {args.hop} s, {args.live_s:.0f} s of {live['source']} at real-time pace:")
    print(f"  per-hop processing latency  p50 {live['latency_p50_ms']:.1f} ms   p99 {live['latency_p99_ms']:.1f} ms"
          f"   (target p99 < {TARGET_P99_MS:.0f} ms)")
    print(f"  CPU use after {args.warmup_s:.0f} s warm-up  {live['cpu_percent_of_one_core']:.1f}% of one core"
          f"   (warm-up {live['cpu_percent_warmup']:.1f}%; target < {TARGET_CPU_PERCENT:.0f}%)")
    print(f"offline ({offline['files']} files; target >= {TARGET_OFFLINE_X:.0f}x real time):")
    for r in offline["runs"]:
        threads = "default" if r["threads"] == 0 else r["threads"]
        print(f"  threads {threads!s:>7}, batch {r['batch_size']:2d}: {r['audio_s']:.0f} s of audio, {r['windows']} windows"
              f" in {r['elapsed_s']:.2f} s  ->  {r['times_real_time']:.0f}x real time")
    return 0
