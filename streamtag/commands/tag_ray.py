"""`streamtag tag --ray PATH...`: whole libraries on Ray (``streamtag.ray_tagging``), the same JSON lines as
`tag --json` on stdout, Parquet with ``--out``, a progress bar on stderr where stderr is a terminal.

Imported by commands/tag.py only when --ray is given: plain `tag` never imports ray.
"""

from __future__ import annotations

import argparse
import contextlib

from streamtag.audio import AUDIO_SUFFIXES
from streamtag.engine import Engine
from streamtag.errors import StreamtagError

INSTALL_HINT = "pip install 'streamtag[scale]'"


def run_on_ray(args: argparse.Namespace) -> int:
    if not args.ray:
        raise StreamtagError("--ray-address, --out and --resume go with --ray")
    if args.resume and not args.out:
        raise StreamtagError("--resume continues an --out file: give --out X.parquet as well")
    try:
        from streamtag import ray_tagging, tag_parquet
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in ("ray", "pyarrow"):
            raise
        raise StreamtagError(f"tag --ray needs the [scale] extra (missing module {exc.name!r}): "
                             f"{INSTALL_HINT}") from exc
    from rich.console import Console

    from streamtag.taste.store import load_active_profile

    engine = Engine(args.model, provider="cpu")  # the model's facts, and a model that loads, before Ray starts
    info = engine.info
    hop_samples = info.hop_samples_for(args.hop)
    profile = None if args.no_taste else load_active_profile(info)
    job = ray_tagging.TagJob(
        model=str(args.model.resolve()) if args.model else None, provider=args.provider, hop_s=args.hop,
        frontends=tuple(info.streaming.frontends) if info.streaming else (),
        taste_scorer=profile.scorer if profile else None, taste_source="personal" if profile else "crowd",
    )
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    files = ray_tagging.collect_files(args.files)
    if not files:
        raise StreamtagError(f"no audio files in {', '.join(map(str, args.files))} (those named "
                             f"{', '.join('*' + suffix for suffix in AUDIO_SUFFIXES)})")
    run = tag_parquet.run_identity(info, hop_samples)
    out = tag_parquet.ParquetOutput(args.out, run=run, resume=args.resume) if args.out else None
    failures = 0
    with out or contextlib.nullcontext():
        if out is not None and out.done:
            done = len(files)
            files = [f for f in files if f not in out.done]
            console.print(f"streamtag: {done - len(files)} of {done} files are already in {args.out}", markup=False)
        if not files:
            return 0
        with ray_tagging.ray_session(address=args.ray_address, verbose=getattr(args, "verbose", False)), _progress(console) as progress:
            task = progress.add_task("tagging", total=len(files))
            results = ray_tagging.tag_on_ray(files, job, sample_rate=info.sample_rate,
                                             restart_lost_actors=bool(args.ray_address))
            for tagged in results:
                print(tagged.line, flush=True)
                if out is not None:
                    out.add(tagged.record)
                if tagged.failed:
                    failures += 1
                    console.print(f"streamtag: error: {tagged.record['error']}", markup=False)
                elif tagged.nonfinite_samples:
                    console.print(f"streamtag: warning: {tagged.file}: {tagged.nonfinite_samples} samples were NaN "
                                  "or infinite and were read as silence", markup=False)
                progress.advance(task)
    return 1 if failures else 0


def _progress(console):
    """Files done, time taken and time left, on stderr; nothing where stderr is not a terminal. stdout is left
    alone (rich would otherwise route it through the bar's console, onto stderr): it is for the JSON lines."""
    from rich import progress as bar

    return bar.Progress(bar.TextColumn("{task.description}"), bar.BarColumn(), bar.MofNCompleteColumn(),
                        bar.TimeElapsedColumn(), bar.TimeRemainingColumn(), console=console,
                        disable=not console.is_terminal, redirect_stdout=False, redirect_stderr=False)
