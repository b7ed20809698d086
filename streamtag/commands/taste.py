"""`streamtag taste ...`: teach, inspect, forget, reset, export, import and rebuild the personal taste profile.

Each acts on the profile of the model in use (``--model``, default the shipped one): there is one per model.
"""

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
from streamtag.taste.fit import KIND_FILE, KIND_LIVE, make_label
from streamtag.taste.profile import MAX_LABELS, ModelIdentity, Profile
from streamtag.taste.store import (
    clip_path,
    elsewhere_notice,
    load_profile,
    other_profiles,
    profile_lock,
    profile_path,
    profile_path_for,
    prune_clips,
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
    options.add_model(forget)
    forget.set_defaults(run=run_forget)

    reset = commands.add_parser("reset", help="start over (the old profile is kept as a backup file)")
    options.add_model(reset)
    reset.set_defaults(run=run_reset)

    export = commands.add_parser("export", help="copy the profile to a file")
    export.add_argument("out", type=Path, metavar="OUT")
    options.add_model(export)
    export.set_defaults(run=run_export)

    imp = commands.add_parser("import", help="install a profile exported earlier, for its model (old one backed up)")
    imp.add_argument("source", type=Path, metavar="IN")
    options.add_model(imp)
    imp.set_defaults(run=run_import)

    rebuild = commands.add_parser(
        "rebuild", help="carry labels from another model's profile to this model by re-embedding their audio")
    rebuild.add_argument("--from", dest="source", type=Path, metavar="PROFILE",
                         help="the profile to carry over (default: the newest profile of another model)")
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


def _identity(args: argparse.Namespace) -> ModelIdentity:
    return ModelIdentity.from_info(_engine(args).info)


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
    path = profile_path_for(identity)
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
        if dropped:
            prune_clips()
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
            "weights_sha256": profile.identity.weights_sha256,
        },
        "matches_current_model": compatible,
        "likes": profile.n_likes,
        "dislikes": profile.n_dislikes,
        "cv_auc": profile.cross_validated_auc(),
        "fit_ms": round(profile.fit_ms, 1),
        "labels": [
            {"value": lab.value, "kind": lab.kind, "source": lab.source, "windows": lab.n_windows, "added": lab.added,
             "clip": lab.clip}
            for lab in profile.labels
        ],
    }


def run_show(args: argparse.Namespace) -> int:
    try:
        current = _identity(args)
    except Exception as exc:  # noqa: BLE001 - show must say what it can when the model cannot load
        if args.json:
            print(json.dumps({"error": str(exc)}))
        else:
            _console().print(f"[red]cannot load the model[/red] ({exc}), so cannot tell which profile is its own")
        return 2
    path = profile_path_for(current)
    elsewhere = other_profiles(current)
    others = [{"path": str(p), "model": prof.identity.describe(), "labels": len(prof.labels)} for p, prof in elsewhere]
    if not path.exists():
        if args.json:
            print(json.dumps({"path": str(path), "exists": False, "other_models": others}))
        else:
            console = _console()
            console.print(f"no taste profile yet for model {current.describe()} ({path}); the crowd's taste is shown. "
                          "Teach yours with 'streamtag taste learn --like ... --dislike ...'")
            notice = elsewhere_notice(current, elsewhere)
            if notice:
                console.print(notice)
        return 0
    profile = read_profile(path)
    summary = {**_profile_summary(profile, path, current), "other_models": others}
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0
    from rich.table import Table

    console = _console()
    console.print(f"taste profile {path}")
    console.print(f"made for model {profile.identity.describe()}"
                  + ("" if summary["matches_current_model"] else
                     f"  [red]the model in use is {current.describe()}: run 'streamtag taste rebuild'[/red]"))
    table = Table("label", "kind", "source", "windows", "added", "audio kept")
    for lab in summary["labels"]:
        kept = "the file" if lab["kind"] == KIND_FILE else "clip" if lab["clip"] else "no"
        table.add_row(lab["value"], lab["kind"], lab["source"], str(lab["windows"]), lab["added"], kept)
    console.print(table)
    auc = summary["cv_auc"]
    auc_text = (f"cross-validated AUC {auc:.2f}" if auc is not None
                else "cross-validated AUC: needs at least 3 liked and 3 disliked")
    console.print(f"{profile.n_likes} liked, {profile.n_dislikes} disliked; {auc_text}")
    for other in others:
        console.print(f"also: {other['labels']} labels for model {other['model']} ({other['path']})")
    return 0


def run_forget(args: argparse.Namespace) -> int:
    path = profile_path_for(_identity(args))
    console = _console()
    with profile_lock(path, on_wait=_say_waiting):
        try:
            profile = read_profile(path)
        except FileNotFoundError:
            raise ProfileError(f"no taste profile at {path}: nothing to forget") from None
        removed = 0
        for source in args.sources:
            candidates = {source, str(Path(source).expanduser().resolve())}
            n = sum(profile.forget(c) for c in candidates)
            if n == 0:
                console.print(f"[yellow]not in the profile[/yellow]: {source}")
            removed += n
        if removed:
            save_profile(profile, path)
            prune_clips()
    console.print(f"forgot {removed} label(s); {profile.n_likes} liked, {profile.n_dislikes} disliked remain")
    return 0 if removed else 1


def run_reset(args: argparse.Namespace) -> int:
    path = profile_path_for(_identity(args))
    with profile_lock(path, on_wait=_say_waiting):
        if not path.exists():
            _console().print(f"no taste profile at {path}: nothing to reset")
            return 0
        backup = set_aside(path, "reset")  # keeps naming its clips, so they stay until it is deleted
    _console().print(f"taste profile reset; the old one is kept as {backup}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    path = profile_path_for(_identity(args))
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
    current = _identity(args)
    if profile.identity.names(current):  # exported before models carried their digest
        profile = profile.for_model(current)
    path = profile_path(profile.identity)
    console = _console()
    with profile_lock(path, on_wait=_say_waiting):
        if path.exists():
            backup = set_aside(path, "before-import")
            console.print(f"the previous profile is kept as {backup}")
        save_profile(profile, path)
    console.print(f"imported {profile.n_likes} liked, {profile.n_dislikes} disliked for model "
                  f"{profile.identity.describe()}")
    if profile.identity != current:
        console.print(f"[yellow]it is not for the model in use[/yellow] ({current.describe()}): "
                      f"'streamtag taste rebuild --from {path}' carries its labels over")
    return 0


def _source_profile(args: argparse.Namespace, identity: ModelIdentity) -> tuple[Path, Profile]:
    if args.source is not None:
        try:
            return args.source, read_profile(args.source, set_aside_corrupt=False)
        except FileNotFoundError:
            raise ProfileError(f"{args.source}: no such file") from None
    others = other_profiles(identity)
    if not others:
        raise ProfileError(f"no taste profile of another model to carry to {identity.describe()}; "
                           "name one with --from PROFILE")
    return others[0]


def _reembed(engine, lab) -> tuple:
    """A label's windows embedded by ``engine``: from its file, or from the clip a live label kept."""
    if lab.kind == KIND_LIVE:
        if lab.clip is None:
            raise AudioFileError("its audio was not kept (labelled before streamtag kept live clips)")
        return embed_file(engine, clip_path(lab.clip))
    return embed_file(engine, Path(lab.source))


def run_rebuild(args: argparse.Namespace) -> int:
    engine = _engine(args)
    identity = ModelIdentity.from_info(engine.info)
    source_path, old = _source_profile(args, identity)
    path = profile_path_for(identity)
    console = _console()
    carried, dropped = [], []
    for lab in old.labels:  # embed first: the lock is held only for the read-modify-write below
        try:
            embeddings, crowd = _reembed(engine, lab)
        except AudioFileError as exc:
            dropped.append(f"{lab.kind} label {lab.source} ({exc})")
            continue
        carried.append(make_label(lab.value, kind=lab.kind, source=lab.source, embeddings=embeddings,
                                  crowd_probs=crowd, added=lab.added, clip=lab.clip))
    with profile_lock(path, on_wait=_say_waiting):
        profile = (load_profile(identity, path) if path.exists()
                   else Profile(identity, config=old.config, created=old.created))
        have = {(lab.kind, lab.source) for lab in profile.labels}
        # The labels this model has already win: they were given, or carried, for it.
        new = [lab for lab in carried if (lab.kind, lab.source) not in have]
        profile.replace_labels(sorted([*profile.labels, *new], key=lambda lab: lab.added))
        save_profile(profile, path)
    for item in dropped:
        console.print(f"[yellow]not carried[/yellow] {item}")
    console.print(f"carried {len(new)} of {len(old.labels)} labels from {source_path} (model "
                  f"{old.identity.describe()}) to model {identity.describe()}: {path}; the old profile is unchanged")
    return 0


def say_where_the_labels_are(info) -> None:
    """When this model has no profile yet but another model has one: say so, and how to carry it over."""
    notice = elsewhere_notice(ModelIdentity.from_info(info))
    if notice:
        print(f"streamtag: {notice}", file=sys.stderr, flush=True)


def _say_waiting() -> None:
    print("streamtag: waiting for another streamtag that is writing the taste profile...", file=sys.stderr, flush=True)
