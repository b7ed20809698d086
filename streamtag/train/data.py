"""Dataset layouts (Emotify, GTZAN, folder-per-label), artist-disjoint splits, and the log-mel cache.

Splits are always by artist: with tracks of one artist on both sides, a test score measures artist (album,
production) recognition rather than genre. A split is saved as JSON next to the model it trained so that
evaluation and the baseline use exactly the same test set.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from streamtag.audio import AUDIO_SUFFIXES, audio_files_in, load_audio
from streamtag.errors import StreamtagError

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
GEMS_MOODS = (
    "amazement", "solemnity", "tenderness", "nostalgia", "calmness", "power", "joyful_activation", "tension",
    "sadness",
)
DEFAULT_FRACTIONS = (0.70, 0.15, 0.15)


@dataclass(frozen=True)
class Track:
    path: Path
    genre: str | None  # None: unlabelled audio, used only for distillation
    artist: str
    track_id: str  # stable key within its dataset: the audio path relative to the dataset root
    like_rate: float | None = None
    mood_rates: np.ndarray | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Dataset:
    name: str  # "emotify", "gtzan" or "folders"
    root: Path
    tracks: list[Track]
    labels: tuple[str, ...]
    split: dict[str, list[Track]] | None = None  # a split the layout itself defines (GTZAN's filtered lists)


def load_emotify(root: Path) -> list[Track]:
    """Emotify: ``audio/<genre>/<n>.ogg`` with one row per track in ``tracks.csv``."""
    root = Path(root)
    table = root / "tracks.csv"
    if not table.is_file():
        raise StreamtagError(f"{root}: no tracks.csv; is this the Emotify folder?")
    tracks = []
    with table.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            tracks.append(
                Track(
                    path=root / row["file"],
                    genre=row["genre"],
                    artist=row["artist"].strip() or f"unknown:{row['file']}",
                    track_id=row["file"],
                    like_rate=float(row["like_rate"]),
                    mood_rates=np.array([float(row[f"{m}_rate"]) for m in GEMS_MOODS], dtype=np.float32),
                )
            )
    return tracks


def _gtzan_artists(index_path: Path) -> dict[str, str]:
    """Sturm's GTZANindex.txt: ``blues.00000.wav ::: artist ::: title``; unknown artists are left out."""
    artists = {}
    if index_path.is_file():
        for line in index_path.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = [p.strip() for p in line.split(":::")]
            if len(parts) >= 2 and parts[1]:
                artists[Path(parts[0]).stem] = parts[1]
    return artists


def _find_gtzan_splits(root: Path) -> Path | None:
    for candidate in (root / "splits", root.parent / "splits"):
        if (candidate / "test_filtered.txt").is_file():
            return candidate
    return None


def load_gtzan(root: Path, *, split_dir: Path | None = None) -> Dataset:
    """GTZAN's standard layout ``genres/<genre>/<genre>.NNNNN.{au,wav}`` (or ``<genre>/...`` directly).

    With the fault-filtered split lists (``splits/{train,valid,test}_filtered.txt`` in or beside the root, or
    ``split_dir``), the dataset carries that artist-conditional split and keeps only the clips it names.
    """
    root = Path(root)
    audio_root = root / "genres" if (root / "genres").is_dir() else root
    artists = _gtzan_artists(root / "GTZANindex.txt")
    by_stem: dict[str, Track] = {}
    for genre_dir in sorted(p for p in audio_root.iterdir() if p.is_dir()):
        for path in sorted(genre_dir.iterdir()):
            if path.suffix.lower() in AUDIO_SUFFIXES:
                by_stem[path.stem] = Track(
                    path=path,
                    genre=genre_dir.name,
                    artist=artists.get(path.stem, f"unknown:{path.stem}"),
                    track_id=f"{genre_dir.name}/{path.name}",
                )
    if not by_stem:
        raise StreamtagError(f"{root}: no audio found in genres/<genre>/ folders")
    split_dir = split_dir or _find_gtzan_splits(root)
    split = None
    if split_dir is not None:
        split = {}
        for name in SPLITS:
            stems = [Path(line.strip()).stem for line in (split_dir / f"{name}_filtered.txt").read_text().splitlines() if line.strip()]
            missing = [s for s in stems if s not in by_stem]
            if missing:
                log.warning("%d clips of the %s split are not in %s (e.g. %s)", len(missing), name, root, missing[0])
            split[name] = [by_stem[s] for s in stems if s in by_stem]
    labels = tuple(sorted({t.genre for t in by_stem.values()}))
    return Dataset(name="gtzan", root=root, tracks=list(by_stem.values()), labels=labels, split=split)


def load_folders(root: Path) -> Dataset:
    """Any folder-per-label collection: ``<label>/<file>``; artists from an optional ``artists.csv``
    (columns ``file,artist``, file relative to the root). Without it every file counts as its own artist,
    which is only honest when no artist has two files."""
    root = Path(root)
    artists: dict[str, str] = {}
    if (root / "artists.csv").is_file():
        with (root / "artists.csv").open(newline="", encoding="utf-8") as handle:
            artists = {row["file"]: row["artist"] for row in csv.DictReader(handle)}
    else:
        log.warning("%s has no artists.csv: splitting by file, which overstates accuracy if artists repeat", root)
    tracks = []
    for label_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in audio_files_in(label_dir):
            key = path.relative_to(root).as_posix()
            tracks.append(Track(path=path, genre=label_dir.name, artist=artists.get(key, f"file:{key}"), track_id=key))
    if not tracks:
        raise StreamtagError(f"{root}: no audio files in <label>/ folders")
    return Dataset(name="folders", root=root, tracks=tracks, labels=tuple(sorted({t.genre for t in tracks})))


def load_dataset(root: Path) -> Dataset:
    """Recognise the layout of ``root``: Emotify (tracks.csv), GTZAN (genres/ or its split lists), or folders."""
    root = Path(root)
    if not root.is_dir():
        raise StreamtagError(f"{root}: no such data folder")
    if (root / "tracks.csv").is_file():
        tracks = load_emotify(root)
        return Dataset(name="emotify", root=root, tracks=tracks, labels=tuple(sorted({t.genre for t in tracks})))
    if (root / "genres").is_dir() or _find_gtzan_splits(root) is not None:
        return load_gtzan(root)
    return load_folders(root)


def split_by_artist(
    tracks: list[Track], *, seed: int, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS
) -> dict[str, list[Track]]:
    """Assign whole artists to train/valid/test, keeping each genre's share close to ``fractions``."""
    return dict(zip(SPLITS, _assign_artists(tracks, seed=seed, fractions=fractions), strict=True))


def artist_folds(tracks: list[Track], *, k: int, seed: int) -> list[list[Track]]:
    """``k`` artist-disjoint folds of about equal size per genre, for cross-validation."""
    return _assign_artists(tracks, seed=seed, fractions=(1 / k,) * k)


def _assign_artists(tracks: list[Track], *, seed: int, fractions: tuple[float, ...]) -> list[list[Track]]:
    """Artists are visited in a seeded random order (largest first within ties broken by the shuffle) and each
    goes, with all its tracks, to the part furthest below its target count for the artist's main genre."""
    rng = np.random.default_rng(seed)
    by_artist: dict[str, list[Track]] = defaultdict(list)
    for track in tracks:
        by_artist[track.artist].append(track)
    names = sorted(by_artist)
    order = rng.permutation(len(names))
    artists = sorted((names[i] for i in order), key=lambda a: -len(by_artist[a]))  # stable: shuffle breaks ties
    genre_totals: dict[str, int] = defaultdict(int)
    for track in tracks:
        genre_totals[track.genre] += 1
    counts: dict[tuple[int, str], int] = defaultdict(int)
    parts: list[list[Track]] = [[] for _ in fractions]
    for artist in artists:
        own = by_artist[artist]
        genres = [t.genre for t in own]
        main = max(sorted(set(genres)), key=genres.count)  # sorted: set order changes with the hash seed
        deficits = [fraction * genre_totals[main] - counts[(i, main)] for i, fraction in enumerate(fractions)]
        chosen = int(np.argmax(deficits))
        parts[chosen].extend(own)
        for track in own:
            counts[(chosen, track.genre)] += 1
    return parts


def save_split(path: Path, split: dict[str, list[Track]], *, dataset: str, seed: int | None) -> None:
    payload = {
        "dataset": dataset,
        "seed": seed,
        "method": "artist-disjoint, stratified by each artist's main genre",
        **{name: sorted(t.track_id for t in split[name]) for name in SPLITS},
    }
    Path(path).write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")


def load_split(path: Path, tracks: list[Track]) -> dict[str, list[Track]]:
    """Read a split saved by ``save_split`` and map its ids back onto ``tracks``."""
    payload = json.loads(Path(path).read_text(encoding="utf-8"))
    by_id = {t.track_id: t for t in tracks}
    missing = [i for name in SPLITS for i in payload[name] if i not in by_id]
    if missing:
        raise StreamtagError(f"{path}: {len(missing)} tracks of the split are not in the data (e.g. {missing[0]})")
    return {name: [by_id[i] for i in payload[name]] for name in SPLITS}


class LogMelCache:
    """Whole-track log-mels computed once by the model's own front end and kept as .npy files.

    Keyed by the front end's configuration and the track's path, size and mtime, so a changed file or
    front end never serves stale features.
    """

    def __init__(self, directory: Path, frontend) -> None:
        self.frontend = frontend.eval()
        config = frontend.config
        tag = hashlib.sha1(repr(config).encode()).hexdigest()[:10]
        self.directory = Path(directory) / f"logmel-{tag}"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.sample_rate = config.sample_rate

    def _key(self, track: Track) -> Path:
        stat = track.path.stat()
        raw = f"{track.path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        return self.directory / (hashlib.sha1(raw.encode()).hexdigest()[:16] + ".npy")

    def get(self, track: Track, *, min_samples: int) -> np.ndarray:
        """Log-mel (frames, n_mels) of the whole track; audio shorter than ``min_samples`` is zero-padded."""
        import torch

        key = self._key(track)
        if key.is_file():
            return np.load(key)
        audio = load_audio(track.path, sample_rate=self.sample_rate)
        if audio.size < min_samples:
            audio = np.pad(audio, (0, min_samples - audio.size))
        with torch.no_grad():
            logmel = self.frontend(torch.from_numpy(audio)[None])[0].numpy()
        tmp = key.with_suffix(f".{os.getpid()}.tmp.npy")  # two training runs may fill one cache at once
        np.save(tmp, logmel)
        tmp.replace(key)
        return logmel
