"""Distillation from a pretrained tagger: its per-window outputs, read from the cache that
``tools/teacher_targets.py`` writes, as soft targets for the student CRNN.

The teacher scored 3 s windows that start every few STFT frames of each file (``starts``); a training crop is
anchored on one of those windows, so the student learns the teacher's answer for exactly the audio it sees
(give or take the crop's time stretch). Unlabelled audio (game soundtracks, CC recordings) teaches the tags;
the labelled losses still come only from labelled tracks.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamtag.errors import StreamtagError
from streamtag.train.config import FrontendConfig, ModelConfig

# No torch here (config.py is plain dataclasses): tools/teacher_targets.py runs this module beside TensorFlow, in
# a virtual environment of its own.


@dataclass(frozen=True)
class Framing:
    """The student's and the teacher's framing: the facts that window alignment rests on. The student's are
    its front end's and window's defaults (train/config.py)."""

    student_rate: int = FrontendConfig.sample_rate
    student_stft_hop: int = FrontendConfig.hop_samples
    student_window_frames: int = FrontendConfig().n_frames(ModelConfig.window_samples)  # 128
    teacher_rate: int = 16000  # musicnn.configuration.SR
    teacher_hop: int = 256  # FFT_HOP
    teacher_n_fft: int = 512  # FFT_SIZE
    teacher_patch_frames: int = 187  # librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1


def teacher_start_frame(student_frame: int, framing: Framing) -> int:
    """The teacher frame nearest in time to the start of student frame ``student_frame``.

    Student frame k starts at k * 512 / 22050 s (no centring). The teacher's log-mel is centred (librosa's
    default), so its frame j is centred at j * 256 / 16000 s, and a 187-frame patch from frame j covers the 3 s
    from there: the patch starts with the window when j = k * 512 / 22050 * 16000 / 256.
    """
    seconds = student_frame * framing.student_stft_hop / framing.student_rate
    return int(round(seconds * framing.teacher_rate / framing.teacher_hop))


def window_starts(n_student_frames: int, *, hop_frames: int, framing: Framing) -> np.ndarray:
    """Starts (student frames) of the windows every ``hop_frames`` that fit in ``n_student_frames`` frames."""
    last = n_student_frames - framing.student_window_frames
    if last < 0:
        return np.zeros(0, dtype=np.int32)
    return np.arange(0, last + 1, hop_frames, dtype=np.int32)


def content_key(path: Path) -> str:
    """A file's name in the cache: a hash of its bytes, so the cache follows the audio wherever it lies (and
    committed fixtures work on any checkout), and a changed file is scored again."""
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class TeacherTargets:
    starts: np.ndarray  # (N,) window starts in student STFT frames
    tags: np.ndarray  # (N, T) the teacher's tag probabilities
    features: np.ndarray  # (N, F) its penultimate layer


class TeacherCache:
    """The teacher's targets by audio file: one ``KEY.npz`` per file, KEY its ``content_key``."""

    def __init__(self, directory: Path, *, frontend: FrontendConfig, window_samples: int) -> None:
        """Refuses a cache whose windows were aligned to another front end or window than these."""
        self.directory = Path(directory)
        files = sorted(self.directory.glob("*.npz")) if self.directory.is_dir() else []
        if not files:
            raise StreamtagError(f"{self.directory}: no teacher targets; write them with tools/teacher_targets.py")
        self._keys = {f.stem for f in files}
        with np.load(files[0]) as first:
            meta = json.loads(str(first["meta"]))
            self.n_features = int(first["features"].shape[1])
        self.teacher: str = meta["teacher"]
        self.tag_names: tuple[str, ...] = tuple(meta["tag_names"])
        framing = meta["framing"]
        expected = {"student_rate": frontend.sample_rate, "student_stft_hop": frontend.hop_samples,
                    "student_window_frames": frontend.n_frames(window_samples)}
        wrong = {key: (framing.get(key), value) for key, value in expected.items() if framing.get(key) != value}
        if wrong:
            raise StreamtagError(f"{self.directory}: the teacher's windows were aligned to another front end "
                                 f"({wrong}: cached, this model); run tools/teacher_targets.py again")

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, path: Path) -> TeacherTargets | None:
        """The targets of one file, or None where the teacher has not scored it."""
        key = content_key(path)
        if key not in self._keys:
            return None
        with np.load(self.directory / f"{key}.npz") as data:
            if json.loads(str(data["meta"]))["tag_names"] != list(self.tag_names):
                raise StreamtagError(f"{self.directory}: files scored by different teachers; use one cache per teacher")
            if not len(data["starts"]):
                return None
            return TeacherTargets(starts=data["starts"].astype(np.int64), tags=data["tags"].astype(np.float32),
                                  features=data["features"].astype(np.float32))


def standardise_features(targets: list[TeacherTargets | None]) -> list[TeacherTargets | None]:
    """Teacher features scaled to zero mean and unit variance per dimension over all windows, so that the
    feature loss weighs every dimension alike."""
    known = [t.features for t in targets if t is not None]
    if not known:
        return targets
    stacked = np.concatenate(known)
    mean, std = stacked.mean(axis=0), stacked.std(axis=0) + 1e-6
    return [None if t is None else TeacherTargets(t.starts, t.tags, ((t.features - mean) / std).astype(np.float32))
            for t in targets]
