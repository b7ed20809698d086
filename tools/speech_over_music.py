"""What streamtag says when someone talks over music: a presenter over a radio bed, a podcast's intro.

Each speech recording is mixed with each music recording at several speech-to-music ratios (RMS over the
speech's length, in dB; the music is looped or cut to that length), and each mix is tagged as `streamtag tag
--json` tags a file. Prints, per ratio, the mean content probabilities (music, speech, other) and how many
mixes were judged music (and as which genre), speech or unsure.

    python tools/speech_over_music.py [--model models/streamtag.onnx] [--ratios 12 6 0 -6 -12] [--json OUT]

Defaults: the three LibriSpeech readings and the nine music recordings in ../shared/data/cc-audio
(docs/content.md has the figures).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streamtag.audio import load_audio  # noqa: E402
from streamtag.core.levels import rms  # noqa: E402
from streamtag.core.tagger import Tagger  # noqa: E402
from streamtag.engine import Engine  # noqa: E402
from streamtag.tag_files import block_windows, file_tags  # noqa: E402

CC_AUDIO = REPO.parent / "shared" / "data" / "cc-audio"
SPEECH = ("198-209-0000.ogg", "3436-172162-0000.ogg", "5703-47212-0000.ogg")
MUSIC = (
    "Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg",
    "Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.ogg",
    "Kevin_MacLeod_-_Vibe_Ace.ogg",
    "fats_waller_aint_misbehavin.ogg",
    "442789__lena-orsa__happy-music-pistachio-ice-cream-ragtime.ogg",
    "Karissa_Hobbs_-_Lets_Go_Fishin.ogg",
    "admiralbob77_-_Choice_-_Drum-bass.ogg",
    "147793__setuniman__sweet-waltz-0i-22mi.ogg",
    "sorohanro_-_solo-trumpet-06.ogg",
)
RATIOS_DB = (12.0, 6.0, 0.0, -6.0, -12.0)


def mix(speech: np.ndarray, music: np.ndarray, ratio_db: float) -> np.ndarray:
    """``speech`` over ``music`` (looped or cut to the speech's length), the speech ``ratio_db`` louder in RMS;
    scaled down as a whole where the sum would clip, which keeps the ratio."""
    bed = np.resize(music, speech.shape)  # np.resize repeats the music from its start
    if rms(bed) == 0.0 or rms(speech) == 0.0:
        raise ValueError("a silent recording has no level to set a ratio against")
    bed = bed * (rms(speech) / (rms(bed) * 10.0 ** (ratio_db / 20.0)))
    out = speech + bed
    peak = float(np.max(np.abs(out)))
    return (out / peak * 0.99 if peak > 0.99 else out).astype(np.float32)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=REPO / "models" / "streamtag.onnx")
    parser.add_argument("--speech", type=Path, nargs="+", default=[CC_AUDIO / name for name in SPEECH])
    parser.add_argument("--music", type=Path, nargs="+", default=[CC_AUDIO / name for name in MUSIC])
    parser.add_argument("--ratios", type=float, nargs="+", default=list(RATIOS_DB),
                        help="speech-to-music ratios in dB (RMS)")
    parser.add_argument("--json", type=Path, help="also write every mix's result here")
    args = parser.parse_args()
    missing = [str(p) for p in [*args.speech, *args.music] if not p.is_file()]
    if missing:
        parser.error(f"no such file: {', '.join(missing)}")

    engine = Engine(args.model, provider="cpu")
    if engine.content_head is None:
        parser.error(f"{args.model} has no content head beside it: there is no speech state to measure")
    tagger = Tagger(engine)
    rate = engine.info.sample_rate
    speech = {p.name: load_audio(p, sample_rate=rate) for p in args.speech}
    music = {p.name: load_audio(p, sample_rate=rate) for p in args.music}
    rows = []
    for ratio in args.ratios:
        for s_name, s in speech.items():
            for m_name, m in music.items():
                result = file_tags(tagger, f"{s_name} over {m_name}", *block_windows(tagger, [mix(s, m, ratio)]))
                rows.append({"ratio_db": ratio, "speech": s_name, "music": m_name, **result})
    for name, clips in (("speech alone", speech), ("music alone", music)):
        for clip_name, clip in clips.items():
            result = file_tags(tagger, clip_name, *block_windows(tagger, [clip]))
            rows.append({"ratio_db": None, "alone": name, **result})

    print(f"{len(speech)} speech x {len(music)} music recordings, model {engine.info.name} {engine.info.version}")
    print(f"{'speech/music':>14} {'P(music)':>9} {'P(speech)':>10} {'P(other)':>9}   judged")
    groups = [(f"{r:+.0f} dB", [x for x in rows if x["ratio_db"] == r]) for r in args.ratios]
    groups += [(name, [x for x in rows if x.get("alone") == name]) for name in ("speech alone", "music alone")]
    for label, group in groups:
        content = np.mean([[x["content"][k] for k in ("music", "speech", "other")] for x in group], axis=0)
        states = Counter(x["state"] if x["state"] != "music" else f"music ({x['top']})" for x in group)
        judged = ", ".join(f"{n} {state}" for state, n in states.most_common())
        print(f"{label:>14} {content[0]:>9.2f} {content[1]:>10.2f} {content[2]:>9.2f}   {judged}")
    if args.json:
        args.json.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
