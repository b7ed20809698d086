"""`streamtag taste ...` on real files: learn, rank new files, show, forget, export/import, reset, rebuild."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from streamtag.taste.fit import make_label
from streamtag.taste.profile import ModelIdentity
from streamtag.taste.store import (
    LEGACY_FILENAME,
    clip_path,
    elsewhere_notice,
    load_active_profile,
    load_profile,
    read_profile,
    save_clip,
    save_profile,
)


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


def test_show_forget_export_import_reset(cli, taste_home, own_path, genre_files, fast_embed, capsys, tmp_path):
    learn = genre_files["learn"]
    cli("learn", "--like", *map(str, learn["classical"][:3]), "--dislike", *map(str, learn["electronic"][:3]))
    capsys.readouterr()
    assert cli("show", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["likes"], shown["dislikes"], shown["matches_current_model"]) == (3, 3, True)
    assert 0.0 <= shown["cv_auc"] <= 1.0  # 3 + 3 labels: enough for a cross-validated AUC

    forgotten = str(learn["classical"][0])
    assert cli("forget", forgotten) == 0
    profile = read_profile(own_path)
    assert profile.n_likes == 2 and str(Path(forgotten).resolve()) not in [lab.source for lab in profile.labels]
    assert cli("forget", "/not/labelled.ogg") == 1

    exported = tmp_path / "mine.json"
    assert cli("export", str(exported)) == 0
    assert cli("reset") == 0
    assert not own_path.exists()
    assert len(list(own_path.parent.glob(own_path.name + ".reset-*"))) == 1  # reset keeps a backup
    assert cli("import", str(exported)) == 0
    assert read_profile(own_path).n_likes == 2
    assert cli("import", str(exported)) == 0  # importing over a profile backs it up first
    assert len(list(own_path.parent.glob(own_path.name + ".before-import-*"))) == 1


def test_rebuild_carries_file_and_live_labels_to_this_model(cli, taste_home, own_path, engine, genre_files,
                                                           fast_embed, embedded, data_dir, capsys):
    """Labels made for another model are re-embedded by this one: files from where they are, live labels from
    the clip kept with them; what cannot be re-embedded is named, and the other model's profile is unchanged."""
    from streamtag.audio import load_audio
    from streamtag.tag_files import embed_file

    old = ModelIdentity(engine.info.name, engine.info.version, engine.info.embedding_dim, "0f" * 32)
    rng = np.random.default_rng(3)
    audio = load_audio(data_dir / "gtzan" / "samples" / "classical.00000.flac", sample_rate=engine.info.sample_rate)
    clip = save_clip(audio[: 8 * engine.info.sample_rate], engine.info.sample_rate)

    def label(value, kind, source, clip=None):
        return make_label(value, kind=kind, source=source, embeddings=rng.standard_normal((4, old.embedding_dim)),
                          crowd_probs=np.full(4, 0.5), clip=clip)

    labels = [label("like", "file", str(genre_files["learn"]["classical"][0].resolve())),
              label("dislike", "file", "/gone/away.ogg"),
              label("like", "live", "2026-11-26T12:00:00+00:00", clip=clip),
              label("dislike", "live", "2026-11-20T12:00:00+00:00")]  # from before live clips were kept
    from streamtag.taste.profile import Profile

    other_path = save_profile(Profile(old, labels))
    before = other_path.read_bytes()
    assert load_active_profile(engine.info) is None  # this model has no profile yet: the crowd's taste
    assert "4 labels" in elsewhere_notice(ModelIdentity.from_info(engine.info))
    assert cli("rebuild") == 0
    out = capsys.readouterr().out
    assert "carried 2 of 4" in out and "/gone/away.ogg" in out and "its audio was not kept" in out
    profile = load_active_profile(engine.info)
    assert [(lab.kind, lab.source, lab.clip) for lab in profile.labels] == [
        ("file", labels[0].source, None), ("live", labels[2].source, clip)]
    expected, _ = embedded[Path(labels[0].source)]
    np.testing.assert_allclose(profile.labels[0].embeddings, expected.astype(np.float16), atol=0)
    from_clip, _ = embed_file(engine, clip_path(clip))
    np.testing.assert_allclose(profile.labels[1].embeddings, from_clip, atol=2e-3)  # another session: f16 rounding
    assert other_path.read_bytes() == before and own_path.exists()
    assert cli("rebuild", "--from", str(other_path)) == 0  # again: nothing new to carry, nothing doubled
    assert "carried 0 of 4" in capsys.readouterr().out and len(load_active_profile(engine.info).labels) == 2


def test_an_old_single_profile_moves_to_the_model_it_names(taste_home, own_path, engine, genre_files, embedded):
    """streamtag before per-model profiles kept one taste-profile.json (format 1, no weights digest): the model
    of that name and version adopts it once, live labels and all; another model is only told about it."""
    from streamtag.taste.profile import Profile

    emb, crowd = embedded[genre_files["learn"]["classical"][0].resolve()]
    named = ModelIdentity(engine.info.name, engine.info.version, engine.info.embedding_dim)
    legacy = Profile(named, [make_label("like", kind="live", source="2026-11-01T10:00:00+00:00", embeddings=emb,
                                        crowd_probs=crowd)]).to_dict()
    legacy["format"] = 1
    del legacy["model"]["weights_sha256"]
    taste_home.mkdir()
    (taste_home / LEGACY_FILENAME).write_text(json.dumps(legacy))

    class Other:
        name, version, embedding_dim, weights_sha256 = engine.info.name, "9.9.9", engine.info.embedding_dim, "1" * 64

    assert load_active_profile(Other()) is None and (taste_home / LEGACY_FILENAME).exists()
    profile = load_active_profile(engine.info)
    assert [lab.kind for lab in profile.labels] == ["live"] and profile.identity.weights_sha256 == engine.info.weights_sha256
    assert not (taste_home / LEGACY_FILENAME).exists() and len(list(taste_home.glob(LEGACY_FILENAME + ".moved-*"))) == 1
    assert json.loads(own_path.read_text())["format"] == 2


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


def test_tag_with_a_model_that_has_no_profile_shows_the_crowd_and_says_where_the_labels_are(
        taste_home, engine, model_path, data_dir, capsys):
    """It used to exit 2 with a profile made for another model, without naming --no-taste."""
    from streamtag.cli import main
    from streamtag.taste.profile import Profile

    rng = np.random.default_rng(5)
    other = ModelIdentity(engine.info.name, "0.1.0", engine.info.embedding_dim, "7" * 64)
    save_profile(Profile(other, [make_label("like", kind="file", source="/music/a.ogg", embeddings=rng.random((3, 64)),
                                            crowd_probs=np.full(3, 0.5))]))
    clip = str(data_dir / "gtzan" / "samples" / "jazz.00000.flac")
    assert main(["tag", clip, "--json", "--model", str(model_path), "--provider", "cpu"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out.splitlines()[0])["taste_source"] == "crowd"
    assert "was made for model streamtag-crnn 0.1.0 (weights 777777777777" in err and "taste rebuild" in err
    assert main(["tag", clip, "--json", "--no-taste", "--model", str(model_path), "--provider", "cpu"]) == 0
    assert "taste rebuild" not in capsys.readouterr().err
