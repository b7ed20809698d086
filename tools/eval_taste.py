"""How fast does a personal taste profile learn? AUC and log loss against the number of labelled tracks, on Emotify.

Three listeners are simulated from Emotify's own annotations:
  * crowd-like: likes the tracks liked by more listeners than the median (like_rate > median);
  * calm-tender: likes calm, tender music and dislikes powerful, tense music (calmness + tenderness -
    power - tension emotion rates above their median), a taste the crowd head was not trained on;
  * power-tense: the reverse of calm-tender. On Emotify the crowd's likes lean calm and tender, so this one
    is the listener the crowd head gets wrong.

For each listener and each n in --sizes, --draws random sets of n labelled tracks are drawn from the train split
(at least one liked and one disliked), a profile is fitted on their window embeddings exactly as `streamtag
taste learn` does (make_label + fit_model of streamtag.taste.fit), and its AUC is measured on the test split, which
shares no artist with the train split. Next to it: the same profile without the crowd prior (plain L2
logistic regression), with a crowd read-out fitted on all train windows, and with the exact crowd logit as
offset (two priors the runtime cannot have today); the model's crowd taste head (no labels at all); and a
genre-only predictor (each genre's share of liked tracks among the same n labels, and, as a reference line,
among the whole train split). With --sweep, each variant's l2 (and, where it has a crowd prior, its
l2_agreement) is first chosen on the valid split; on a fold, which has none, on a quarter of the fold's
training artists, with labels drawn from the other three quarters (a nested choice: the held-out artists
play no part in it).

    python tools/eval_taste.py [--model models/streamtag.onnx] [--draws 200] [--sweep] [--out artifacts/taste]
    python tools/eval_taste.py --fold runs/cv/fold-K --model FOLD_MODEL.onnx [--sweep]   # on a cross-validation fold

A model trained on every Emotify track (2.0.0 and later) has heard the split's test tracks, so score its
recipe instead on the folds of tools/crossval.py, each with its fold's network exported (docs/taste.md).

Embeddings are cached in cache/taste/ under the model file's hash.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streamtag.engine import Engine  # noqa: E402
from streamtag.metrics import roc_auc  # noqa: E402
from streamtag.tag_files import embed_file  # noqa: E402
from streamtag.taste.fit import (  # noqa: E402
    FitConfig,
    TasteModel,
    fit_logistic,
    fit_model,
    fit_ridge,
    logit,
    make_label,
    sigmoid,
)
from streamtag.train.data import GEMS_MOODS, artist_folds, load_emotify, load_split  # noqa: E402

log = logging.getLogger("eval_taste")

SIZES = (2, 5, 10, 20, 50)
MOOD = {name: i for i, name in enumerate(GEMS_MOODS)}


def model_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def weights_key(engine: Engine) -> str:
    """What the cached embeddings depend on: the model's outputs on a fixed probe window, and its hop.

    The same weights exported twice (another version string, say) share the cache; any other weights don't.
    """
    probe = np.random.default_rng(0).standard_normal((1, engine.info.window_samples)).astype(np.float32) * 0.1
    out = engine.run(probe)
    digest = hashlib.sha256(np.round(out.embedding.astype(np.float64), 4).tobytes())
    digest.update(np.round(np.float64(out.taste[0]), 4).tobytes())
    digest.update(f"{engine.info.window_samples}/{engine.info.hop_samples}/{engine.info.sample_rate}".encode())
    return digest.hexdigest()[:16]


def embed_tracks(engine: Engine, tracks, cache_dir: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per track: window embeddings (n, D) and crowd probabilities (n,); cached per model file."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache = cache_dir / f"emotify-{weights_key(engine)}.npz"
    ids = [t.track_id for t in tracks]
    if cache.is_file():
        data = np.load(cache, allow_pickle=False)
        if list(data["ids"]) == ids:
            bounds = data["bounds"]
            return [(data["emb"][a:b], data["crowd"][a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    out = []
    start = time.perf_counter()
    for i, track in enumerate(tracks):
        out.append(embed_file(engine, track.path))
        if (i + 1) % 50 == 0:
            log.info("embedded %d/%d tracks (%.0f s)", i + 1, len(tracks), time.perf_counter() - start)
    bounds = np.cumsum([0] + [len(e) for e, _ in out])
    np.savez(cache, ids=np.array(ids), bounds=bounds, emb=np.concatenate([e for e, _ in out]),
             crowd=np.concatenate([c for _, c in out]))
    return out


def listeners(tracks) -> dict[str, np.ndarray]:
    like_rate = np.array([t.like_rate for t in tracks])
    moods = np.stack([t.mood_rates for t in tracks])
    calm = moods[:, MOOD["calmness"]] + moods[:, MOOD["tenderness"]] - moods[:, MOOD["power"]] - moods[:, MOOD["tension"]]
    return {
        "crowd-like (like_rate > median)": like_rate > np.median(like_rate),
        "calm-tender (calm+tender-power-tension > median)": calm > np.median(calm),
        "power-tense (the reverse: calm+tender-power-tension < median)": calm < np.median(calm),
    }


def draw(rng: np.random.Generator, y: np.ndarray, n: int) -> np.ndarray:
    """n random indices with at least one of each class."""
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    first = [rng.choice(pos), rng.choice(neg)]
    rest = rng.permutation(np.setdiff1d(np.arange(len(y)), first))[: n - 2]
    return np.concatenate([first, rest]).astype(int)


def genre_scores(train_genres: list[str], train_y: np.ndarray, test_genres: list[str]) -> np.ndarray:
    """Share of liked tracks per genre (Laplace-smoothed towards the overall share)."""
    overall = float(train_y.mean())
    table = {}
    for g in set(test_genres):
        mask = np.array([tg == g for tg in train_genres])
        table[g] = (train_y[mask].sum() + overall) / (mask.sum() + 1.0)
    return np.array([table[g] for g in test_genres])


# The profile variants compared: the runtime one, and three others that say what its prior is worth.
DISTILLED = "personal (crowd prior, as shipped)"
NO_PRIOR = "personal (no prior)"
READOUT = "personal (crowd read-out from all train windows)"
OFFSET = "personal (exact crowd logit as offset)"
GENRE = "genre-only (same labels)"
VARIANTS = (DISTILLED, NO_PRIOR, READOUT, OFFSET)
L2_GRID = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
AGREEMENT_GRID = (0.1, 0.3, 1.0, 3.0, 10.0)
INNER_PARTS = 4  # a fold's sweep holds out one artist-disjoint quarter of its training tracks


def candidates(variant: str, base: FitConfig) -> list[FitConfig]:
    """The settings --sweep tries for ``variant``: only the variants whose prior's weight is fitted have an
    agreement penalty to choose. The shipped profile keeps its crowd prior: the draws always hold a like and a
    dislike, but a listener's first labels may be likes only, and without a prior one like makes every sound
    liked (docs/taste.md)."""
    if variant in (DISTILLED, READOUT):
        return [replace(base, l2=l2, l2_agreement=a) for l2 in L2_GRID for a in AGREEMENT_GRID]
    return [replace(base, l2=l2) for l2 in L2_GRID]


def describe(config: FitConfig, variant: str = DISTILLED) -> str:
    if variant in (NO_PRIOR, OFFSET):
        return f"l2={config.l2:g}"
    return f"l2={config.l2:g} l2_agreement={config.l2_agreement}"


def inner_split(tracks: list, seed: int) -> tuple[list, list]:
    """A fold's training tracks cut by artist into labels to draw from and tracks to score the sweep on."""
    held = {t.track_id for t in artist_folds(tracks, k=INNER_PARTS, seed=seed)[0]}
    return [t for t in tracks if t.track_id not in held], [t for t in tracks if t.track_id in held]


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    """Mean cross-entropy of the labels ``y`` under the probabilities ``p``: low only when the profile ranks
    well and says how sure it is; AUC alone cannot see a profile that says 100 % for every guess."""
    p = np.clip(p.astype(np.float64), 1e-6, 1 - 1e-6)
    return float(-np.mean(np.where(y, np.log(p), np.log1p(-p))))


def fit_with_crowd_offset(labels, config: FitConfig) -> tuple[np.ndarray, float]:
    """The alternative prior: the model's own crowd logit per window as a fixed offset (needs the crowd taste
    at scoring time, which the Tagger's taste_scorer does not receive today)."""
    x = np.concatenate([lab.embeddings for lab in labels]).astype(np.float64)
    z = np.concatenate([lab.crowd_logits for lab in labels]).astype(np.float64)
    y = np.concatenate([np.full(lab.n_windows, float(lab.liked)) for lab in labels])
    weights = np.concatenate([np.full(lab.n_windows, 1.0 / lab.n_windows) for lab in labels])
    return fit_logistic(x, y, weights, z, l2=config.l2, l2_bias=config.l2_bias)


def crowd_readout(pool, config: FitConfig) -> TasteModel:
    """A crowd read-out fitted on every window of the train split (what a model could ship with)."""
    x = np.concatenate([r["windows"][0] for r in pool]).astype(np.float16).astype(np.float64)
    z = np.concatenate([logit(r["windows"][1]) for r in pool])
    w, b = fit_ridge(x, z, np.ones(len(z)), l2=config.anchor_l2)
    return TasteModel(w=w, b=b)


def evaluate(pool, pool_y, test, test_y, variants: dict[str, FitConfig], sizes, draws: int, seed: int,
             readout: TasteModel | None = None):
    """AUC and log loss per method and size: {method: {n: array over draws}} each, plus fit times (ms) of
    DISTILLED. A track's probability is the sigmoid of its mean window logit (the genre-only one, its share)."""
    rng = np.random.default_rng(seed)
    results = {name: {n: [] for n in sizes} for name in [*variants, GENRE]}
    losses = {name: {n: [] for n in sizes} for name in [*variants, GENRE]}
    fit_ms = {n: [] for n in sizes}
    test_emb = [e.astype(np.float16).astype(np.float64) for e, _ in (t["windows"] for t in test)]
    test_crowd_logit = [logit(c) for _, c in (t["windows"] for t in test)]
    test_genres = [t["genre"] for t in test]
    track_labels = [
        make_label("like" if y else "dislike", kind="file", source=r["id"], embeddings=r["windows"][0],
                   crowd_probs=r["windows"][1])
        for r, y in zip(pool, pool_y, strict=True)
    ]
    for n in sizes:
        for _ in range(draws):
            idx = draw(rng, pool_y, n)
            labels = [track_labels[i] for i in idx]
            for name, config in variants.items():
                if name == OFFSET:
                    w, b = fit_with_crowd_offset(labels, config)
                    scores = np.array([(z + e @ w + b).mean() for e, z in zip(test_emb, test_crowd_logit, strict=True)])
                else:
                    start = time.perf_counter()
                    if name == NO_PRIOR:
                        model = fit_model(labels, replace(config, crowd_prior=False))
                    elif name == READOUT:
                        model = fit_model(labels, config, prior=readout)
                    else:
                        model = fit_model(labels, config)
                    if name == DISTILLED:
                        fit_ms[n].append((time.perf_counter() - start) * 1000.0)
                    scores = np.array([model.logits(e).mean() for e in test_emb])
                results[name][n].append(roc_auc(scores, test_y))
                losses[name][n].append(log_loss(sigmoid(scores), test_y))
            g = genre_scores([pool[i]["genre"] for i in idx], pool_y[idx], test_genres)
            results[GENRE][n].append(roc_auc(g, test_y))
            losses[GENRE][n].append(log_loss(g, test_y))

    def arrays(table):
        return {k: {n: np.array(v) for n, v in d.items()} for k, d in table.items()}

    return arrays(results), arrays(losses), fit_ms


def fold_split(fold: Path, tracks: list) -> dict[str, list]:
    """A fold of tools/crossval.py as a split: its training tracks, no valid ones, and its held-out tracks."""
    path = Path(fold) / "predictions.json"
    try:
        predictions = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"{path}: not a finished fold of tools/crossval.py ({exc}); run the fold first") from None
    by_id = {t.track_id: t for t in tracks}
    missing = [i for i in predictions["train_track_ids"] + predictions["track_ids"] if i not in by_id]
    if missing:
        raise SystemExit(f"{path}: {len(missing)} of its tracks are not in the data (e.g. {missing[0]}); "
                         "give the dataset the fold was trained on with --data")
    return {"train": [by_id[i] for i in predictions["train_track_ids"]], "valid": [],
            "test": [by_id[i] for i in predictions["track_ids"]]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "emotify")
    parser.add_argument("--model", type=Path, default=REPO / "models" / "streamtag.onnx")
    parser.add_argument("--split", type=Path, default=REPO / "models" / "split-emotify.json")
    parser.add_argument("--fold", type=Path, metavar="RUN/fold-K",
                        help="instead of --split, a fold of tools/crossval.py: labels from its training tracks, "
                             "AUC on its held-out artists; --model is that fold's network, exported")
    parser.add_argument("--cache", type=Path, default=REPO / "cache" / "taste")
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "taste")
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sweep", action="store_true",
                        help="choose each variant's l2 and l2_agreement on the valid split first (on a fold: on a "
                             "quarter of its training artists); else the shipped FitConfig")
    parser.add_argument("--sweep-draws", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    engine = Engine(args.model, provider="cpu", threads=args.threads)
    tracks = load_emotify(args.data)
    split = fold_split(args.fold, tracks) if args.fold else load_split(args.split, tracks)
    windows = embed_tracks(engine, tracks, args.cache)
    by_id = {t.track_id: (t, w) for t, w in zip(tracks, windows, strict=True)}
    ys = listeners(tracks)
    y_by_id = {name: dict(zip([t.track_id for t in tracks], y, strict=True)) for name, y in ys.items()}

    def rows(chosen):
        return [{"id": t.track_id, "genre": t.genre, "windows": by_id[t.track_id][1]} for t in chosen]

    pool, test = rows(split["train"]), rows(split["test"])
    if args.fold:  # a fold has no valid split: the sweep scores a quarter of its training artists instead
        sweep_pool, valid = (rows(part) for part in inner_split(split["train"], args.seed))
    else:
        sweep_pool, valid = pool, rows(split["valid"])
    base = FitConfig()
    readout = crowd_readout(pool, base)
    variants = {name: base for name in VARIANTS}
    report = {"model": {"name": engine.info.name, "version": engine.info.version,
                        "digest": model_digest(args.model)},
              "split": {k: len(v) for k, v in split.items()}, "draws": args.draws, "shipped_fit": base.to_dict(),
              "listeners": {}}

    if args.sweep:
        # Each variant gets the settings with the lowest mean log loss over all listeners and sizes (a prior
        # helps the crowd-like listener and hurts the reverse one). Log loss, not AUC: AUC ranks, so it cannot
        # see how sure a profile is, and it drifts to the weakest l2, whose profile says 0 % or 100 % from two
        # labels; the display shows that probability. l2_bias and anchor_l2 stay at the shipped values. The
        # draws differ from the test's (seed + 1), and so do the tracks scored.
        print(f"sweep on {len(valid)} tracks, labels from {len(sweep_pool)}: mean log loss (AUC) over "
              f"{args.sweep_draws} draws at n = " + ", ".join(map(str, args.sizes)))
        sweep_readout = crowd_readout(sweep_pool, base)
        scores = {name: {} for name in VARIANTS}  # {variant: {config: ([log losses], [AUCs])}}
        tried = {v: candidates(v, base) for v in VARIANTS}
        for cfg in dict.fromkeys(c for v in VARIANTS for c in tried[v]):  # each once, in order
            here = {v: cfg for v in VARIANTS if cfg in tried[v]}
            for lname in ys:
                py = np.array([y_by_id[lname][r["id"]] for r in sweep_pool])
                vy = np.array([y_by_id[lname][r["id"]] for r in valid])
                auc, loss, _ = evaluate(sweep_pool, py, valid, vy, here, args.sizes, args.sweep_draws, args.seed + 1,
                                        readout=sweep_readout)
                for v in here:
                    losses = [float(np.nanmean(loss[v][n])) for n in args.sizes]
                    aucs = [float(np.nanmean(auc[v][n])) for n in args.sizes]
                    entry = scores[v].setdefault(cfg, ([], []))
                    entry[0].extend(losses)
                    entry[1].extend(aucs)
                    print(f"  {describe(cfg, v):26} {lname[:11]:11} {v[:44]:44} "
                          + " ".join(f"{a:.3f} ({b:.3f})" for a, b in zip(losses, aucs, strict=True)), flush=True)
        variants = {v: min(scores[v], key=lambda cfg, v=v: np.mean(scores[v][cfg][0])) for v in VARIANTS}
        for v, cfg in variants.items():
            mean_loss, mean_auc = (np.mean(m) for m in scores[v][cfg])
            print(f"  best for {v}: {describe(cfg, v)} (mean log loss {mean_loss:.3f}, AUC {mean_auc:.3f})")
        report["sweep"] = {v: {describe(cfg, v): {"log_loss": float(np.mean(m[0])), "auc": float(np.mean(m[1]))}
                               for cfg, m in scores[v].items()} for v in VARIANTS}
        report["chosen"] = {v: cfg.to_dict() for v, cfg in variants.items()}
        report["sweep_split"] = {"labels_from": len(sweep_pool), "scored": len(valid)}
        if variants[DISTILLED] != base:
            print(f"  note: the shipped FitConfig is {describe(base)}; the sweep prefers {describe(variants[DISTILLED])}")

    for lname in ys:
        py = np.array([y_by_id[lname][r["id"]] for r in pool])
        ty = np.array([y_by_id[lname][r["id"]] for r in test])
        res, loss, fit_ms = evaluate(pool, py, test, ty, variants, args.sizes, args.draws, args.seed,
                                     readout=readout)
        crowd = np.array([r["windows"][1].mean() for r in test])
        crowd_auc, crowd_loss = roc_auc(crowd, ty), log_loss(crowd, ty)
        genre_full = roc_auc(genre_scores([r["genre"] for r in pool], py, [r["genre"] for r in test]), ty)
        report["listeners"][lname] = {
            "test_positives": int(ty.sum()), "test_tracks": len(ty),
            "crowd_head_auc": crowd_auc, "crowd_head_log_loss": crowd_loss, "genre_only_full_train_auc": genre_full,
            "methods": {m: {str(n): {"mean": float(np.nanmean(v)), "std": float(np.nanstd(v)),
                                     "p10": float(np.nanpercentile(v, 10)), "p90": float(np.nanpercentile(v, 90)),
                                     "log_loss": float(np.nanmean(loss[m][n]))}
                            for n, v in d.items()} for m, d in res.items()},
            "fit_ms_median": {str(n): float(np.median(v)) for n, v in fit_ms.items()},
        }
        print(f"\n{lname}: test {len(ty)} tracks ({int(ty.sum())} liked); AUC mean ± std over {args.draws} draws")
        print(f"  {'labelled tracks':50}" + "".join(f"{n:>14}" for n in args.sizes))
        for m, d in res.items():
            print(f"  {m:50}" + "".join(f"{np.nanmean(d[n]):>8.3f} ±{np.nanstd(d[n]):.2f}" for n in args.sizes))
        print(f"  {'crowd head (no labels)':50}{crowd_auc:>8.3f}")
        print(f"  {'genre-only (all train)':50}{genre_full:>8.3f}")
        print(f"  log loss, mean over draws (the crowd head's: {crowd_loss:.3f})")
        for m, d in loss.items():
            print(f"  {m:50}" + "".join(f"{np.nanmean(d[n]):>14.3f}" for n in args.sizes))
        print("  fit time, median ms: " + ", ".join(f"n={n}: {np.median(v):.1f}" for n, v in fit_ms.items()))
        report["listeners"][lname]["_curves"] = res

    args.out.mkdir(parents=True, exist_ok=True)
    plot(report, args.sizes, args.out / "taste_auc.png")
    for entry in report["listeners"].values():
        entry.pop("_curves")
    (args.out / "taste_eval.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out / 'taste_auc.png'} and {args.out / 'taste_eval.json'}")
    return 0


def plot(report: dict, sizes, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["listeners"])
    fig, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 4.5), sharey=True)
    colors = {DISTILLED: "C0", NO_PRIOR: "C2", READOUT: "C5", OFFSET: "C4", GENRE: "C1"}
    for ax, name in zip(np.atleast_1d(axes), names, strict=True):
        entry = report["listeners"][name]
        for method, curves in entry["_curves"].items():
            mean = [np.nanmean(curves[n]) for n in sizes]
            lo = [np.nanpercentile(curves[n], 25) for n in sizes]
            hi = [np.nanpercentile(curves[n], 75) for n in sizes]
            main_curve = method in (DISTILLED, GENRE)
            ax.plot(sizes, mean, "o-" if main_curve else ".--", color=colors[method], label=method,
                    lw=2 if main_curve else 1)
            if main_curve:
                ax.fill_between(sizes, lo, hi, color=colors[method], alpha=0.15)
        ax.axhline(entry["crowd_head_auc"], color="C3", ls="--", label="crowd head (no labels)")
        ax.axhline(entry["genre_only_full_train_auc"], color="C1", ls=":", label="genre-only (whole train split)")
        ax.axhline(0.5, color="grey", lw=0.8)
        ax.set_xscale("log")
        ax.set_xticks(list(sizes), [str(n) for n in sizes])
        ax.minorticks_off()
        ax.set_xlabel("labelled tracks")
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("test AUC (artist-disjoint): mean, 25-75% band")
    np.atleast_1d(axes)[0].legend(fontsize=8, loc="lower right")
    model = report["model"]
    fig.suptitle(f"Personal taste profile on Emotify, model {model['name']} {model['version']}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
