"""`streamtag evaluate MODEL DATA_DIR`: clip-level metrics of an exported model on a dataset's test split."""

from __future__ import annotations

import argparse
import json
import logging
from importlib import resources
from pathlib import Path

from streamtag.commands import options, progress
from streamtag.core.tagger import Tagger
from streamtag.engine import Engine
from streamtag.errors import StreamtagError

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="clip-level accuracy, F1, confusion, taste and mood metrics")
    p.add_argument("model", type=Path, help="an exported ONNX model")
    p.add_argument("data_dir", type=Path)
    p.add_argument("--split", type=Path, help="split JSON (default: the dataset's own, or the shipped Emotify split)")
    p.add_argument("--subset", default="test", choices=("train", "valid", "test", "all"))
    p.add_argument("--out", type=Path, default=Path("artifacts/evaluate"), help="folder for the PNG and JSON")
    options.add_hop(p)
    options.add_provider(p)
    p.set_defaults(run=run)


def _split_for(args, dataset):
    from streamtag.train.data import load_split

    if args.split:
        return load_split(args.split, dataset.tracks)
    if dataset.split is not None:
        return dataset.split
    shipped = Path(str(resources.files("streamtag.models").joinpath(f"split-{dataset.name}.json")))
    if shipped.is_file():
        return load_split(shipped, dataset.tracks)
    if args.subset != "all":
        raise StreamtagError(f"{args.data_dir}: no split known for this dataset; pass --split FILE or --subset all")
    return None


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from streamtag.train.data import load_dataset
    from streamtag.train.evaluate import evaluate_model, save_confusion_png

    console = Console()
    phases = progress.Phases("evaluate", quiet=args.quiet)
    with phases.phase(f"loading {args.model} and {args.data_dir}"):
        engine = Engine(args.model, provider=args.provider)
        dataset = load_dataset(args.data_dir)
        split = _split_for(args, dataset)
    tracks = dataset.tracks if args.subset == "all" else split[args.subset]
    if not tracks:
        raise StreamtagError(f"the {args.subset} split of {args.data_dir} is empty")
    tagger = Tagger(engine, hop_samples=engine.info.hop_samples_for(args.hop))
    with phases.phase(f"tagging {len(tracks)} {args.subset} tracks", total=len(tracks)) as advance:
        evaluation = evaluate_model(tagger, tracks, on_track=lambda _t: advance())

    png = args.out / f"confusion-{dataset.name}-{args.subset}.png"
    with phases.phase(f"writing the confusion matrix and metrics to {args.out}"):
        args.out.mkdir(parents=True, exist_ok=True)
        save_confusion_png(evaluation, png, title=f"{engine.info.name} on {dataset.name} {args.subset} ({evaluation.n_tracks} clips)")
        (args.out / f"metrics-{dataset.name}-{args.subset}.json").write_text(json.dumps(evaluation.to_dict(), indent=1) + "\n")

    console.print(f"[bold]{engine.info.name} {engine.info.version}[/] on {dataset.name} {args.subset}: {evaluation.n_tracks} clips")
    console.print(f"clip accuracy {evaluation.accuracy:.1%}   macro F1 {evaluation.macro_f1:.3f}")
    matrix = Table(title="confusion (rows true, columns predicted)")
    matrix.add_column("")
    for label in evaluation.labels:
        matrix.add_column(label, justify="right")
    for label, row in zip(evaluation.labels, evaluation.confusion, strict=True):
        matrix.add_row(label, *(str(v) for v in row))
    console.print(matrix)
    if evaluation.taste_spearman is not None:
        console.print(f"crowd taste: Spearman {evaluation.taste_spearman:+.3f} with like rate, "
                      f"AUC {evaluation.taste_auc:.3f} for 'liked by more listeners than the median'")
    if evaluation.mood_correlations:
        moods = "  ".join(f"{k} {v:+.2f}" for k, v in evaluation.mood_correlations.items())
        mean = sum(evaluation.mood_correlations.values()) / len(evaluation.mood_correlations)
        console.print(f"mood correlations (Pearson, clip level): mean {mean:+.3f}\n  {moods}")
    console.print(f"confusion matrix: {png}")
    return 0
