"""A profile learned from real liked and disliked files ranks new files (other artists) of each kind in order."""

from __future__ import annotations

from pathlib import Path

from streamtag.taste.store import load_active_profile


def test_profile_from_liked_and_disliked_files_ranks_new_files(cli, taste_home, engine, genre_files,
                                                                fast_embed, embedded):
    learn = genre_files["learn"]
    code = cli("learn", "--like", *map(str, learn["classical"]), "--dislike", *map(str, learn["electronic"]))
    assert code == 0
    profile = load_active_profile(engine.info)
    assert profile is not None and (profile.n_likes, profile.n_dislikes) == (len(learn["classical"]), len(learn["electronic"]))

    def track_score(path: Path) -> float:
        embeddings, _ = embedded[path.resolve()]
        return float(profile.score(embeddings).mean())

    liked = [track_score(p) for p in genre_files["rank"]["classical"]]
    disliked = [track_score(p) for p in genre_files["rank"]["electronic"]]
    assert min(liked) > max(disliked), (liked, disliked)
    # and the other way round: a listener with the opposite taste
    cli("reset")
    cli("learn", "--like", *map(str, learn["electronic"]), "--dislike", *map(str, learn["classical"]))
    profile = load_active_profile(engine.info)
    liked = [track_score(p) for p in genre_files["rank"]["electronic"]]
    disliked = [track_score(p) for p in genre_files["rank"]["classical"]]
    assert min(liked) > max(disliked), (liked, disliked)
