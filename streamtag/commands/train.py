"""`streamtag train DATA_DIR`: cache log-mels, train the CRNN with a progress display, keep checkpoints."""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

from platformdirs import user_cache_dir

from streamtag.errors import StreamtagError
from streamtag.train.options import add_recipe_options


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train the CRNN on a dataset folder (Emotify, GTZAN or <label>/ folders)")
    p.add_argument("data_dir", type=Path, help="dataset root: Emotify (tracks.csv), GTZAN (genres/<genre>/...) or <label>/<file>")
    p.add_argument("--out", type=Path, default=Path("runs/crnn"), help="checkpoint folder (default runs/crnn)")
    p.add_argument("--split", type=Path, help="a split JSON (default: the dataset's own, else a new artist split)")
    p.add_argument("--seed", type=int, default=0)
    fit = p.add_mutually_exclusive_group()
    fit.add_argument("--final", action="store_true",
                     help="train on train and valid together for exactly --epochs epochs, with no validation and no "
                          "early stopping; the last epoch is the model (once the recipe is chosen on valid)")
    fit.add_argument("--all", action="store_true",
                     help="as --final, on every labelled track, test split included (once the recipe is chosen by "
                          "tools/crossval.py): how the shipped model is trained")
    add_recipe_options(p)
    p.add_argument("--patience", type=int, default=20, help="epochs without valid improvement before stopping")
    p.add_argument("--max-minutes", type=float, help="stop after this much training time")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt exactly where it stopped")
    p.add_argument("--cache", type=Path, default=Path(user_cache_dir("streamtag")), help="log-mel cache folder")
    # One thread by default: on a small machine whose other cores are busy, torch's OpenMP threads spin
    # against each other and a step takes ~5x longer than on one thread.
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1; 0: all cores)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.set_defaults(run=run)


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run(args: argparse.Namespace) -> int:
    try:
        import torch
    except ModuleNotFoundError as exc:
        raise StreamtagError("streamtag train needs the [train] extra: pip install torch==2.13.0 (or the build for "
                             "your CUDA), then pip install 'streamtag[train]'") from exc
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from streamtag.commands.progress import LogLines
    from streamtag.train.data import (
        load_dataset,
        load_split,
        save_split,
        split_by_artist,
    )
    from streamtag.train.loop import train
    from streamtag.train.material import Material, unlabelled_tracks
    from streamtag.train.options import architecture_of, train_config_of

    # soft_wrap: outside a terminal rich would cut every long line at 80 columns in the log
    console = Console(stderr=True, soft_wrap=True)
    if not 0 <= args.average_last <= args.epochs:
        raise StreamtagError(f"--average-last must be between 0 and --epochs ({args.epochs}), not {args.average_last}")
    if args.unlabelled and args.teacher is None:
        raise StreamtagError("--unlabelled audio teaches only through a teacher: pass --teacher DIR as well")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    dataset = load_dataset(args.data_dir)
    if args.split:
        split, split_source = load_split(args.split, dataset.tracks), str(args.split)
    elif dataset.split is not None:
        split, split_source = dataset.split, "the dataset's own split lists"
    else:
        split, split_source = split_by_artist(dataset.tracks, seed=args.seed), f"artist split, seed {args.seed}"
    if not split["train"] or not split["valid"]:
        raise StreamtagError(f"{args.data_dir}: the split has an empty train or valid part; add data or pass --split")
    args.out.mkdir(parents=True, exist_ok=True)
    save_split(args.out / "split.json", split, dataset=dataset.name, seed=args.seed)
    material = Material.open(dataset.labels, cache_dir=args.cache, teacher_dir=args.teacher,
                             distil_features=args.feature_weight > 0, **architecture_of(args))
    model_config = material.model_config
    config = train_config_of(args, patience=args.patience, max_minutes=args.max_minutes, device=device)
    unlabelled = unlabelled_tracks(args.unlabelled)
    no_valid = args.final or args.all
    console.print(f"[bold]{dataset.name}[/]: {len(dataset.tracks)} tracks, labels {', '.join(dataset.labels)}; "
                  f"split: {split_source} ({', '.join(f'{k} {len(v)}' for k, v in split.items())}); device {device}")
    started = time.monotonic()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as progress:
        fit_tracks = split["train"] + (split["valid"] if no_valid else []) + (split["test"] if args.all else [])
        fit_tracks += unlabelled
        valid_tracks = [] if no_valid else split["valid"]
        n_cached = len(fit_tracks) + len(valid_tracks)
        task = progress.add_task("log-mel cache", total=n_cached)
        # Outside a terminal there is no bar (rich would draw none, and end with a blank line): whole lines say
        # how far the cache is instead.
        lines = None if console.is_terminal else LogLines(console, "log-mel cache", n_cached)

        def advance() -> None:
            progress.advance(task)
            if lines:
                lines.advance()

        train_set = material.training_set(fit_tracks, on_track=advance)
        valid_set = None if no_valid else material.training_set(valid_tracks, on_track=advance)
        progress.remove_task(task)
        batches = progress.add_task("epoch 1", total=None)

        def on_batch(step: int, total: int) -> None:
            progress.update(batches, completed=step, total=total)

        def on_epoch(report) -> None:
            line = f"epoch {report.epoch:3d}  loss {report.train_loss:.3f}  "
            if valid_set is not None:
                line = ("*" if report.improved else " ") + f" {line}valid acc {report.valid_accuracy:.3f}  " \
                    f"taste rho {report.valid_taste_spearman:+.3f}  moods r {report.valid_mood_correlation:+.3f}  "
            progress.console.print(f"{line}({report.seconds:.0f} s)")
            progress.update(batches, description=f"epoch {report.epoch + 1}", completed=0)

        provenance = {
            "dataset": dataset.name, "data_root": str(args.data_dir), "split": split_source,
            "fit_on": "all" if args.all else "train+valid" if args.final else "train",
            "n_train": len(split["train"]), "n_valid": len(split["valid"]), "n_test": len(split["test"]),
            "n_unlabelled": len(unlabelled),
            "teacher": None if material.teacher is None else {
                "name": material.teacher.teacher, "cache": str(args.teacher), "files_scored": len(material.teacher),
                "unlabelled": [str(p) for p in args.unlabelled]},
            "seed": args.seed, "train_seed": config.seed, "commit": _git_commit(), "device": device,
        }
        reports = train(model_config, config, train_set, valid_set, args.out, resume=args.resume,
                        on_epoch=on_epoch, on_batch=on_batch, extra_state={"provenance": provenance})
        if reports and args.probe_heads:
            from streamtag.train.probe_heads import refit_checkpoint

            chosen = refit_checkpoint(args.out / "best.pt", train_set, [t.artist for t in fit_tracks])
            progress.console.print(f"heads refitted as linear probes ({chosen})")
    minutes = (time.monotonic() - started) / 60
    if not reports:
        return 0
    last = reports[-1]
    if last.epoch < args.epochs and (no_valid or args.average_last):
        console.print(f"[yellow]stopped after {last.epoch} of {args.epochs} epochs (--max-minutes)[/]: best.pt is "
                      "not the end of the schedule; `--resume` continues the run")
    if no_valid:
        console.print(f"done in {minutes:.1f} min; {last.epoch} epochs on {len(fit_tracks)} tracks -> {args.out / 'best.pt'}")
        return 0
    averaged = args.average_last and last.epoch == args.epochs
    kept = last if averaged else max(reports, key=lambda r: r.valid_score)
    which = f"the mean of the last {args.average_last} epochs" if averaged else f"best epoch {kept.epoch}"
    console.print(f"done in {minutes:.1f} min; {which}: valid acc {kept.valid_accuracy:.3f}, "
                  f"taste rho {kept.valid_taste_spearman:+.3f} -> {args.out / 'best.pt'}")
    return 0
