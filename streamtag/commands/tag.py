"""`streamtag tag FILE...`: tag audio files offline with the streaming core, one result per file."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from streamtag.audio import audio_file_info
from streamtag.commands import options, progress
from streamtag.core.smoothing import MUSIC
from streamtag.core.tagger import Tagger
from streamtag.engine import Engine
from streamtag.errors import AudioFileError
from streamtag.tag_files import tag_file


def register(subparsers) -> None:
    p = subparsers.add_parser("tag", help="tag audio files (any common format and sample rate)")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--json", action="store_true", help="one JSON line per file instead of a table")
    options.add_model(p)
    options.add_hop(p)
    p.add_argument("--no-taste", action="store_true", help="show the crowd's taste; ignore a personal profile")
    scale = p.add_argument_group("whole libraries on Ray (needs pip install 'streamtag[scale]')")
    scale.add_argument("--ray", action="store_true",
                       help="tag on Ray: folders are walked, one JSON line per file as with --json (in any order), "
                            "an undecodable file as {\"file\": ..., \"error\": ...}")
    scale.add_argument("--ray-address", metavar="ADDR", help="join this Ray cluster (default: start Ray here)")
    scale.add_argument("--out", type=Path, metavar="X.parquet", help="also write the records to this Parquet file")
    scale.add_argument("--resume", action="store_true", help="with --out: skip the files already tagged in it")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from streamtag.commands.taste import say_where_the_labels_are
    from streamtag.taste.store import load_active_profile

    if args.ray or args.ray_address or args.out or args.resume:
        from streamtag.commands.tag_ray import run_on_ray  # imports ray: only here, never for plain `tag`

        return run_on_ray(args)
    engine = Engine(args.model, provider=args.provider)
    hop_samples = engine.info.hop_samples_for(args.hop)
    profile = None if args.no_taste else load_active_profile(engine.info)
    if profile is None and not args.no_taste and not args.quiet:
        say_where_the_labels_are(engine.info)
    tagger = Tagger(engine, hop_samples=hop_samples, taste_scorer=profile.scorer if profile else None)
    taste_source = "personal" if profile else "crowd"
    failures = 0
    results = []
    with progress.file_bar(len(args.files), quiet=args.quiet) as files_bar:
        task = files_bar.add_task("tagging", total=len(args.files), file="")
        for path in args.files:
            files_bar.update(task, file=path.name, refresh=True)  # drawn now: a short file is done before the next tick
            result = _tag_one(tagger, path, taste_source)
            files_bar.advance(task)
            if result is None:
                failures += 1
            elif args.json:
                with progress.stdout_turn(files_bar):
                    print(json.dumps(result), flush=True)
            else:
                results.append(result)
    if results:
        _print_table(results, engine, taste=profile.describe() if profile else "the crowd's (Emotify listeners)")
    return 1 if failures else 0


def _tag_one(tagger: Tagger, path: Path, taste_source: str) -> dict | None:
    """One file's result, its warnings said on stderr; None, with the error said, where it cannot be decoded."""
    try:
        result = tag_file(tagger, path) | {"taste_source": taste_source}
    except AudioFileError as exc:
        print(f"streamtag: error: {exc}", file=sys.stderr)
        return None
    if tagger.nonfinite_samples:
        print(f"streamtag: warning: {path}: {tagger.nonfinite_samples} samples were NaN or infinite and were "
              "read as silence", file=sys.stderr)
    cut_short = audio_file_info(path).cut_short
    if cut_short:
        result["warning"] = f"cut short: {cut_short}; only the {result['duration_s']:.1f} s that decoded are tagged"
        print(f"streamtag: warning: {path}: {result['warning']}", file=sys.stderr)
    return result


# Below this many columns a table of six columns squeezes its cells to nothing: print one block per file instead.
TABLE_MIN_COLUMNS = 120
TOP_TAGS_SHOWN = 3


def _summaries(r: dict) -> dict[str, str]:
    """One file's result as the short texts both layouts show."""
    genres = sorted(r["genre"].items(), key=lambda kv: -kv[1])
    moods = sorted(r["moods"].items(), key=lambda kv: -kv[1])[:3]
    tags = sorted(r["tags"].items(), key=lambda kv: -kv[1])[:TOP_TAGS_SHOWN]
    return {
        # no genre is claimed for speech, or for a clip no genre fits (core/smoothing.py's states)
        "top": r["top"] if r["state"] == MUSIC else f"({r['state']})",
        "genres": " ".join(f"{label} {p:.0%}" for label, p in genres),
        "taste": f"{r['taste']:.0%}",
        "moods": ", ".join(f"{name} {score:.0%}" for name, score in moods),
        "tags": ", ".join(f"{name} {p:.0%}" for name, p in tags),
    }


def _print_table(results: list[dict], engine: Engine, *, taste: str) -> None:
    """A table on a wide terminal; elsewhere (80 columns, a pipe) one block per file, so nothing is cut.
    Files are shown as given on the command line: two ``12.ogg`` in different folders stay apart."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    info = engine.info
    console = Console()
    title = f"{info.name} {info.version} ({engine.provider})"
    if console.is_terminal and console.width >= TABLE_MIN_COLUMNS:
        table = Table(title=title, caption=f"taste: {taste}")
        table.add_column("file", overflow="fold")
        table.add_column("top", style="bold", no_wrap=True)
        for name in ("genres", "taste", "moods", "tags"):
            table.add_column(name, justify="right" if name == "taste" else "left")
        for r in results:
            texts = _summaries(r)
            table.add_row(escape(r["file"]), texts["top"], texts["genres"], texts["taste"], texts["moods"], texts["tags"])
        console.print(table)
        return
    console.print(f"{escape(title)}; taste: {escape(taste)}", soft_wrap=True)
    for r in results:
        texts = _summaries(r)
        console.print(f"[bold]{escape(r['file'])}[/]", soft_wrap=True)
        console.print(f"  {texts['top']}  ({texts['genres']})  taste {texts['taste']}", soft_wrap=True)
        console.print(f"  moods {texts['moods']}", soft_wrap=True)
        if texts["tags"]:
            console.print(f"  tags {texts['tags']}", soft_wrap=True)
