"""Plain `tag` (in-process) against the Ray pipeline (`tag --ray`) on the same files, in one run.

    python tools/bench_ray.py [PATH...] [--copies 4] [--passes 3] [--cpus N] [--provider auto|cpu|cuda]

PATH: files or folders (default: ../shared/data/gtzan/samples and ../shared/data/cc-audio), each file tagged
``--copies`` times. Prints files/s and x real time (seconds of audio per second of wall time) for both, each
the median of ``--passes`` passes. Neither counts its one-off start: the engine's load for plain `tag`,
starting Ray for the pipeline (reported apart). A Ray pass does count its pipeline's start (the actor pool,
each actor loading the model), which every `tag --ray` run pays once; the time to its first record and the
rate after it are shown too. Both give the same records, which is checked.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from streamtag.core.tagger import Tagger
from streamtag.engine import Engine
from streamtag.errors import AudioFileError
from streamtag.tag_files import tag_file

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _plain_pass(tagger: Tagger, files: list[str]) -> dict[str, dict]:
    results = {}
    for file in files:
        try:
            results[file] = tag_file(tagger, Path(file)) | {"taste_source": "crowd"}
        except AudioFileError as exc:
            results[file] = {"file": file, "error": str(exc)}
    return results


def _timed(passes: int, run) -> tuple[float, object]:
    times, result = [], None
    for _ in range(passes):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _ray_pass(ray_tagging, files: list[str], job, sample_rate: int) -> tuple[dict, float, float]:
    """The records, the seconds to the first one, and the rate (files/s) after it."""
    start = time.perf_counter()
    records, first = {}, None
    for tagged in ray_tagging.tag_on_ray(files, job, sample_rate=sample_rate):
        records[tagged.file] = tagged.record
        first = first or time.perf_counter() - start
    rest = time.perf_counter() - start - first
    return records, first, (len(files) - 1) / rest if rest > 0 else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", type=Path, default=[DATA / "gtzan/samples", DATA / "cc-audio"])
    parser.add_argument("--copies", type=int, default=4, help="times each file is tagged per pass (default 4)")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=os.cpu_count(), help="CPUs of the local Ray (default: all)")
    parser.add_argument("--provider", default="auto", choices=("auto", "cpu", "cuda"))
    args = parser.parse_args()

    from streamtag import ray_tagging

    files = ray_tagging.collect_files(args.paths) * args.copies
    engine = Engine(provider=args.provider)
    info = engine.info
    plain_s, plain = _timed(args.passes, lambda: _plain_pass(Tagger(engine), files))
    audio_s = sum(plain[f].get("duration_s", 0.0) for f in files)

    start = time.perf_counter()
    with ray_tagging.ray_session(num_cpus=args.cpus):
        startup_s = time.perf_counter() - start
        job = ray_tagging.TagJob(model=None, provider=args.provider, hop_s=None,
                                 frontends=tuple(info.streaming.frontends) if info.streaming else ())
        passes = []
        for _ in range(args.passes):
            begin = time.perf_counter()
            passes.append((*_ray_pass(ray_tagging, files, job, info.sample_rate), time.perf_counter() - begin))
    ray_s = statistics.median(p[3] for p in passes)
    first_s = statistics.median(p[1] for p in passes)
    steady = statistics.median(p[2] for p in passes)
    same = all(p[0] == {f: json.loads(json.dumps(r)) for f, r in plain.items()} for p in passes)

    print(f"{len(files)} files ({len(set(files))} distinct), {audio_s:.0f} s of audio; {args.cpus} CPUs; "
          f"engine on {engine.provider}; median of {args.passes} passes")
    for name, seconds in (("plain tag (in-process)", plain_s), ("tag --ray (Ray Data)", ray_s)):
        print(f"  {name:24s} {seconds:6.2f} s  {len(files) / seconds:6.2f} files/s  "
              f"{audio_s / seconds:7.1f} x real time")
    print(f"  tag --ray after its first record ({first_s:.2f} s: actor pool start): {steady:6.2f} files/s  "
          f"{steady * audio_s / len(files):7.1f} x real time")
    print(f"  Ray startup (ray.init, once, not counted above): {startup_s:.2f} s")
    print(f"  same records: {'yes' if same else 'NO'}")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
