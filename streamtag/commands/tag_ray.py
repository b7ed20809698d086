"""`streamtag tag --ray PATH...`: whole libraries on Ray (``streamtag.ray_tagging``), the same JSON lines as
`tag --json` on stdout, Parquet with ``--out``, a progress bar on stderr where stderr is a terminal (commands/progress.py; not with -q).

Imported by commands/tag.py only when --ray is given: plain `tag` never imports ray.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from streamtag.audio import AUDIO_SUFFIXES
from streamtag.commands import progress
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
    from streamtag.commands.taste import say_where_the_labels_are
    from streamtag.taste.store import load_active_profile

    engine = Engine(args.model, provider="cpu")  # the model's facts, and a model that loads, before Ray starts
    info = engine.info
    hop_samples = info.hop_samples_for(args.hop)
    profile = None if args.no_taste else load_active_profile(info)
    if profile is None and not args.no_taste and not args.quiet:
        say_where_the_labels_are(info)
    job = ray_tagging.TagJob(
        model=str(args.model.resolve()) if args.model else None, provider=args.provider, hop_s=args.hop,
        frontends=tuple(info.streaming.frontends) if info.streaming else (),
        taste_scorer=profile.scorer if profile else None, taste_source="personal" if profile else "crowd",
    )
    console = progress.stderr_console()
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
        with ray_tagging.ray_session(address=args.ray_address, verbose=args.verbose), \
                progress.file_bar(len(files), quiet=args.quiet) as files_bar:
            task = files_bar.add_task("tagging", total=len(files), file="")
            results = ray_tagging.tag_on_ray(files, job, sample_rate=info.sample_rate,
                                             restart_lost_actors=bool(args.ray_address))
            for tagged in results:
                with progress.stdout_turn(files_bar):
                    print(tagged.line, flush=True)
                if out is not None:
                    out.add(tagged.record)
                if tagged.failed:
                    failures += 1
                    files_bar.console.print(f"streamtag: error: {tagged.record['error']}", markup=False)
                elif tagged.nonfinite_samples:
                    files_bar.console.print(f"streamtag: warning: {tagged.file}: {tagged.nonfinite_samples} samples "
                                            "were NaN or infinite and were read as silence", markup=False)
                files_bar.update(task, advance=1, file=Path(tagged.file).name)
    return 1 if failures else 0
