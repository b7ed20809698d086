#!/usr/bin/env python3
"""Export a training checkpoint to an ONNX model and its streaming parts, and check both against PyTorch.

    python tools/export_onnx.py runs/crnn/best.pt models/streamtag.onnx --version 2.0.0 [--fp16 models/streamtag.fp16.onnx]
    python tools/export_onnx.py runs/a/best.pt runs/b/best.pt models/streamtag.onnx --version 2.4.0   # an averaged ensemble

Writes OUT (raw audio in: every window computed whole) and beside it OUT's streaming parts
(OUT-stem.network.onnx, .frontend-conv.onnx, .frontend-stft.onnx), which OUT names with their SHA-256 and which
let a stream compute each spectrogram frame once. Prints the largest absolute difference between ONNX Runtime
and PyTorch outputs on windows of a real recording, and between the streaming and the whole-window path on it;
exits non-zero above 1e-4.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from streamtag.audio import load_audio
from streamtag.train.crnn import CRNNEnsemble
from streamtag.train.export import (
    PARITY_TOLERANCE,
    export_onnx,
    export_streaming_parts,
    load_checkpoint,
    metadata_for,
    parity_max_abs_diff,
    streaming_max_abs_diff,
    to_fp16,
)

REPO = Path(__file__).resolve().parents[1]
# A CC-BY recording (Kevin MacLeod, "Vibe Ace"), used only to compare the two runtimes on real music.
DEFAULT_PARITY_AUDIO = REPO.parent / "shared" / "data" / "cc-audio" / "Kevin_MacLeod_-_Vibe_Ace.ogg"
PARITY_WINDOWS = 4


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", type=Path, nargs="+", metavar="CHECKPOINT",
                        help="one checkpoint, or several to export as one averaged ensemble")
    parser.add_argument("out", type=Path)
    parser.add_argument("--name", default="streamtag-crnn")
    # No default: a default version would stamp any checkpoint with the shipped model's identity, and a taste
    # profile made for that model would then be applied to this one without a word.
    parser.add_argument("--version", required=True, help="the model's version, e.g. 2.4.0 (name + version identify it)")
    parser.add_argument("--hop-s", type=float, default=1.5,
                        help="default hop for offline tagging (metadata), rounded to whole spectrogram frames")
    parser.add_argument("--fp16", type=Path, help="also write an fp16-weight copy for GPUs here")
    parser.add_argument("--parity-audio", type=Path, default=DEFAULT_PARITY_AUDIO)
    args = parser.parse_args(argv)

    loaded = [load_checkpoint(path) for path in args.checkpoints]
    model = loaded[0][0] if len(loaded) == 1 else CRNNEnsemble([m for m, _ in loaded]).eval()
    config = model.config
    provenance = dict(loaded[0][1].get("provenance", {}))
    provenance["members"] = [
        {"checkpoint": path.name, "run": path.parent.name, "epoch": state.get("epoch"), "valid_metrics": state.get("metrics"),
         "train_config": state.get("train_config")}
        for path, (_, state) in zip(args.checkpoints, loaded, strict=True)
    ]
    frame = config.frontend.hop_samples
    hop_samples = frame * max(1, round(args.hop_s * config.frontend.sample_rate / frame))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    streaming = export_streaming_parts(model, args.out)
    metadata = metadata_for(model, name=args.name, version=args.version, provenance=provenance, hop_samples=hop_samples,
                            streaming=streaming)
    export_onnx(model, args.out, metadata=metadata)

    audio = load_audio(args.parity_audio, sample_rate=config.frontend.sample_rate)
    n = config.window_samples
    windows = np.stack([audio[i * n : (i + 1) * n] for i in range(PARITY_WINDOWS)])
    diff = parity_max_abs_diff(model, args.out, windows)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB); ONNX Runtime vs PyTorch on "
          f"{PARITY_WINDOWS} windows of {args.parity_audio.name}: max abs difference {diff:.2e}")
    streamed = streaming_max_abs_diff(args.out, audio[: n * PARITY_WINDOWS])
    print("wrote its streaming parts; frame by frame vs whole windows, each front end: max abs difference "
          + ", ".join(f"{kind} {value:.2e}" for kind, value in streamed.items()))
    diff = max(diff, *streamed.values())
    if diff > PARITY_TOLERANCE:
        print(f"FAILED: above the tolerance {PARITY_TOLERANCE:.0e}", file=sys.stderr)
        return 1
    if args.fp16:
        to_fp16(args.out, args.fp16)
        print(f"wrote {args.fp16} ({args.fp16.stat().st_size / 1e6:.2f} MB, fp16 weights)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
