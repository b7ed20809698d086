"""The content head's training material: the path rules, and files played into one stream (real audio)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streamtag.audio import load_audio
from streamtag.train.content_set import MUSIC, OTHER, SPEECH, classify, game_of, group_name, streams


@pytest.mark.parametrize("package, rel, expected", [
    ("warzone2100-data", "/usr/share/games/warzone2100/base.wz.d/audio/memressp/research/pcv351.ogg", SPEECH),
    ("warzone2100-data", "/usr/share/games/warzone2100/base.wz.d/audio/taunts/taunt1/haha1.ogg", OTHER),
    ("warzone2100-data", "/usr/share/games/warzone2100/base.wz.d/audio/sfx/weapons/cannon.ogg", OTHER),
    ("warzone2100-data", "/usr/share/games/warzone2100/base.wz.d/sequenceaudio/res_a.ogg", None),  # unsure: out
    ("hedgewars-data", "/usr/share/games/hedgewars/Data/Sounds/voices/Classic/Hello.ogg", SPEECH),
    ("hedgewars-data", "/usr/share/games/hedgewars/Data/Sounds/voices/Classic/Ow1.ogg", OTHER),
    ("hedgewars-data", "/usr/share/games/hedgewars/Data/Sounds/voices/Singer/Hello.ogg", None),  # sung
    ("hedgewars-data", "/usr/share/games/hedgewars/Data/Sounds/3C.ogg", None),  # a piano note
    ("hedgewars-data", "/usr/share/games/hedgewars/Data/Music/City.ogg", MUSIC),
    ("0ad-data", "/usr/share/games/0ad/mods/public/public.zip.d/audio/voice/greek/civ/civ_male_attack.ogg", SPEECH),
    ("0ad-data", "/usr/share/games/0ad/mods/public/public.zip.d/audio/actor/fauna/animal/chicken_10.ogg", OTHER),
    ("0ad-data", "/usr/share/games/0ad/mods/public/public.zip.d/audio/interface/alarm/alarm.ogg", None),
    ("openarena-data", "/usr/share/games/openarena/baseoa/pak0.pk3.d/sound/world/silence.wav", None),
    ("wesnoth-1.16-data", "/usr/share/games/wesnoth/1.16/data/core/sounds/horn-signals/horn-1.ogg", None),
    ("wesnoth-1.16-data", "/usr/share/games/wesnoth/1.16/data/core/sounds/wolf-hit-1.ogg", OTHER),
    ("some-other-package", "/usr/share/sounds/x.ogg", None),
])
def test_path_rules(package, rel, expected):
    assert classify(package, rel) == expected


def test_a_games_packages_are_held_out_together():
    assert game_of("warzone2100-music_4.3.3-3_all") == game_of("warzone2100-data") == "warzone2100-data"
    assert game_of("wesnoth-1.16-music") == "wesnoth-1.16-data" and game_of("emotify") == "emotify"
    assert group_name(Path("/data/emotify/audio")) == "emotify" and group_name(Path("/x/pk3")) == "pk3"


def test_files_play_one_after_another_into_one_stream(data_dir):
    rate = 22050
    speech = [data_dir / "cc-audio" / f"{name}.ogg" for name in ("198-209-0000", "3436-172162-0000")]
    lengths = [len(load_audio(path, sample_rate=rate)) for path in speech]
    (stream,) = streams({("libri", SPEECH): speech}, sample_rate=rate, cap_s={SPEECH: 60.0}, music_file_s=15.0)
    gap = int(0.1 * rate)
    assert (stream.group, stream.cls, stream.files) == ("libri", SPEECH, 2)
    assert len(stream.audio) == lengths[0] + lengths[1] + 2 * gap
    assert not np.any(stream.audio[lengths[0] : lengths[0] + gap])  # the 0.1 s between two files
    (capped,) = streams({("libri", SPEECH): speech}, sample_rate=rate, cap_s={SPEECH: 5.0}, music_file_s=15.0)
    assert (len(capped.audio), capped.files) == (5 * rate, 1)
    music = [data_dir / "gtzan" / "samples" / f"{g}.00000.flac" for g in ("jazz", "metal", "pop")]
    (mixed,) = streams({("g", MUSIC): music}, sample_rate=rate, cap_s={MUSIC: 60.0}, music_file_s=4.0)
    assert (len(mixed.audio), mixed.files) == (3 * (4 * rate + gap), 3)  # 4 s of each track, in a seeded order
