"""The feature-vector baseline the CRNN must beat: standardised time-averaged features into an RBF SVM.

    python tools/baseline.py gtzan     # GTZAN's feature table, fault-filtered split (443/197/290 clips)
    python tools/baseline.py emotify   # features from Emotify's audio, the CRNN's artist-disjoint split

C and gamma are chosen on the valid split only; test is scored once. With --refit the chosen SVM is fitted
on train and valid together, the protocol of `streamtag train --final` (the shipped CRNN was trained on train
only). With --crossval K it is also scored on the artist folds of tools/crossval.py. For Emotify the features
of each whole track (60 s) are computed by streamtag.train.features and cached in cache/baseline/ (about
2-3 s a track on a busy 2-core machine the first time), and a ridge regressor on the same features predicts
the crowd like rate (Spearman on test). Add --json for machine-readable output.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streamtag.train import baseline  # noqa: E402
from streamtag.train.data import load_emotify, load_split  # noqa: E402


def confusion_table(result: baseline.ClassifierResult) -> Table:
    # Labels cut to 5 letters keep ten columns within an 80-column terminal.
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 0, 0, 1), pad_edge=False)
    table.add_column("", no_wrap=True, min_width=max(len(label) for label in result.labels))
    for label in result.labels:
        table.add_column(label[:5], justify="right", no_wrap=True, min_width=5)
    for label, row in zip(result.labels, result.confusion, strict=True):
        table.add_row(label, *(str(int(v)) for v in row))
    return table


def summary(name: str, result: baseline.ClassifierResult, taste: baseline.TasteResult | None) -> dict:
    out = {
        "dataset": name,
        "split_sizes": result.split_sizes,
        "svm": {"C": result.c, "gamma": result.gamma},
        "valid_accuracy": result.valid_accuracy,
        "test_accuracy": result.test_accuracy,
        "test_macro_f1": result.test_macro_f1,
        "labels": list(result.labels),
        "confusion": result.confusion.tolist(),
    }
    if taste is not None:
        out["taste"] = {
            "ridge_alpha": taste.alpha,
            "valid_spearman": taste.valid_spearman,
            "test_spearman": taste.test_spearman,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=("gtzan", "emotify"))
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data", help="the shared data folder")
    parser.add_argument("--split", type=Path, default=REPO / "models" / "split-emotify.json")
    parser.add_argument("--cache", type=Path, default=REPO / "cache" / "baseline")
    parser.add_argument("--refit", action="store_true",
                        help="after choosing on valid, fit on train and valid together (as `streamtag train --final`)")
    parser.add_argument("--crossval", type=int, metavar="K",
                        help="emotify: also score the chosen SVM by K-fold artist cross-validation over train+valid "
                             "(the folds of tools/crossval.py)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.crossval is not None and (args.dataset != "emotify" or args.crossval < 2):
        parser.error("--crossval K takes K >= 2 and works on emotify (GTZAN's table has its own fixed split)")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)

    taste = None
    if args.dataset == "gtzan":
        result = baseline.evaluate_gtzan(args.data, refit=args.refit)
    else:
        tracks = load_emotify(args.data / "emotify")
        split = load_split(args.split, tracks)
        result, taste = baseline.evaluate_tracks(split, baseline.FeatureCache(args.cache), refit=args.refit)
    out = summary(args.dataset, result, taste)
    if args.crossval:
        out["crossval"] = baseline.crossval_tracks(split, baseline.FeatureCache(args.cache), c=result.c,
                                                   gamma=result.gamma, k=args.crossval)
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    console = Console()
    sizes = ", ".join(f"{k} {v}" for k, v in result.split_sizes.items())
    console.print(f"[bold]{args.dataset}[/bold] feature baseline: RBF SVM, C={result.c:g}, gamma={result.gamma}")
    console.print(f"tracks: {sizes}")
    console.print(f"valid accuracy {result.valid_accuracy:.3f} (selection)")
    console.print(f"test accuracy  [bold]{result.test_accuracy:.3f}[/bold]   macro F1 {result.test_macro_f1:.3f}")
    if taste is not None:
        console.print(
            f"taste (ridge, alpha={taste.alpha:g}): Spearman with like_rate valid {taste.valid_spearman:.3f}, "
            f"test [bold]{taste.test_spearman:.3f}[/bold]"
        )
    console.print("test confusion matrix (rows: true genre, columns: predicted)")
    console.print(confusion_table(result))
    if "crossval" in out:
        cv = out["crossval"]
        console.print(f"{cv['folds']}-fold artist cross-validation over {cv['n_tracks']} train+valid tracks: "
                      f"accuracy [bold]{cv['accuracy']:.3f}[/bold], macro F1 {cv['macro_f1']:.3f}, "
                      f"confusion {cv['confusion']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
