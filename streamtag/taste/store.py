"""The profile files: where they live, reading and writing them, the lock between processes, and live clips.

One JSON file per model (``profiles/<name>-<version>-<weights>.json`` in
``platformdirs.user_data_dir("streamtag")``, or in ``$STREAMTAG_HOME``; profile.py says what it holds), so
a user who switches models keeps each model's profile, and ``taste rebuild`` carries labels from one to
another. The audio of live labels is kept in ``clips/`` beside them (FLAC, named by the SHA-256 of their
samples), so that live labels too can be re-embedded by another model.

Writes are atomic: a temporary file in the same folder, fsync, ``os.replace``, fsync of the folder. A profile
that cannot be parsed is renamed ``*.corrupt-<timestamp>`` and reported; one made for another model is reported
with the command that fixes it. The single ``taste-profile.json`` of older streamtags is moved to the
model it names (name, version and embedding_dim, its only record of the model) the first time that model asks.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from streamtag.errors import CorruptProfileError, ProfileError
from streamtag.taste.profile import (
    CLIP_NAME,
    PROFILE_FORMAT,
    READABLE_PROFILE_FORMATS,
    ModelIdentity,
    Profile,
)

log = logging.getLogger(__name__)

PROFILES_FOLDER = "profiles"
CLIPS_FOLDER = "clips"
LEGACY_FILENAME = "taste-profile.json"  # the one profile of streamtag before profiles were kept per model
HOME_ENV = "STREAMTAG_HOME"
# Test hook: seconds to sleep after the temporary file is written and synced, before it replaces the profile,
# so a test can kill the writer at the worst moment.
WRITE_PAUSE_ENV = "STREAMTAG_PROFILE_WRITE_PAUSE_S"
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def profile_home() -> Path:
    """``$STREAMTAG_HOME`` if set, else the platform's user data folder for streamtag."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("streamtag"))


def profiles_dir() -> Path:
    return profile_home() / PROFILES_FOLDER


def clips_dir() -> Path:
    return profile_home() / CLIPS_FOLDER


def profile_path(identity: ModelIdentity) -> Path:
    """Where the profile of the model ``identity`` lives: readable by a person, unique by the weights' digest."""
    name = _UNSAFE.sub("_", identity.name).strip("._") or "model"
    version = _UNSAFE.sub("_", identity.version).strip("._") or "0"
    return profiles_dir() / f"{name}-{version}-{identity.short_id}.json"


def profile_path_for(identity: ModelIdentity) -> Path:
    """``profile_path``, after moving a legacy ``taste-profile.json`` made for this model there (once)."""
    path = profile_path(identity)
    legacy = profile_home() / LEGACY_FILENAME
    if path.exists() or not legacy.exists():
        return path
    with profile_lock(legacy), profile_lock(path):
        if path.exists() or not legacy.exists():
            return path
        try:
            old = read_profile(legacy)
        except ProfileError as exc:
            log.warning("the old taste profile %s was not moved: %s", legacy, exc)
            return path
        if old.identity.names(identity):
            save_profile(old.for_model(identity), path)
            moved = set_aside(legacy, "moved")
            log.warning("moved the taste profile %s to %s (one profile per model now); the old file is %s",
                        legacy, path, moved.name)
    return path


def other_profiles(identity: ModelIdentity) -> list[tuple[Path, Profile]]:
    """The profiles with labels made for other models, newest first: what ``taste rebuild`` can carry over."""
    candidates = sorted(profiles_dir().glob("*.json")) + [profile_home() / LEGACY_FILENAME]
    found = []
    for path in candidates:
        if not path.is_file() or path == profile_path(identity):
            continue
        try:
            profile = read_profile(path, set_aside_corrupt=False)
        except ProfileError as exc:
            log.debug("not a profile to carry over: %s", exc)
            continue
        if profile.labels and profile.identity != identity:
            found.append((path.stat().st_mtime, path, profile))
    return [(path, profile) for _, path, profile in sorted(found, key=lambda item: -item[0])]


def elsewhere_notice(identity: ModelIdentity, others: list[tuple[Path, Profile]] | None = None) -> str | None:
    """For ``tag`` and ``live`` when this model has no profile yet: where the user's labels are, and the fix.
    ``others``: ``other_profiles(identity)``, where the caller has it already."""
    others = other_profiles(identity) if others is None else others
    if not others:
        return None
    _, newest = others[0]
    return (f"your taste profile ({len(newest.labels)} labels) was made for model {newest.identity.describe()}; "
            f"the crowd's taste is shown for {identity.describe()}. 'streamtag taste rebuild' carries the labels "
            "to this model")


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")


def set_aside(path: Path, reason: str) -> Path:
    """Rename ``path`` to ``<path>.<reason>-<timestamp>`` and return the new path."""
    target = path.with_name(f"{path.name}.{reason}-{_stamp()}")
    os.replace(path, target)
    _fsync_dir(path.parent)
    return target


def read_profile(path: Path, *, set_aside_corrupt: bool = True) -> Profile:
    """Read a profile file without checking which model it was made for (rebuild and import need that).

    A file that cannot be parsed is set aside as ``*.corrupt-<timestamp>`` (unless ``set_aside_corrupt`` is
    False: a file being imported is the user's own) and ProfileError says where it went; a file from a newer
    streamtag is left alone and ProfileError says to upgrade.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read the taste profile ({exc})") from exc
    try:
        data = json.loads(raw.decode("utf-8"))
        fmt = data.get("format") if isinstance(data, dict) else None
        if isinstance(fmt, int) and fmt > max(READABLE_PROFILE_FORMATS):
            raise ProfileError(
                f"{path}: taste profile format {fmt} was written by a newer streamtag (this one reads format "
                f"{PROFILE_FORMAT}); upgrade streamtag, or run 'streamtag taste reset' to start over"
            )
        if fmt not in READABLE_PROFILE_FORMATS:
            raise ValueError(f"unknown format {fmt!r}")
        return Profile.from_dict(data)
    except ProfileError:
        raise
    # RecursionError: JSON nested thousands deep, which json.loads cannot parse
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError, RecursionError) as exc:
        if not set_aside_corrupt:
            raise ProfileError(f"{path}: not a valid taste profile ({type(exc).__name__}: {exc})") from exc
        aside = set_aside(path, "corrupt")
        raise CorruptProfileError(
            f"{path}: the taste profile is corrupt ({type(exc).__name__}: {exc}); it was kept aside as {aside}. "
            "Teach a new one with 'streamtag taste learn', or restore a copy with 'streamtag taste import'",
            aside=aside,
        ) from exc


def check_compatible(profile: Profile, identity: ModelIdentity, path: Path) -> None:
    if profile.identity != identity:
        raise ProfileError(
            f"{path}: the taste profile was made for model {profile.identity.describe()}, but the model in use is "
            f"{identity.describe()}; run 'streamtag taste rebuild --from {path}' to re-embed its labels with this "
            "model, or tag with --no-taste to show the crowd's taste"
        )


def load_profile(identity: ModelIdentity, path: Path | None = None, *, create: bool = False) -> Profile:
    """The profile at ``path`` (default: the user's for this model), checked against ``identity``.

    Missing: a new empty profile when ``create``, else ProfileError. Corrupt: set aside, ProfileError.
    Made for another model: ProfileError naming ``streamtag taste rebuild``; the file is left as it is.
    """
    path = path or profile_path_for(identity)
    try:
        profile = read_profile(path)
    except FileNotFoundError:
        if create:
            return Profile(identity)
        raise ProfileError(f"no taste profile at {path}: teach one with 'streamtag taste learn --like ...'") from None
    check_compatible(profile, identity, path)
    return profile


def load_active_profile(info, path: Path | None = None) -> Profile | None:
    """For ``tag`` and ``live``: the user's profile for this model if it exists and has labels, else None.

    ``info`` is the engine's ModelInfo; ``path``, a profile file to use instead (``serve``'s per-stream ones).
    A corrupt or mismatched profile raises ProfileError (a StreamtagError) with the fix in its message: the
    caller should let it reach the user rather than fall back silently.
    """
    identity = ModelIdentity.from_info(info)
    path = path or profile_path_for(identity)
    if not path.exists():
        return None
    try:
        profile = load_profile(identity, path)
    except ProfileError as exc:
        raise ProfileError(f"{exc} (or run with --no-taste to show the crowd's taste)") from exc
    return profile if profile.active else None


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return  # Windows cannot open a directory for fsync; os.replace is atomic there all the same
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_profile(profile: Profile, path: Path | None = None) -> Path:
    """Write the profile (default: where its model's profile lives) atomically: temp file in the same folder, fsync, os.replace, fsync the folder.

    A crash at any point leaves either the old file or the new one, never a torn one; a temp file left by a
    crash is ignored by readers and removed by the next successful write.
    """
    path = path or profile_path(profile.identity)
    payload = json.dumps(profile.to_dict(), separators=(",", ":")).encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _write_error(path, exc) from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        pause_s = float(os.environ.get(WRITE_PAUSE_ENV) or 0.0)
        if pause_s > 0:
            log.warning("pausing %.1f s before replacing %s (%s is set)", pause_s, path, WRITE_PAUSE_ENV)
            time.sleep(pause_s)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):  # read-only folder or file, disk full: the old profile is untouched
            raise _write_error(path, exc) from exc
        raise
    _remove_stale_temps(path)
    return path


def _write_error(path: Path, exc: OSError) -> ProfileError:
    return ProfileError(
        f"{path}: cannot save the taste profile ({exc.strerror or exc}); the saved profile is unchanged. "
        f"Make its folder writable, free some space, or set {HOME_ENV} to a folder that is"
    )


def _remove_stale_temps(path: Path) -> None:
    """Delete temp files that writers killed mid-write left behind (older than a minute, so not in flight)."""
    cutoff = time.time() - 60.0
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(OSError):
            if stale.stat().st_mtime < cutoff:
                stale.unlink()


@contextlib.contextmanager
def profile_lock(path: Path, *, wait_s: float | None = None,
                 on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Serialise read-modify-write of the profile between processes (``taste learn`` while ``live`` runs).

    ``wait_s``: give up after this long with a ProfileError ("busy") instead of waiting however long the
    other writer takes, as a live label must. ``on_wait``: called once if the lock is taken, before waiting,
    so that a command can say what it is waiting for.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here; the last writer wins
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a+b") as handle:
        if wait_s is None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None:
                    on_wait()
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        else:
            deadline = time.monotonic() + wait_s
            while True:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise ProfileError(
                            "the taste profile is busy (another streamtag is writing it); try again in a moment"
                        ) from None
                    time.sleep(0.01)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def save_clip(samples: np.ndarray, sample_rate: int) -> str:
    """Keep a live label's audio in ``clips/`` (16-bit FLAC); returns its name, the SHA-256 of its samples."""
    import soundfile as sf

    pcm = np.round(np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0) * 32767.0).astype("<i2")
    name = f"{hashlib.sha256(pcm.tobytes()).hexdigest()}.flac"
    folder = clips_dir()
    target = folder / name
    if target.exists():
        return name
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "wb") as handle:
            sf.write(handle, pcm, int(sample_rate), format="FLAC", subtype="PCM_16")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except OSError as exc:
        raise _write_error(target, exc) from exc
    return name


def clip_path(name: str) -> Path:
    if not CLIP_NAME.fullmatch(name):
        raise ProfileError(f"{name!r} is not the name of a stored clip")
    return clips_dir() / name


def prune_clips() -> int:
    """Delete the clips that no profile file (a kept-aside copy included) names any more; returns how many.

    Called when labels go (``forget``, the oldest beyond MAX_LABELS), so clips do not pile up for ever."""
    folder = clips_dir()
    if not folder.is_dir():
        return 0
    named: set[str] = set()
    for path in [*profiles_dir().glob("*.json*"), *profile_home().glob(f"{LEGACY_FILENAME}*")]:
        if path.name.endswith((".lock", ".tmp")):
            continue
        try:
            named.update(CLIP_NAME.findall(path.read_text("utf-8", errors="replace")))
        except OSError:
            return 0  # cannot tell what is still named: delete nothing
    removed = 0
    for clip in folder.glob("*.flac"):
        if clip.name not in named:
            with contextlib.suppress(OSError):
                clip.unlink()
                removed += 1
    return removed
