"""`streamtag tag FILE...`: tag audio files offline with the streaming core, one result per file."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from streamtag.audio import iter_audio
from streamtag.engine import Engine
from streamtag.errors import AudioFileError, StreamtagError
from streamtag.tagger import Tagger, WindowScores, clip_summary


def register(subparsers) -> None:
    p = subparsers.add_parser("tag", help="tag audio files (any common format and sample rate)")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--json", action="store_true", help="one JSON line per file instead of a table")
    p.add_argument("--model", type=Path, help="ONNX model (default: the shipped model)")
    p.add_argument("--hop", type=float, help="seconds between windows (default: the model's)")
    p.add_argument("--provider", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--no-taste", action="store_true", help="show the crowd's taste; ignore a personal profile")
    p.set_defaults(run=run)


def file_windows(tagger: Tagger, path: Path) -> tuple[list[WindowScores], int]:
    """Every scored window of one file, and its length in samples; decoded block by block, so memory stays
    bounded even for a 2-hour mix."""
    tagger.reset()
    windows = []
    n_samples = 0
    for block in iter_audio(path, sample_rate=tagger.info.sample_rate):
        n_samples += block.size
        windows += tagger.feed(block)
    return windows + tagger.finish(), n_samples


def tag_file(tagger: Tagger, path: Path) -> dict:
    """Clip-level tags of one file: its window scores averaged."""
    windows, n_samples = file_windows(tagger, path)
    info = tagger.info
    return {"file": str(path), "duration_s": round(n_samples / info.sample_rate, 3), **clip_summary(windows, info)}


def run(args: argparse.Namespace) -> int:
    from streamtag.taste import load_active_profile

    if args.hop is not None and args.hop <= 0:
        raise StreamtagError(f"--hop must be a positive number of seconds, got {args.hop}")
    engine = Engine(args.model, provider=args.provider)
    hop_samples = round(args.hop * engine.info.sample_rate) if args.hop else None
    profile = None if args.no_taste else load_active_profile(engine.info)
    tagger = Tagger(engine, hop_samples=hop_samples, taste_scorer=profile.scorer if profile else None)
    taste_source = "personal" if profile else "crowd"
    failures = 0
    results = []
    for path in args.files:
        try:
            result = tag_file(tagger, path) | {"taste_source": taste_source}
        except AudioFileError as exc:
            failures += 1
            print(f"streamtag: error: {exc}", file=sys.stderr)
            continue
        if tagger.nonfinite_samples:
            print(f"streamtag: warning: {path}: {tagger.nonfinite_samples} samples were NaN or infinite and were "
                  "read as silence", file=sys.stderr)
        if args.json:
            print(json.dumps(result), flush=True)
        else:
            results.append(result)
    if results:
        _print_table(results, engine, taste=profile.describe() if profile else "the crowd's (Emotify listeners)")
    return 1 if failures else 0


def _print_table(results: list[dict], engine: Engine, *, taste: str) -> None:
    from rich.console import Console
    from rich.table import Table

    info = engine.info
    table = Table(title=f"{info.name} {info.version} ({engine.provider})", caption=f"taste: {taste}")
    table.add_column("file", no_wrap=True)
    table.add_column("top", style="bold")
    table.add_column("genres")
    table.add_column("taste", justify="right")
    table.add_column("moods")
    for r in results:
        genres = sorted(r["genre"].items(), key=lambda kv: -kv[1])
        moods = sorted(r["moods"].items(), key=lambda kv: -kv[1])[:3]
        table.add_row(
            Path(r["file"]).name,
            r["top"],
            " ".join(f"{label} {p:.0%}" for label, p in genres),
            f"{r['taste']:.0%}",
            ", ".join(f"{name} {score:.0%}" for name, score in moods),
        )
    Console().print(table)
