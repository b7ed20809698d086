"""Fixtures for the taste tests: a CPU engine, real Emotify files of two contrasting genres, a private home."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from streamtag.cli import main
from streamtag.commands import taste as taste_command
from streamtag.engine import Engine

N_LEARN = 4  # tracks per genre to learn from
N_RANK = 3  # tracks per genre to rank afterwards, by other artists


@pytest.fixture
def taste_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """STREAMTAG_HOME pointing at a fresh folder: profiles live in taste_home / "profiles", one per model."""
    home = tmp_path / "home"
    monkeypatch.setenv("STREAMTAG_HOME", str(home))
    return home


@pytest.fixture
def own_path(taste_home: Path, engine: Engine) -> Path:
    """Where the test model's profile lives in the private home."""
    from streamtag.taste.profile import ModelIdentity
    from streamtag.taste.store import profile_path

    return profile_path(ModelIdentity.from_info(engine.info))


@pytest.fixture(scope="session")
def engine(model_path: Path) -> Engine:
    return Engine(model_path, provider="cpu", threads=1)


@pytest.fixture(scope="session")
def genre_files(data_dir: Path) -> dict[str, dict[str, list[Path]]]:
    """Emotify classical and electronic tracks: {"learn"|"rank": {genre: [paths]}}, each by distinct artists,
    and no artist of a "rank" track among the "learn" tracks (so the test is not artist recognition)."""
    root = data_dir / "emotify"
    out: dict[str, dict[str, list[Path]]] = {"learn": {}, "rank": {}}
    with (root / "tracks.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for genre in ("classical", "electronic"):
        seen: set[str] = set()
        picked: list[Path] = []
        for row in rows:
            if row["genre"] == genre and row["artist"] not in seen:
                seen.add(row["artist"])
                picked.append(root / row["file"])
            if len(picked) == N_LEARN + N_RANK:
                break
        out["learn"][genre] = picked[:N_LEARN]
        out["rank"][genre] = picked[N_LEARN:]
    return out


@pytest.fixture(scope="session")
def embedded(engine: Engine, genre_files) -> dict[Path, tuple[np.ndarray, np.ndarray]]:
    """Window embeddings and crowd probabilities of every file in genre_files, computed once."""
    from streamtag.tag_files import embed_file

    files = [p for part in genre_files.values() for paths in part.values() for p in paths]
    return {p.resolve(): embed_file(engine, p) for p in files}


@pytest.fixture
def fast_embed(monkeypatch, embedded):
    """embed_file served from the session's cache of the same files (the real engine computed it)."""
    real = taste_command.embed_file

    def cached(engine, path):
        key = Path(path).resolve()
        return embedded[key] if key in embedded else real(engine, path)

    monkeypatch.setattr(taste_command, "embed_file", cached)


@pytest.fixture
def cli(model_path: Path):
    """Run ``streamtag taste ARGS...`` in-process with the test model on the CPU; returns the exit code."""

    def run(*args: str) -> int:
        return main(["taste", *args, "--model", str(model_path), "--provider", "cpu"])

    return run
