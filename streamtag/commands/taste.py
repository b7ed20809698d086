"""`streamtag taste ...`: teach, inspect, forget, reset, export, import and rebuild the personal taste profile."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from streamtag.audio import AUDIO_SUFFIXES, audio_files_in
from streamtag.commands import options
from streamtag.core.messages import DISLIKE, LIKE
from streamtag.errors import AudioFileError, ProfileError
from streamtag.tag_files import embed_file
from streamtag.taste.fit import KIND_FILE, make_label
from streamtag.taste.profile import MAX_LABELS, ModelIdentity, Profile
from streamtag.taste.store import (
    default_profile_path,
    load_profile,
    profile_lock,
    read_profile,
    save_profile,
    set_aside,
)

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser("taste", help="teach and manage your personal taste profile")
    commands = parser.add_subparsers(dest="taste_command", metavar="ACTION")
    parser.set_defaults(run=lambda _args: parser.print_help() or 2)

    learn = commands.add_parser("learn", help="label files or folders as liked or disliked")
    learn.add_argument("--like", nargs="+", type=Path, default=[], metavar="PATH", help="files or folders you like")
    learn.add_argument(
        "--dislike", nargs="+", type=Path, default=[], metavar="PATH", help="files or folders you dislike"
    )
    options.add_model(learn)
    learn.set_defaults(run=run_learn)

    show = commands.add_parser("show", help="labels, counts and a cross-validated AUC")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    options.add_model(show)
    show.set_defaults(run=run_show)

    forget = commands.add_parser("forget", help="remove the labels of files (or of a live time)")
    forget.add_argument("sources", nargs="+", metavar="FILE")
    forget.set_defaults(run=run_forget)

    reset = commands.add_parser("reset", help="start over (the old profile is kept as a backup file)")
    reset.set_defaults(run=run_reset)

    export = commands.add_parser("export", help="copy the profile to a file")
    export.add_argument("out", type=Path, metavar="OUT")
    export.set_defaults(run=run_export)

    imp = commands.add_parser("import", help="replace the profile with one exported earlier (old one backed up)")
    imp.add_argument("source", type=Path, metavar="IN")
    imp.set_defaults(run=run_import)

    rebuild = commands.add_parser("rebuild", help="re-embed the labelled files with the current model")
    options.add_model(rebuild)
    rebuild.set_defaults(run=run_rebuild)


# --------------------------------------------------------------------------------------------------------------
# helpers


def _console():
    from rich.console import Console

    return Console(highlight=False)


def _engine(args: argparse.Namespace):
    from streamtag.engine import Engine

    return Engine(args.model, provider=args.provider)


def expand_audio_paths(paths: list[Path]) -> list[Path]:
    """Files as given; folders expanded (recursively, sorted) to the audio files inside them."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = audio_files_in(path)
            if not found:
                raise AudioFileError(f"{path}: no audio files ({', '.join(AUDIO_SUFFIXES)}) in this folder")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise AudioFileError(f"{path}: no such file or folder")
    return [f.resolve() for f in files]


# --------------------------------------------------------------------------------------------------------------
# actions


def run_learn(args: argparse.Namespace) -> int:
    if not args.like and not args.dislike:
        raise ProfileError("nothing to learn: give --like PATH... and/or --dislike PATH...")
    jobs = [(LIKE, f) for f in expand_audio_paths(args.like)] + [(DISLIKE, f) for f in expand_audio_paths(args.dislike)]
    both = {f for v, f in jobs if v == LIKE} & {f for v, f in jobs if v == DISLIKE}
    if both:
        raise ProfileError(f"{sorted(both)[0]}: given both as --like and --dislike; label each file once")
    engine = _engine(args)
    identity = ModelIdentity.from_info(engine.info)
    console = _console()
    path = default_profile_path()
    failed = 0
    labels = []
    for value, file in jobs:  # embed first: the lock is held only for the quick read-modify-write below
        try:
            embeddings, crowd = embed_file(engine, file)
        except AudioFileError as exc:
            console.print(f"[red]skipped[/red] {exc}")
            failed += 1
            continue
        labels.append(make_label(value, kind=KIND_FILE, source=str(file), embeddings=embeddings, crowd_probs=crowd))
        console.print(f"{'liked' if value == LIKE else 'disliked':9} {file} ({len(embeddings)} windows)")
    with profile_lock(path, on_wait=_say_waiting):
        profile = load_profile(identity, path, create=True)
        dropped = sum(profile.add(label, refit=False) for label in labels)
        profile.refit()
        save_profile(profile, path)
    console.print(
        f"taste profile: {profile.n_likes} liked, {profile.n_dislikes} disliked; "
        f"fitted in {profile.fit_ms:.0f} ms; saved to {path}"
    )
    if dropped:
        console.print(f"[yellow]the {dropped} oldest labels went[/yellow]: a profile keeps the newest {MAX_LABELS}")
    return 1 if failed else 0


def _profile_summary(profile: Profile, path: Path, model_identity: ModelIdentity | None) -> dict:
    compatible = model_identity is None or profile.identity == model_identity
    return {
        "path": str(path),
        "model": {
            "name": profile.identity.name,
            "version": profile.identity.version,
            "embedding_dim": profile.identity.embedding_dim,
        },
        "matches_current_model": compatible,
        "likes": profile.n_likes,
        "dislikes": profile.n_dislikes,
        "cv_auc": profile.cross_validated_auc(),
        "fit_ms": round(profile.fit_ms, 1),
        "labels": [
            {"value": lab.value, "kind": lab.kind, "source": lab.source, "windows": lab.n_windows, "added": lab.added}
            for lab in profile.labels
        ],
    }


def run_show(args: argparse.Namespace) -> int:
    path = default_profile_path()
    if not path.exists():
        if args.json:
            print(json.dumps({"path": str(path), "exists": False}))
        else:
            _console().print(f"no taste profile yet ({path}); the crowd's taste is shown. "
                             "Teach yours with 'streamtag taste learn --like ... --dislike ...'")
        return 0
    profile = read_profile(path)
    try:
        current = ModelIdentity.from_info(_engine(args).info)
    except Exception as exc:  # noqa: BLE001 - show must work even when the model cannot load
        log.debug("cannot load the model to compare: %s", exc)
        current = None
    summary = _profile_summary(profile, path, current)
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0
    from rich.table import Table

    console = _console()
    console.print(f"taste profile {path}")
    console.print(f"made for model {profile.identity.describe()}"
                  + ("" if summary["matches_current_model"] else
                     f"  [red]the model in use is {current.describe()}: run 'streamtag taste rebuild'[/red]"))
    table = Table("label", "kind", "source", "windows", "added")
    for lab in summary["labels"]:
        table.add_row(lab["value"], lab["kind"], lab["source"], str(lab["windows"]), lab["added"])
    console.print(table)
    auc = summary["cv_auc"]
    auc_text = (f"cross-validated AUC {auc:.2f}" if auc is not None
                else "cross-validated AUC: needs at least 3 liked and 3 disliked")
    console.print(f"{profile.n_likes} liked, {profile.n_dislikes} disliked; {auc_text}")
    return 0


def run_forget(args: argparse.Namespace) -> int:
    path = default_profile_path()
    console = _console()
    with profile_lock(path, on_wait=_say_waiting):
        profile = read_profile(path)
        removed = 0
        for source in args.sources:
            candidates = {source, str(Path(source).expanduser().resolve())}
            n = sum(profile.forget(c) for c in candidates)
            if n == 0:
                console.print(f"[yellow]not in the profile[/yellow]: {source}")
            removed += n
        if removed:
            save_profile(profile, path)
    console.print(f"forgot {removed} label(s); {profile.n_likes} liked, {profile.n_dislikes} disliked remain")
    return 0 if removed else 1


def run_reset(_args: argparse.Namespace) -> int:
    path = default_profile_path()
    with profile_lock(path, on_wait=_say_waiting):
        if not path.exists():
            _console().print(f"no taste profile at {path}: nothing to reset")
            return 0
        backup = set_aside(path, "reset")
    _console().print(f"taste profile reset; the old one is kept as {backup}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    path = default_profile_path()
    if not path.exists():
        raise ProfileError(f"there is no taste profile to export yet ({path}); teach one with 'streamtag taste learn'")
    profile = read_profile(path)
    save_profile(profile, args.out)
    _console().print(f"exported {len(profile.labels)} labels to {args.out}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    try:
        profile = read_profile(args.source, set_aside_corrupt=False)
    except FileNotFoundError:
        raise ProfileError(f"{args.source}: no such file") from None
    path = default_profile_path()
    console = _console()
    with profile_lock(path, on_wait=_say_waiting):
        if path.exists():
            backup = set_aside(path, "before-import")
            console.print(f"the previous profile is kept as {backup}")
        save_profile(profile, path)
    console.print(f"imported {profile.n_likes} liked, {profile.n_dislikes} disliked for model "
                  f"{profile.identity.describe()}")
    return 0


def run_rebuild(args: argparse.Namespace) -> int:
    engine = _engine(args)
    identity = ModelIdentity.from_info(engine.info)
    path = default_profile_path()
    console = _console()
    with profile_lock(path, on_wait=_say_waiting):
        try:
            old = read_profile(path)
        except FileNotFoundError:
            raise ProfileError(f"no taste profile at {path}: nothing to rebuild") from None
        labels, dropped = [], []
        for lab in old.labels:
            if lab.kind != KIND_FILE:
                dropped.append(f"live label {lab.source} (its audio was not kept)")
                continue
            try:
                embeddings, crowd = embed_file(engine, Path(lab.source))
            except AudioFileError as exc:
                dropped.append(f"{lab.source} ({exc})")
                continue
            labels.append(make_label(lab.value, kind=KIND_FILE, source=lab.source, embeddings=embeddings,
                                     crowd_probs=crowd, added=lab.added))
        new = Profile(identity, labels, config=old.config, created=old.created)
        backup = set_aside(path, "before-rebuild")
        save_profile(new, path)
    for item in dropped:
        console.print(f"[yellow]dropped[/yellow] {item}")
    console.print(f"rebuilt {len(labels)} of {len(old.labels)} labels for model {identity.describe()}; "
                  f"the old profile is kept as {backup}")
    return 0


def _say_waiting() -> None:
    print("streamtag: waiting for another streamtag that is writing the taste profile...", file=sys.stderr, flush=True)
