#!/usr/bin/env python3
"""Write a pretrained tagger's outputs, per student window, to a cache: the targets for distillation.

The teacher is musicnn's MSD_musicnn (Pons and Serra 2019; trained on the Million Song Dataset's 50 most
frequent Last.fm tags; ISC licence; its checkpoint ships in the `musicnn` wheel). The MagnaTagATune models in
the same wheel are never used: MagnaTagATune is Magnatune's music, as Emotify is, so they may have heard the
tracks we evaluate on.

For every window the student would see (3 s starting at a multiple of the student's STFT hop, every
``--hop-frames`` frames), the teacher scores the same 3 s: its 187-frame patch starts at the teacher frame
nearest the window's start time (``teacher_start_frame``). One ``.npz`` per audio file holds

    starts   (N,) int32    the window starts, in student STFT frames (512 samples at 22050 Hz)
    tags     (N, 50) f16   the teacher's tag probabilities
    features (N, 200) f16  its penultimate layer (batch-normalised dense layer)

and the run's parameters (teacher, tag names, student and teacher framing) as JSON in ``meta``. Files that
are already in the cache are skipped, so an interrupted run resumes where it stopped.

TensorFlow runs only here, in a virtual environment of its own (musicnn pins numpy < 1.17 and cannot share
one with torch and NumPy 2)::

    python3.11 -m venv ~/.venvs/teacher && . ~/.venvs/teacher/bin/activate
    pip install tensorflow-cpu==2.15.1 'numpy<2' librosa==0.10.2.post1 soundfile soxr rich
    pip install --no-deps musicnn==0.1.0
    python tools/teacher_targets.py --out cache/teacher ../shared/data/emotify/audio ../shared/data/cc-audio
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# These modules import numpy, soundfile and soxr, not torch, so they run here beside TensorFlow.
from streamtag.audio import audio_files_in, load_audio  # noqa: E402
from streamtag.errors import AudioFileError  # noqa: E402
from streamtag.train.config import FrontendConfig  # noqa: E402
from streamtag.train.distill import Framing, content_key, teacher_start_frame, window_starts  # noqa: E402

TEACHER = "MSD_musicnn"


def audio_files(paths: list[Path]) -> list[Path]:
    found = []
    for path in paths:
        if path.is_dir():
            found += audio_files_in(path)
        elif path.is_file():
            found.append(path)
        else:
            raise SystemExit(f"teacher_targets: {path}: no such file or folder")
    return found


class Teacher:
    """MSD_musicnn's graph, built and restored once and reused for every file (musicnn's own ``extractor``
    rebuilds it per file, and with ``extract_features=True`` returns the first patch's features for all)."""

    def __init__(self, framing: Framing, batch_size: int = 64) -> None:
        import tensorflow as tf
        from musicnn import configuration, models

        tf.compat.v1.disable_eager_execution()
        self.framing = framing
        self.batch_size = batch_size
        self.tag_names = tuple(configuration.MSD_LABELS)
        graph = tf.Graph()
        with graph.as_default():
            with tf.name_scope("model"):
                self._x = tf.compat.v1.placeholder(tf.float32, [None, framing.teacher_patch_frames, configuration.N_MELS])
                self._training = tf.compat.v1.placeholder(tf.bool)
                logits, *_, penultimate = models.define_model(self._x, self._training, TEACHER, len(self.tag_names))
                self._outputs = [tf.nn.sigmoid(logits), penultimate]
                self.n_features = int(penultimate.shape[-1])
            self._session = tf.compat.v1.Session(graph=graph)
            saver = tf.compat.v1.train.Saver()
            import musicnn

            saver.restore(self._session, str(Path(musicnn.__file__).parent / TEACHER) + "/")
        self._n_mels = configuration.N_MELS

    def logmel(self, audio_16k: np.ndarray) -> np.ndarray:
        """musicnn's input representation, (frames, 96): log10(10000 * mel + 1) of a centred mel power.

        Computed in float32: musicnn casts the mel to float16 first, and under NumPy 2 ``10000 * float16``
        overflows to inf for loud bins and silently changes the tags.
        """
        import librosa

        f = self.framing
        mel = librosa.feature.melspectrogram(y=audio_16k, sr=f.teacher_rate, hop_length=f.teacher_hop,
                                             n_fft=f.teacher_n_fft, n_mels=self._n_mels).T
        return np.log10(10000 * mel.astype(np.float32) + 1)

    def score(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        tags, features = [], []
        for i in range(0, len(patches), self.batch_size):
            t, p = self._session.run(self._outputs, {self._x: patches[i : i + self.batch_size], self._training: False})
            tags.append(t)
            features.append(p)
        return np.concatenate(tags), np.concatenate(features)


def patches_for(logmel: np.ndarray, starts: np.ndarray, framing: Framing) -> np.ndarray:
    """The teacher patch of each window; a patch that runs past the end (by a frame or two) is edge-padded."""
    n = framing.teacher_patch_frames
    need = max((teacher_start_frame(int(starts[-1]), framing) + n) if len(starts) else 0, logmel.shape[0])
    padded = np.pad(logmel, ((0, need - logmel.shape[0]), (0, 0)), mode="edge")
    return np.stack([padded[j : j + n] for j in (teacher_start_frame(int(s), framing) for s in starts)])


def targets_for_file(teacher: Teacher, path: Path, *, hop_frames: int) -> dict[str, np.ndarray]:
    """The teacher's outputs for every student window of one file. The window count comes from the file
    decoded as the student's log-mel cache decodes it (streamtag.audio, at the student's rate)."""
    framing = teacher.framing
    n_frames = FrontendConfig().n_frames(load_audio(path, sample_rate=framing.student_rate).size)
    starts = window_starts(n_frames, hop_frames=hop_frames, framing=framing)
    if not len(starts):
        return {"starts": starts, "tags": np.zeros((0, len(teacher.tag_names)), np.float16),
                "features": np.zeros((0, teacher.n_features), np.float16)}
    logmel = teacher.logmel(load_audio(path, sample_rate=framing.teacher_rate))
    tags, features = teacher.score(patches_for(logmel, starts, framing))
    return {"starts": starts, "tags": tags.astype(np.float16), "features": features.astype(np.float16)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", type=Path, nargs="+", help="audio files or folders (walked)")
    parser.add_argument("--out", type=Path, required=True, help="cache folder: one KEY.npz per file (KEY: a hash of "
                        "its bytes) and index.json (file -> KEY, for people)")
    parser.add_argument("--hop-frames", type=int, default=16,
                        help="windows every N student STFT frames (default 16: 0.37 s)")
    parser.add_argument("--max-files", type=int, help="only the first N files (for fixtures)")
    args = parser.parse_args(argv)
    if args.hop_frames < 1:
        parser.error("--hop-frames must be at least 1")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    framing = Framing()
    files = audio_files(args.paths)[: args.max_files]
    args.out.mkdir(parents=True, exist_ok=True)
    teacher = Teacher(framing)
    meta = json.dumps({"teacher": TEACHER, "tag_names": list(teacher.tag_names), "framing": asdict(framing),
                       "hop_frames": args.hop_frames})
    index_path = args.out / "index.json"
    index = json.loads(index_path.read_text()) if index_path.is_file() else {}
    failed = 0
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()) as progress:
        task = progress.add_task("teacher", total=len(files))
        for path in files:
            key = content_key(path)
            target = args.out / f"{key}.npz"
            if not target.is_file():
                try:
                    arrays = targets_for_file(teacher, path, hop_frames=args.hop_frames)
                except AudioFileError as exc:
                    progress.console.print(f"[red]skipped[/] {path}: {exc}")
                    failed += 1
                    progress.advance(task)
                    continue
                tmp = target.with_suffix(".tmp.npz")
                np.savez(tmp, meta=np.array(meta), **arrays)
                tmp.replace(target)
            index[str(path.resolve())] = key
            progress.advance(task)
    index_path.write_text(json.dumps(index, indent=0, sort_keys=True))  # the .npz files are the cache
    print(f"{len(files) - failed} files in {args.out}" + (f", {failed} failed" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
