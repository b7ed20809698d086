"""`streamtag bench` (also tools/bench_live.py): work per window, live latency and CPU use, and tagging speed,
each with every spectrogram frame computed once per stream (the default) and with every window computed whole
(before that change), in one run. Figures are printed, not asserted (they depend on the machine):

* **MFLOP per full window and per hop**, from the counts the model carries (counted from its graphs at export,
  `streamtag/train/flops.py`): a hop costs the network plus the front end of the frames it adds;
* **per-hop processing latency** p50/p99 of a real `streamtag live` process tagging a file at real-time pace
  (or ``--live-source loopback|mic``) with the given hop (what its feed reports as ``latency_ms``: windowing,
  the model, smoothing); one process per path, both at once;
* **CPU use** of that process in steady state, as a share of one core: (utime + stime) from /proc over the wall
  time, measured after a warm-up so that loading the model and the first windows are not counted;
* **single-stream windows/s**: one stream fed hop by hop as fast as it goes, batch 1, one thread (as `live`);
* **offline speed** as a multiple of real time (and windows/s): the streaming tagger over whole files with the
  model's own hop, decoding excluded. Timed passes of the two paths take turns, and medians are reported.

Targets on the 2-core CPU reference machine: p99 < 15 ms, < 10% of one core at a 0.5 s hop, offline >= 300x;
a hop at most 45 % of a full window's MFLOP, and offline at least 1.3x faster than whole windows.
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
from collections.abc import Callable
from pathlib import Path

from streamtag.commands import options, progress
from streamtag.live import DEFAULT_HOP_S

TARGET_P99_MS = 15.0
TARGET_CPU_PERCENT = 10.0
TARGET_OFFLINE_X = 300.0
TARGET_HOP_SHARE = 0.45
TARGET_OFFLINE_SPEEDUP = 1.3
PATHS = {"frames_once": False, "whole_windows": True}  # name -> Engine(full_window=...)
_SUMMARY = re.compile(r"latency p50 ([\d.]+) ms, p99 ([\d.]+) ms")


def register(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="measure live latency, CPU use and offline speed")
    add_arguments(parser)
    parser.set_defaults(run=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="*", type=Path, help="audio files (default: the GTZAN samples in ../shared/data)")
    options.add_model(parser, provider_default="cpu")
    options.add_hop(parser, default=DEFAULT_HOP_S)
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


def work_per_window(*, model: Path | None, hop_s: float) -> dict:
    """MFLOP per full window and per live hop, from the counts in the model's streaming metadata."""
    from streamtag.engine import Engine

    info = Engine(model, provider="cpu", full_window=True).info
    if info.streaming is None or not info.streaming.mflop:
        return {"counted": False}
    mflop = info.streaming.mflop
    hop_frames = info.hop_samples_for(hop_s) // info.streaming.frame_samples
    per_hop = mflop["network"] + hop_frames * mflop["frontend_frame"]
    return {"counted": True, "window_mflop": mflop["window"], "network_mflop": mflop["network"],
            "frontend_mflop_per_frame": mflop["frontend_frame"], "frames_per_window": info.streaming.frames_per_window,
            "hop_frames": hop_frames, "hop_mflop": round(per_hop, 3), "hop_share": round(per_hop / mflop["window"], 4)}


def bench_live(
    source: str, *, model: Path | None, provider: str, hop_s: float, live_s: float, warmup_s: float,
    device: str | None = None,
) -> dict[str, dict]:
    """Run one `streamtag live` per path in ``PATHS`` on ``source`` (a file at real-time pace, mic or loopback)
    at the same time, so that both see the same machine; each one's latency summary and steady-state CPU use."""
    procs = {}
    for name, full_window in PATHS.items():
        cmd = [sys.executable, "-m", "streamtag.cli", "live", "--source", source, "--no-tui", "--no-ws",
               "--no-taste", "--hop", str(hop_s), "--provider", provider, "--duration", str(live_s)]
        cmd += ["--full-window"] if full_window else []
        cmd += ["--model", str(model)] if model is not None else []
        cmd += ["--device", device] if device is not None else []
        procs[name] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    started = time.monotonic()
    headers = {name: proc.stderr.readline() for name, proc in procs.items()}  # printed once the source is open
    t0, cpu0 = time.monotonic(), {name: _cpu_seconds(proc.pid) for name, proc in procs.items()}
    time.sleep(warmup_s)
    t1, cpu1 = time.monotonic(), {name: _cpu_seconds(proc.pid) for name, proc in procs.items()}
    time.sleep(max(0.0, live_s - warmup_s - 1.0))
    t2, cpu2 = time.monotonic(), {name: _cpu_seconds(proc.pid) for name, proc in procs.items()}
    results = {}
    for name, proc in procs.items():
        rest = proc.communicate(timeout=live_s + 60)[1]
        match = _SUMMARY.search(rest)
        if proc.returncode != 0 or match is None:
            raise RuntimeError(f"streamtag live failed ({proc.returncode}): {headers[name]}{rest}")
        results[name] = {
            "source": Path(source).name,
            "startup_s": round(t0 - started, 2),
            "latency_p50_ms": float(match.group(1)),
            "latency_p99_ms": float(match.group(2)),
            "cpu_percent_of_one_core": round(100.0 * (cpu2[name] - cpu1[name]) / (t2 - t1), 2),
            "cpu_percent_warmup": round(100.0 * (cpu1[name] - cpu0[name]) / (t1 - t0), 2),
            "provider_line": headers[name].strip(),
        }
    return results


# (onnxruntime threads, 0 = its default; batch size); the first is what `tag` uses
OFFLINE_SETTINGS = ((0, 8), (0, 32), (1, 8), (1, 1))
REPEATS = 5  # passes per path, the paths taking turns so that a busier moment hits both; medians are reported


def _engines(model: Path | None, provider: str, threads: int) -> dict:
    from streamtag.engine import Engine

    return {name: Engine(model, provider=provider, threads=threads, full_window=full_window)
            for name, full_window in PATHS.items()}


def _median_passes(engines: dict, one_pass) -> dict[str, tuple[float, int]]:
    """``one_pass(engine) -> windows``, run ``REPEATS`` times per engine in turns after one warm-up pass each;
    the median seconds and the windows of a pass, by engine name."""
    times: dict[str, list[float]] = {name: [] for name in engines}
    windows = {name: one_pass(engine) for name, engine in engines.items()}  # warm-up, not timed
    for _ in range(REPEATS):
        for name, engine in engines.items():
            start = time.perf_counter()
            one_pass(engine)
            times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(times[name]), windows[name]) for name in engines}


def bench_stream(path: Path, *, model: Path | None, provider: str, hop_s: float) -> dict[str, dict]:
    """Windows/s of one stream fed hop by hop, batch 1 and one thread, as `live` runs (no real-time pacing)."""
    from streamtag.audio import load_audio
    from streamtag.core.tagger import Tagger

    engines = _engines(model, provider, threads=1)
    info = next(iter(engines.values())).info
    hop = info.hop_samples_for(hop_s)
    audio = load_audio(path, sample_rate=info.sample_rate)

    def one_pass(engine) -> int:
        tagger = Tagger(engine, hop_samples=hop, batch_size=1)
        return sum(len(tagger.feed(audio[i : i + hop])) for i in range(0, audio.size, hop))

    return {name: {"windows": n, "elapsed_s": round(t, 3), "windows_per_s": round(n / t, 1)}
            for name, (t, n) in _median_passes(engines, one_pass).items()}


def bench_offline(
    files: list[Path], *, model: Path | None, provider: str, on_setting: Callable[[], None] | None = None,
) -> dict[str, dict]:
    """Offline speed for a few thread/batch settings; the first is what `tag` uses by default. ``on_setting`` is
    called as each setting is done."""
    from streamtag.audio import load_audio
    from streamtag.core.tagger import Tagger

    runs: dict[str, list] = {name: [] for name in PATHS}
    for threads, batch_size in OFFLINE_SETTINGS:
        engines = _engines(model, provider, threads)
        info = next(iter(engines.values())).info
        clips = [load_audio(f, sample_rate=info.sample_rate) for f in files]
        audio_s = sum(len(c) for c in clips) / info.sample_rate

        def one_pass(engine, clips=clips, batch_size=batch_size) -> int:
            taggers = [Tagger(engine, batch_size=batch_size) for _ in clips]
            return sum(len(t.feed(clip)) + len(t.finish()) for t, clip in zip(taggers, clips, strict=True))

        for name, (elapsed, n_windows) in _median_passes(engines, one_pass).items():
            runs[name].append({"threads": threads, "batch_size": batch_size, "audio_s": round(audio_s, 1),
                               "windows": n_windows, "elapsed_s": round(elapsed, 3),
                               "times_real_time": round(audio_s / elapsed, 1),
                               "windows_per_s": round(n_windows / elapsed, 1)})
        if on_setting:
            on_setting()
    provider_name = next(iter(engines.values())).provider
    return {name: {"files": len(files), "provider": provider_name, "runs": r} for name, r in runs.items()}


def run(args: argparse.Namespace) -> int:
    files = args.files or _default_files()
    if not files:
        print("streamtag: error: no audio files given and none found in ../shared/data/gtzan/samples", file=sys.stderr)
        return 2
    source = args.live_source or str(files[0])
    # tools/bench_live.py's parser has no -q: its runs always say their phases
    phases = progress.Phases("bench", quiet=getattr(args, "quiet", False))
    result: dict = {"cpu_count": os.cpu_count(), "hop_s": args.hop, "work": work_per_window(model=args.model, hop_s=args.hop)}
    with phases.phase(f"offline speed over {len(files)} file(s), {len(OFFLINE_SETTINGS)} thread/batch settings, "
                      "both paths", total=len(OFFLINE_SETTINGS)) as advance:
        offline = bench_offline(files, model=args.model, provider=args.provider, on_setting=advance)
    with phases.phase(f"single-stream windows/s on {files[0].name}, both paths"):
        stream = bench_stream(files[0], model=args.model, provider=args.provider, hop_s=args.hop)
    with phases.phase(f"live latency and CPU use: one `streamtag live` per path on {Path(source).name} for "
                      f"{args.live_s:g} s"):
        live = bench_live(source, model=args.model, provider=args.provider, hop_s=args.hop, live_s=args.live_s,
                          warmup_s=args.warmup_s, device=args.device)
    for name in PATHS:
        result[name] = {"offline": offline[name], "single_stream": stream[name], "live": live[name]}
    once, whole = result["frames_once"], result["whole_windows"]
    result["ratios"] = {
        "offline_speedup": _ratio(once["offline"]["runs"][0]["times_real_time"], whole["offline"]["runs"][0]["times_real_time"]),
        "single_stream_speedup": _ratio(once["single_stream"]["windows_per_s"], whole["single_stream"]["windows_per_s"]),
        "live_cpu_ratio": _ratio(once["live"]["cpu_percent_of_one_core"], whole["live"]["cpu_percent_of_one_core"]),
        "live_p50_ratio": _ratio(once["live"]["latency_p50_ms"], whole["live"]["latency_p50_ms"]),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    _print_report(result, args)
    return 0


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def _print_report(result: dict, args: argparse.Namespace) -> None:
    work, ratios, once = result["work"], result["ratios"], result["frames_once"]
    print(f"machine: {os.cpu_count()} CPU(s); provider {once['offline']['provider']}; {once['live']['provider_line']}")
    if work["counted"]:
        print(f"work: {work['window_mflop']:.1f} MFLOP per full window; a {work['hop_frames']}-frame hop "
              f"{work['hop_mflop']:.1f} MFLOP (network {work['network_mflop']:.1f} + {work['hop_frames']} x "
              f"{work['frontend_mflop_per_frame']:.2f} per frame) = {work['hop_share']:.1%} of a window"
              f"   (target <= {TARGET_HOP_SHARE:.0%})")
    else:
        print("work: the model carries no FLOP counts (no streaming parts): every window is computed whole")
    for name, label in (("frames_once", "frames computed once"), ("whole_windows", "whole windows (before)")):
        part = result[name]
        live, stream = part["live"], part["single_stream"]
        print(f"{label}:")
        print(f"  live, hop {args.hop} s, {args.live_s:.0f} s of {live['source']}: latency p50 "
              f"{live['latency_p50_ms']:.1f} ms, p99 {live['latency_p99_ms']:.1f} ms (target p99 < {TARGET_P99_MS:.0f} ms);"
              f" CPU {live['cpu_percent_of_one_core']:.1f}% of one core after {args.warmup_s:.0f} s"
              f" (warm-up {live['cpu_percent_warmup']:.1f}%; target < {TARGET_CPU_PERCENT:.0f}%)")
        print(f"  single stream, batch 1: {stream['windows_per_s']:.0f} windows/s")
        for r in part["offline"]["runs"]:
            threads = "default" if r["threads"] == 0 else r["threads"]
            print(f"  offline, threads {threads!s:>7}, batch {r['batch_size']:2d}: {r['audio_s']:.0f} s of audio, "
                  f"{r['windows']} windows in {r['elapsed_s']:.2f} s -> {r['times_real_time']:.0f}x real time, "
                  f"{r['windows_per_s']:.0f} windows/s")
    print(f"frames once vs whole windows: offline {ratios['offline_speedup']}x (target >= {TARGET_OFFLINE_SPEEDUP}x), "
          f"single stream {ratios['single_stream_speedup']}x, live CPU {ratios['live_cpu_ratio']} of before, "
          f"live p50 latency {ratios['live_p50_ratio']} of before")
