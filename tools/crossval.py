"""Artist-grouped k-fold cross-validation of the training recipe.

    python tools/crossval.py ../shared/data/emotify --fold 0 &   # one fold per process, on their own cores
    python tools/crossval.py ../shared/data/emotify --fold 1 &
    ...
    python tools/crossval.py ../shared/data/emotify --report      # pool the folds written so far
    python tools/crossval.py ../shared/data/emotify --report --out runs/a runs/b   # two members as one ensemble

With ``--split none`` the folds cover every labelled track (how the shipped model's recipe is chosen before
it is trained on all of them with ``streamtag train --all``); by default the test split is left out.
``--teacher`` and ``--unlabelled`` train each fold as ``streamtag train`` does with them: the unlabelled audio
is in every fold's training part, and the held-out fold's audio is never seen.

A clip accuracy measured on 47 test tracks has a standard error of about 7 points, and one on the 48 valid
tracks as much, so neither can tell a recipe that reaches 75 % from one that reaches 65 %. Here every
train+valid track (268 for Emotify) is scored by a model that never heard its artist: each fold trains the
recipe of `streamtag train --final` (fixed epochs, no selection, the last epoch) on the other folds. The test
split is never read. A fold that has finished is not trained again (an interrupted one resumes).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from platformdirs import user_cache_dir

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streamtag.errors import StreamtagError  # noqa: E402
from streamtag.train.data import artist_folds, load_dataset, load_split  # noqa: E402
from streamtag.train.options import add_recipe_options  # noqa: E402


def train_fold(args, folds: list, labels: tuple[str, ...]) -> None:
    import torch

    from streamtag.train.export import load_checkpoint
    from streamtag.train.loop import train
    from streamtag.train.material import Material, unlabelled_tracks
    from streamtag.train.options import architecture_of, train_config_of
    from streamtag.train.validation import clip_predictions

    torch.set_num_threads(1)  # one fold per core; see `streamtag train --threads`
    held_out = folds[args.fold]
    fitted = [t for i, fold in enumerate(folds) if i != args.fold for t in fold]
    material = Material.open(labels, cache_dir=args.cache, teacher_dir=args.teacher,
                             distil_features=args.feature_weight > 0, **architecture_of(args))
    model_config = material.model_config
    unlabelled = unlabelled_tracks(args.unlabelled)
    config = train_config_of(args, patience=args.epochs)
    out = args.out[0] / f"fold-{args.fold}"
    print(f"fold {args.fold}: training on {len(fitted)} tracks and {len(unlabelled)} unlabelled files, "
          f"scoring {len(held_out)}", flush=True)
    train_set = material.training_set(fitted + unlabelled)
    train(model_config, config, train_set, None, out, resume=True)
    if args.probe_heads:
        from streamtag.train.probe_heads import refit_checkpoint

        print(f"fold {args.fold}: probe heads {refit_checkpoint(out / 'best.pt', train_set, [t.artist for t in fitted + unlabelled])}")
    model, _ = load_checkpoint(out / "best.pt")  # its own config: the probe heads may read other features
    window_frames = model_config.frontend.n_frames(model_config.window_samples)
    held_out_set = material.training_set(held_out)
    clips = clip_predictions(model, held_out_set.logmels, window_frames=window_frames, hop_frames=config.eval_hop_frames)
    (out / "predictions.json").write_text(json.dumps({
        "fold": args.fold, "folds": args.folds, "epochs": args.epochs, "average_last": args.average_last,
        "probe_heads": args.probe_heads, "seed": args.seed, "train_seed": args.train_seed, "split": str(args.split), "labels": list(labels), "mood_names": list(model_config.mood_names),
        "tag_names": list(model_config.tag_names), "track_ids": [t.track_id for t in held_out],
        "train_track_ids": [t.track_id for t in fitted],
        **{name: values.tolist() for name, values in clips.items()},
    }) + "\n")


def _run_folds(out: Path) -> list[dict]:
    folds = [json.loads(p.read_text()) for p in sorted(out.glob("fold-*/predictions.json"))]
    if not folds:
        raise SystemExit(f"{out}: no fold has finished yet")
    settings = {(f["folds"], f["epochs"], f["average_last"], f.get("probe_heads"), f["seed"], f.get("split")) for f in folds}
    ids = [i for f in folds for i in f["track_ids"]]
    if len(settings) > 1 or len(ids) != len(set(ids)):
        raise SystemExit(f"{out}: its folds come from runs with different settings {sorted(settings)}; "
                         "pool one run's folds (another --out per run)")
    return folds


def ensemble_folds(outs: list[Path]) -> list[dict]:
    """The folds of one run, or of several runs on the same folds (an ensemble's members, e.g. other
    --train-seed) with their clip scores averaged, as an exported ensemble averages its members' outputs."""
    runs = [_run_folds(out) for out in outs]
    for other, out in zip(runs[1:], outs[1:], strict=True):
        if [(f["fold"], f["track_ids"]) for f in other] != [(f["fold"], f["track_ids"]) for f in runs[0]]:
            raise SystemExit(f"{out} and {outs[0]} did not score the same folds: an ensemble needs the same --folds "
                             "and --seed, and every fold finished in both")
    folds = []
    for members in zip(*runs, strict=True):
        fold = dict(members[0])
        for key in ("genre", "taste", "moods", "tags"):
            if key in fold:
                fold[key] = np.mean([np.array(m[key]) for m in members], axis=0).tolist()
        folds.append(fold)
    return folds


def report(outs: list[Path], tracks_by_id: dict, *, cache: Path, teacher: Path | None) -> dict:
    """Pool the folds (of one run, or averaged over several: ``ensemble_folds``) and score every contender on
    them (streamtag.train.cv_report)."""
    from streamtag import metrics
    from streamtag.train import cv_report
    from streamtag.train.baseline import FeatureCache
    from streamtag.train.evaluate import score_clips

    folds = ensemble_folds(outs)
    ids = [i for f in folds for i in f["track_ids"]]
    labels, mood_names = tuple(folds[0]["labels"]), tuple(folds[0]["mood_names"])
    tracks = [tracks_by_id[i] for i in ids]
    fold = np.concatenate([np.full(len(f["track_ids"]), f["fold"]) for f in folds])
    pooled = {key: np.concatenate([np.array(f[key]) for f in folds]) for key in ("genre", "taste", "moods")}
    genre = np.array([labels.index(t.genre) for t in tracks])
    artists = np.array([t.artist for t in tracks])
    crnn_right = pooled["genre"].argmax(1) == genre
    scores = score_clips(labels, tracks, pooled["genre"], pooled["taste"], pooled["moods"], mood_names)
    per_fold = [float(crnn_right[fold == k].mean()) for k in np.unique(fold)]
    result = {
        "runs": [str(out) for out in outs],
        "n_tracks": len(tracks), "n_artists": len(set(artists)), "folds": [f["fold"] for f in folds],
        "crnn": {**scores.to_dict(), "fold_accuracy": per_fold, "fold_accuracy_spread": [min(per_fold), max(per_fold)]},
    }
    crowd = all(t.like_rate is not None and t.mood_rates is not None for t in tracks)  # Emotify's annotations
    if crowd:
        like = np.array([t.like_rate for t in tracks])
        mood_truth = np.stack([t.mood_rates for t in tracks])
        result["crnn"]["mood_mean_r"] = cv_report.mean_pearson(pooled["moods"], mood_truth)
        rival = cv_report.genre_mean_taste(pooled["genre"], genre, like, fold)
        result["taste_genre_mean_rival"] = {"spearman": metrics.spearman(rival, like)}
        result["crnn_taste_minus_rival"] = {
            "spearman": scores.taste_spearman - result["taste_genre_mean_rival"]["spearman"],
            "interval_95": cv_report.bootstrap_interval(
                lambda i: metrics.spearman(pooled["taste"][i], like[i]) - metrics.spearman(rival[i], like[i]), artists),
        }
    if len(set(artists)) < cv_report.MIN_ARTISTS_PER_FOLD * len(folds):
        result["contenders_skipped"] = (f"{len(set(artists))} artists: too few for the contenders' inner "
                                        f"cross-validation ({cv_report.MIN_ARTISTS_PER_FOLD} per fold)")
        return result
    features = FeatureCache(cache)
    x_svm = np.stack([features.get(t.path) for t in tracks])
    svm = cv_report.svm_genre(x_svm, genre, artists, fold)
    result["feature_svm"] = {"accuracy": float(np.mean(svm == genre))}
    result["crnn_minus_svm"] = {
        "accuracy": float(crnn_right.mean() - np.mean(svm == genre)),
        "interval_95": cv_report.bootstrap_interval(lambda i: crnn_right[i].mean() - (svm[i] == genre[i]).mean(), artists),
    }
    if teacher is not None and crowd:
        from streamtag.train.config import ModelConfig
        from streamtag.train.distill import TeacherCache

        student = ModelConfig(labels=labels)
        cache_t = TeacherCache(teacher, frontend=student.frontend, window_samples=student.window_samples)
        x_t = np.stack([cache_t.get(t.path).features.mean(axis=0) for t in tracks])
        probe = cv_report.probe_genre(x_t, genre, artists, fold)
        result["teacher_probe"] = {
            "teacher": cache_t.teacher, "accuracy": float(np.mean(probe == genre)),
            "mood_mean_r": cv_report.mean_pearson(cv_report.ridge_rates(x_t, mood_truth, artists, fold), mood_truth),
            "taste_spearman": metrics.spearman(cv_report.ridge_rates(x_t, like, artists, fold), like),
        }
        result["crnn_minus_teacher_probe"] = {
            "accuracy": float(crnn_right.mean() - np.mean(probe == genre)),
            "interval_95": cv_report.bootstrap_interval(lambda i: crnn_right[i].mean() - (probe[i] == genre[i]).mean(), artists),
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--split", default=str(REPO / "models" / "split-emotify.json"),
                        help="its test part is left out (default: the shipped Emotify split); 'none': fold every track")
    add_recipe_options(parser)
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--fold", type=int, help="train and score this fold (0-based)")
    parser.add_argument("--report", action="store_true", help="pool the folds that have finished")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, nargs="+", default=[REPO / "runs" / "crossval"],
                        help="the run's folder; with --report, several runs on the same folds are scored as one "
                             "ensemble (their scores averaged)")
    parser.add_argument("--cache", type=Path, default=Path(user_cache_dir("streamtag")),
                        help="log-mel cache folder (the one `streamtag train` fills)")
    args = parser.parse_args(argv)
    if not args.report and (args.fold is None or not 0 <= args.fold < args.folds):
        parser.error(f"pass --fold 0..{args.folds - 1} or --report")
    if args.folds < 2 or not 0 <= args.average_last <= args.epochs:
        parser.error("--folds must be 2 or more and --average-last between 0 and --epochs")
    if not args.report and len(args.out) > 1:
        parser.error("a fold trains into one --out folder; several are for --report")
    dataset = load_dataset(args.data_dir)
    if args.report:
        result = report(args.out, {t.track_id: t for t in dataset.tracks}, cache=args.cache, teacher=args.teacher)
        (args.out[0] / ("report.json" if len(args.out) == 1 else "ensemble-report.json")).write_text(
            json.dumps(result, indent=1) + "\n")
        print(json.dumps(result, indent=1))
        return 0
    test_ids = set() if args.split == "none" else {t.track_id for t in load_split(Path(args.split), dataset.tracks)["test"]}
    tracks = [t for t in dataset.tracks if t.track_id not in test_ids]
    try:
        train_fold(args, artist_folds(tracks, k=args.folds, seed=args.seed), dataset.labels)
    except StreamtagError as exc:  # e.g. a fold folder left by a run with other settings
        raise SystemExit(f"crossval.py: {exc}") from exc
    return 0


if __name__ == "__main__":
    sys.exit(main())
