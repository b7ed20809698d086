"""`streamtag taste ...` on real files: learn, rank new files, show, forget, export/import, reset, rebuild."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from streamtag.errors import ProfileError
from streamtag.taste.fit import make_label
from streamtag.taste.profile import ModelIdentity
from streamtag.taste.store import PROFILE_FILENAME, load_active_profile, load_profile, read_profile, save_profile


def test_learn_a_folder_through_the_real_engine(cli, taste_home, engine, data_dir, tmp_path):
    """No cache: one real file per side, one of them found inside a folder."""
    folder = tmp_path / "liked"
    folder.mkdir()
    (folder / "a.ogg").symlink_to(data_dir / "emotify" / "audio" / "classical" / "1.ogg")
    (folder / "notes.txt").write_text("not audio")
    assert cli("learn", "--like", str(folder),
               "--dislike", str(data_dir / "emotify" / "audio" / "electronic" / "1.ogg")) == 0
    profile = load_profile(ModelIdentity.from_info(engine.info))
    assert [lab.value for lab in profile.labels] == ["like", "dislike"]
    assert profile.labels[0].source == str((folder / "a.ogg").resolve())
    assert profile.labels[0].n_windows >= 60 // 3  # a one-minute track, 3 s windows


def test_show_forget_export_import_reset(cli, taste_home, genre_files, fast_embed, capsys, tmp_path):
    learn = genre_files["learn"]
    cli("learn", "--like", *map(str, learn["classical"][:3]), "--dislike", *map(str, learn["electronic"][:3]))
    capsys.readouterr()
    assert cli("show", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["likes"], shown["dislikes"], shown["matches_current_model"]) == (3, 3, True)
    assert 0.0 <= shown["cv_auc"] <= 1.0  # 3 + 3 labels: enough for a cross-validated AUC

    forgotten = str(learn["classical"][0])
    assert cli("forget", forgotten) == 0
    profile = read_profile(taste_home / PROFILE_FILENAME)
    assert profile.n_likes == 2 and str(Path(forgotten).resolve()) not in [lab.source for lab in profile.labels]
    assert cli("forget", "/not/labelled.ogg") == 1

    exported = tmp_path / "mine.json"
    assert cli("export", str(exported)) == 0
    assert cli("reset") == 0
    assert not (taste_home / PROFILE_FILENAME).exists()
    assert len(list(taste_home.glob(PROFILE_FILENAME + ".reset-*"))) == 1  # reset keeps a backup
    assert cli("import", str(exported)) == 0
    assert read_profile(taste_home / PROFILE_FILENAME).n_likes == 2
    assert cli("import", str(exported)) == 0  # importing over a profile backs it up first
    assert len(list(taste_home.glob(PROFILE_FILENAME + ".before-import-*"))) == 1


def test_rebuild_re_embeds_files_for_the_current_model(cli, taste_home, engine, genre_files, fast_embed,
                                                       embedded, capsys):
    old = ModelIdentity(engine.info.name, "an-older-version", engine.info.embedding_dim)
    rng = np.random.default_rng(3)
    labels = [
        make_label("like", kind="file", source=str(genre_files["learn"]["classical"][0].resolve()),
                   embeddings=rng.standard_normal((4, old.embedding_dim)), crowd_probs=np.full(4, 0.5)),
        make_label("dislike", kind="file", source="/gone/away.ogg",
                   embeddings=rng.standard_normal((4, old.embedding_dim)), crowd_probs=np.full(4, 0.5)),
        make_label("dislike", kind="live", source="2026-11-26T12:00:00+00:00",
                   embeddings=rng.standard_normal((4, old.embedding_dim)), crowd_probs=np.full(4, 0.5)),
    ]
    from streamtag.taste.profile import Profile

    save_profile(Profile(old, labels))
    with pytest.raises(ProfileError, match="taste rebuild"):
        load_active_profile(engine.info)
    assert cli("rebuild") == 0
    out = capsys.readouterr().out
    assert "rebuilt 1 of 3" in out and "/gone/away.ogg" in out and "live label" in out
    profile = load_active_profile(engine.info)
    assert [lab.source for lab in profile.labels] == [labels[0].source]
    expected, _ = embedded[Path(labels[0].source)]
    np.testing.assert_allclose(profile.labels[0].embeddings, expected.astype(np.float16), atol=0)


def test_learn_refuses_a_file_given_both_ways(cli, taste_home, genre_files, capsys):
    f = str(genre_files["learn"]["classical"][0])
    assert cli("learn", "--like", f, "--dislike", f) == 2
    assert "both as --like and --dislike" in capsys.readouterr().err


def test_show_after_the_last_label_is_forgotten(cli, taste_home, genre_files, fast_embed, capsys):
    """It used to end in a TypeError: an empty label list made a float array that `~` refuses."""
    liked = str(genre_files["learn"]["classical"][0])
    assert cli("learn", "--like", liked) == 0
    assert cli("forget", liked) == 0
    capsys.readouterr()
    assert cli("show", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["likes"], shown["dislikes"], shown["cv_auc"]) == (0, 0, None)
