"""The recordings the content head learns from: music, speech and other sounds from free Debian packages.

Game data packages hold real recordings of every kind: soundtracks, voice acting (in English and in 0 A.D.'s
ancient languages), animals, weather, water, weapons, machines. ``RULES`` sorts their files by path into the
three classes of ``core/content.py`` (the first rule that matches wins; a class of None leaves the file out:
musical stings, sung voice packs, interface blips, silent placeholders). Each package is one group for
cross-validation, so a fold never hears the package it is scored on.

The files of one (group, class) are played one after another into a single stream, as a listener would hear a
run of them, and cut into the model's windows at its hop: a short effect is not a window of zeros, which
would teach "padding means not music".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamtag.audio import AUDIO_SUFFIXES, load_audio
from streamtag.core.content import CONTENT_CLASSES
from streamtag.errors import AudioFileError

MUSIC, SPEECH, OTHER = CONTENT_CLASSES

# The packages, for tools/reproduce_model.sh (apt-get download) and the model card; licences in models/README.md.
# Warzone 2100's music is not here: it is among the unlabelled music the model was distilled on, given to
# tools/fit_content_head.py with the rest of it.
PACKAGES = ("0ad-data", "warzone2100-data", "openarena-data", "hedgewars-data", "freedroidrpg-data",
            "wesnoth-1.16-data", "wesnoth-1.16-music")

# (package, pattern searched in the path inside the package, class). Paths were read against each game's own
# sound tables (Warzone's audio.cfg names the phrase of every voice file; Freedroid's title scripts call their
# narration voice_acting).
RULES: tuple[tuple[str, str, str | None], ...] = (
    ("*", r"(^|/)silence\.[a-z0-9]+$", None),
    ("0ad-data", r"/audio/music/", MUSIC),
    ("0ad-data", r"/audio/voice/", SPEECH),
    ("0ad-data", r"/audio/(interface|groups)/", None),
    ("0ad-data", r"/audio/", OTHER),
    ("warzone2100-data", r"/audio/(nexus|taunts/[^/]+)/[^/]*(laugh|haha)", OTHER),
    ("warzone2100-data", r"/audio/(memressp|countdown|extra|coltive|nexus|proxmessages|taunts|trnsppil|tutorial|"
                         r"vtoltalk)/", SPEECH),
    ("warzone2100-data", r"/audio/(sfx|multi|radclick)/", OTHER),
    ("openarena-data", r"/sound/voices/[^/]+/(heh|ugh|bzzz)", OTHER),
    ("openarena-data", r"/sound/(voices|player/announcer)/", SPEECH),
    ("openarena-data", r"/sound/(feedback|items|weapons|movers|world|misc|player)/", OTHER),
    ("hedgewars-data", r"/Data/Music/", MUSIC),
    ("hedgewars-data", r"/Sounds/voices/Singer/", None),
    ("hedgewars-data", r"/Sounds/voices/[^/]+/(Laugh|Ooff|Ow|Jump|Poison|Hmm|Uh-oh|Ouch)", OTHER),
    ("hedgewars-data", r"/Sounds/voices/", SPEECH),
    ("hedgewars-data", r"/Sounds/([1-9][A-G][^/]*|ride_of_the_valkyries[^/]*|custom[^/]*)$", None),
    ("hedgewars-data", r"/Sounds/", OTHER),
    ("freedroidrpg-data", r"/sound/music/", MUSIC),
    ("freedroidrpg-data", r"/titles/[^/]+\.ogg$", SPEECH),
    ("freedroidrpg-data", r"/effects/(tux_ingame_comments/|ThouArtDefeated)", SPEECH),
    ("freedroidrpg-data", r"/effects/Takeover_Game_Won", None),
    ("freedroidrpg-data", r"/sound/effects/", OTHER),
    ("wesnoth-1.16-data", r"/sounds/(horn-signals/|fanfare|ambient/wardrums)", None),
    ("wesnoth-1.16-data", r"/sounds/", OTHER),
    ("wesnoth-1.16-music", r"/music/", MUSIC),
)
_COMPILED = tuple((package, re.compile(pattern), cls) for package, pattern, cls in RULES)


def classify(package: str, rel: str) -> str | None:
    """The class of the file at ``rel`` (its path inside ``package``), or None to leave it out."""
    for rule_package, pattern, cls in _COMPILED:
        if rule_package in ("*", package) and pattern.search(rel):
            return cls
    return None


def game_of(group: str) -> str:
    """The group a fold holds out: a game's data and music packages together, whatever their version suffix
    (``warzone2100-music_4.3.3-3_all`` and ``warzone2100-data`` are one game)."""
    package = group.split("_")[0]
    return package.removesuffix("-music") + "-data" if package.endswith("-music") else package


def group_name(folder: Path) -> str:
    """A music folder's group: its name, or its parent's for a dataset's ``audio`` folder (Emotify, GTZAN)."""
    return folder.parent.name if folder.name == "audio" else folder.name


def collect(root: Path) -> dict[tuple[str, str], list[Path]]:
    """``root/<package>/...`` (archives already unpacked) -> {(package, class): files}, files in path order."""
    found: dict[tuple[str, str], list[Path]] = {}
    for package in PACKAGES:
        folder = root / package
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()):
            cls = classify(package, "/" + path.relative_to(folder).as_posix())
            if cls is not None:
                found.setdefault((package, cls), []).append(path)
    return found


@dataclass(frozen=True)
class Stream:
    group: str
    cls: str
    audio: np.ndarray  # mono, at the model's rate
    files: int


def streams(sources: dict[tuple[str, str], list[Path]], *, sample_rate: int, cap_s: dict[str, float],
            music_file_s: float, seed: int = 0) -> Iterator[Stream]:
    """One stream per (group, class): its files one after another with 0.1 s between them, at most ``cap_s[class]``.

    Music files give their first ``music_file_s`` each, in a seeded random order, so that a group's cap spans
    many tracks (Emotify's folders are sorted by genre). Undecodable files are skipped."""
    gap = np.zeros(int(0.1 * sample_rate), np.float32)
    for (group, cls), files in sorted(sources.items()):
        cap = int(cap_s[cls] * sample_rate)
        if cls == MUSIC:
            files = [files[i] for i in np.random.default_rng(seed).permutation(len(files))]
        parts, total, used = [], 0, 0
        for path in files:
            try:
                audio = load_audio(path, sample_rate=sample_rate)
            except AudioFileError:
                continue
            if cls == MUSIC:
                audio = audio[: int(music_file_s * sample_rate)]
            parts += [audio, gap]
            total += len(audio) + len(gap)
            used += 1
            if total >= cap:
                break
        if parts:
            yield Stream(group, cls, np.concatenate(parts)[:cap], used)
