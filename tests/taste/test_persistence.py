"""The profile file: round trip, atomic replacement under SIGKILL, corrupt and mismatched files set aside."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from streamtag.errors import ProfileError
from streamtag.taste.fit import make_label
from streamtag.taste.profile import ModelIdentity, Profile
from streamtag.taste.store import (
    WRITE_PAUSE_ENV,
    elsewhere_notice,
    load_active_profile,
    load_profile,
    profile_path,
    read_profile,
    save_profile,
)

REPO = Path(__file__).resolve().parents[2]
D = 8
IDENTITY = ModelIdentity("test-model", "1.0", D, "ab" * 32)


class Info:  # the fields of contract.ModelInfo that a profile is tied to
    name, version, embedding_dim, weights_sha256 = (IDENTITY.name, IDENTITY.version, IDENTITY.embedding_dim,
                                                   IDENTITY.weights_sha256)


def own() -> Path:
    """Where IDENTITY's profile lives (in the test's private home)."""
    return profile_path(IDENTITY)


def beside(path: Path, pattern: str) -> list[Path]:
    return list(path.parent.glob(pattern.replace("NAME", path.name)))


def small_profile(rng, n: int = 2) -> Profile:
    labels = [
        make_label("like" if i % 2 == 0 else "dislike", kind="file", source=f"/music/{i}.ogg",
                   embeddings=rng.standard_normal((5, D)), crowd_probs=rng.uniform(0.2, 0.8, 5))
        for i in range(n)
    ]
    return Profile(IDENTITY, labels)


def test_round_trip_gives_identical_scores(rng, taste_home):
    profile = small_profile(rng, 4)
    path = save_profile(profile)
    assert path == taste_home / "profiles" / "test-model-1.0-abababababab.json"
    again = load_profile(IDENTITY)
    probe = rng.standard_normal((7, D))
    np.testing.assert_array_equal(again.score(probe), profile.score(probe))
    assert [(lab.value, lab.source) for lab in again.labels] == [(lab.value, lab.source) for lab in profile.labels]
    document = json.loads(path.read_text())
    assert document["format"] == 2
    assert document["model"] == {"name": "test-model", "version": "1.0", "embedding_dim": D,
                                 "weights_sha256": "ab" * 32}


def test_no_profile_means_crowd_taste(taste_home):
    assert load_active_profile(Info()) is None


@pytest.mark.parametrize("content", [b"{not json", b'{"format": 1, "kind": "streamtag-taste-profile"', b"",
                                     b'{"format": 1, "kind": "streamtag-taste-profile", "model": {}}'])
def test_corrupt_profile_is_reported_and_kept_aside(rng, taste_home, content):
    path = own()
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with pytest.raises(ProfileError, match="corrupt.*kept aside as.*--no-taste") as caught:
        load_active_profile(Info())
    assert not path.exists()
    aside = beside(path, "NAME.corrupt-*")
    assert len(aside) == 1 and aside[0].read_bytes() == content
    assert str(aside[0]) in str(caught.value)
    # the next write starts afresh without touching the kept copy
    save_profile(small_profile(rng))
    reloaded = load_active_profile(Info())
    assert aside[0].read_bytes() == content and (reloaded.n_likes, reloaded.n_dislikes) == (1, 1)


def test_a_profile_file_for_another_model_says_rebuild_and_stays_put(rng, taste_home):
    path = save_profile(small_profile(rng))
    before = path.read_bytes()
    other = ModelIdentity("test-model", "2.0", D, "cd" * 32)
    with pytest.raises(ProfileError, match="taste rebuild --from") as caught:
        load_profile(other, path)
    assert "test-model 1.0" in str(caught.value) and "test-model 2.0" in str(caught.value)
    assert path.read_bytes() == before


def test_each_model_has_its_own_profile(rng, taste_home):
    """Another model (even one of the same name and version: other weights) starts with the crowd's taste and is
    told where the labels are; the first model's profile stays its own."""
    save_profile(small_profile(rng))
    for other in (ModelIdentity("test-model", "2.0", D, "cd" * 32), ModelIdentity("test-model", "1.0", D, "ef" * 32)):
        class OtherInfo:
            name, version, embedding_dim, weights_sha256 = (other.name, other.version, other.embedding_dim,
                                                           other.weights_sha256)

        assert load_active_profile(OtherInfo()) is None
        notice = elsewhere_notice(other)
        assert "2 labels" in notice and "test-model 1.0 (weights abababababab" in notice and "taste rebuild" in notice
    assert elsewhere_notice(IDENTITY) is None
    assert load_active_profile(Info()).n_likes == 1


def test_profile_from_a_newer_streamtag_is_left_alone(taste_home):
    path = own()
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"format": 99, "kind": "streamtag-taste-profile"}))
    with pytest.raises(ProfileError, match="newer streamtag"):
        load_profile(IDENTITY)
    assert path.exists()


_WRITER = """
import numpy as np
from streamtag.taste.fit import make_label
from streamtag.taste.profile import ModelIdentity
from streamtag.taste.store import load_profile, save_profile
profile = load_profile(ModelIdentity("test-model", "1.0", 8, "ab" * 32))
rng = np.random.default_rng(7)
profile.add(make_label("like", kind="file", source="/music/new.ogg", embeddings=rng.standard_normal((5, 8)),
                       crowd_probs=np.full(5, 0.5)))
save_profile(profile)
"""


def test_sigkill_during_a_write_leaves_the_old_profile_intact(rng, taste_home):
    path = save_profile(small_profile(rng, 3))
    before = path.read_bytes()
    env = {**os.environ, WRITE_PAUSE_ENV: "30", "PYTHONPATH": str(REPO)}
    writer = subprocess.Popen([sys.executable, "-c", _WRITER], env=env, stderr=subprocess.PIPE, text=True)
    try:
        # The writer logs when it has written and synced the temp file and is about to replace the profile.
        line = writer.stderr.readline()
        assert "pausing" in line, line + writer.stderr.read()
        temps = beside(path, ".NAME.*.tmp")
        assert len(temps) == 1 and b"/music/new.ogg" in temps[0].read_bytes()  # the new profile, complete
        writer.send_signal(signal.SIGKILL)
        assert writer.wait(timeout=10) == -signal.SIGKILL
    finally:
        if writer.poll() is None:
            writer.kill()
        writer.stderr.close()
    assert path.read_bytes() == before
    survivor = load_profile(IDENTITY)
    assert [lab.source for lab in survivor.labels] == ["/music/0.ogg", "/music/1.ogg", "/music/2.ogg"]
    # a later write succeeds, and removes the dead writer's temp file once it is stale
    for temp in beside(path, ".NAME.*.tmp"):
        os.utime(temp, (time.time() - 3600, time.time() - 3600))
    save_profile(survivor)
    assert not beside(path, ".NAME.*.tmp")


def test_read_profile_of_an_import_does_not_rename_the_users_file(tmp_path):
    source = tmp_path / "mine.json"
    source.write_text("[1, 2]")
    with pytest.raises(ProfileError, match="not a valid taste profile"):
        read_profile(source, set_aside_corrupt=False)
    assert source.exists()


@contextlib.contextmanager
def lock_held_elsewhere(path: Path, *, seconds: float):
    """Another process that takes the profile lock of ``path`` for ``seconds``; yields it once it holds the lock."""
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from pathlib import Path; from streamtag.taste.store import profile_lock; import time\n"
         f"with profile_lock(Path({str(path)!r})):\n    print('held', flush=True); time.sleep({seconds})"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.kill()
        holder.wait()


def test_a_busy_profile_is_reported_not_waited_for(tmp_path):
    """Live labelling gives up quickly while another process holds the profile (e.g. a long 'taste learn')."""
    from streamtag.taste.store import profile_lock

    path = tmp_path / "taste-profile.json"
    with lock_held_elsewhere(path, seconds=5) as holder:
        with pytest.raises(ProfileError, match="busy"):
            with profile_lock(path, wait_s=0.2):
                pass
        assert holder.poll() is None  # it gave up while the holder (5 s) still held the lock, not after
    with profile_lock(path, wait_s=0.2):  # free again once the holder is gone
        pass


def test_taste_reset_says_it_waits_for_another_writer(taste_home, engine, model_path):
    path = save_profile(Profile(ModelIdentity.from_info(engine.info)))
    # The other writer lets go once reset has said it waits, however long reset takes to start on a busy machine.
    with lock_held_elsewhere(path, seconds=60):
        reset = subprocess.Popen([sys.executable, "-m", "streamtag", "taste", "reset", "--model", str(model_path),
                                  "--provider", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, env={**os.environ, "STREAMTAG_HOME": str(taste_home)})
        said = reset.stderr.readline()
    out, err = reset.communicate(timeout=60)
    assert reset.returncode == 0, said + err
    assert "waiting for another streamtag that is writing the taste profile" in said
    assert not path.exists()  # it went on once the other writer let go


def _hostile(rng, change) -> bytes:
    """A valid profile document with one thing changed, as an attack run wrote them."""
    document = small_profile(rng).to_dict()
    change(document)
    return json.dumps(document).encode()


@pytest.mark.parametrize("what, change, reason", [
    ("a label of no windows", lambda d: d["labels"][0].update(n_windows=0), "a label with 0 windows"),
    ("a fit that never ends", lambda d: d["fit"].update(tol=-1, max_iter=10**9), "max_iter must be 1..1000"),
    ("a tolerance never met", lambda d: d["fit"].update(tol=-1), "tol must be between 0 and 1"),
    ("a negative penalty", lambda d: d["fit"].update(l2=-5), "l2 must be a finite number >= 0"),
])
def test_hostile_profiles_are_set_aside_not_crashed_on_or_hung_in(rng, taste_home, what, change, reason):
    """Found by an attack run: these crashed (ZeroDivisionError) or hung every command that read the profile,
    and were never set aside, so they did it again each time."""
    path = own()
    path.parent.mkdir(parents=True)
    path.write_bytes(_hostile(rng, change))
    with pytest.raises(ProfileError, match=f"corrupt .*{reason}.*kept aside as"):
        load_active_profile(Info())
    assert not path.exists() and len(beside(path, "NAME.corrupt-*")) == 1


def test_json_nested_too_deep_to_parse_is_set_aside(taste_home):
    own().parent.mkdir(parents=True)
    own().write_bytes(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(ProfileError, match="corrupt .*RecursionError.*kept aside as"):
        load_active_profile(Info())


def test_a_profile_that_cannot_be_written_is_a_clear_error_and_the_old_one_stays(rng, taste_home, tmp_path):
    """A read-only folder (an attack run got tracebacks here, 8 of 11 cases): one ProfileError, old file intact."""
    path = save_profile(small_profile(rng))
    before = path.read_bytes()
    path.parent.chmod(0o500)
    try:
        if os.access(path.parent, os.W_OK):  # root ignores permissions: a file where the folder should be instead
            pytest.skip("this user can write anywhere")
        with pytest.raises(ProfileError, match="cannot save the taste profile .*unchanged. Make its folder writable"):
            save_profile(small_profile(rng, n=4))
    finally:
        path.parent.chmod(0o700)
    assert path.read_bytes() == before


def test_a_data_folder_that_is_a_file_is_a_clear_error(rng, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(ProfileError, match="cannot save the taste profile"):
        save_profile(small_profile(rng), blocker / "taste-profile.json")


def test_a_profile_keeps_its_newest_labels_up_to_the_bound(rng, taste_home):
    from streamtag.taste.profile import MAX_LABELS

    profile = small_profile(rng, MAX_LABELS)
    assert len(profile.labels) == MAX_LABELS
    newest = make_label("like", kind="live", source="2026-12-01T12:00:00", embeddings=rng.standard_normal((3, D)),
                        crowd_probs=rng.uniform(0.2, 0.8, 3))
    assert profile.add(newest) == 1  # one old label went
    assert len(profile.labels) == MAX_LABELS
    assert profile.labels[0].source == "/music/1.ogg" and profile.labels[-1].source == newest.source
    save_profile(profile)
    assert len(load_profile(IDENTITY).labels) == MAX_LABELS  # the file is bounded too
    assert profile.replace_labels([*profile.labels, newest, newest]) == 2
