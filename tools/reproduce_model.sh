#!/usr/bin/env bash
# Rebuild the shipped model from nothing but the shared data, PyPI and Debian:
#
#     bash tools/reproduce_model.sh [WORK_DIR]      # default WORK_DIR: ../streamtag-work (outside the repo)
#
# 1. the teacher's own environment (TensorFlow 2.15 and musicnn need NumPy 1; they never meet torch);
# 2. unlabelled music for distillation: the audio of seven free game-soundtrack packages from Debian
#    (GPL-2+ or CC-BY / CC-BY-SA, see models/README.md), unpacked into WORK_DIR, never into the repo;
# 3. the teacher's targets for Emotify, the CC recordings and that music;
# 4. `streamtag train --all` with the cross-validated recipe (RECIPE below, the one models/README.md reports);
# 5. the export to models/streamtag.onnx with its parity check;
# 6. the content head (music / speech / other, docs/content.md): the sounds of seven free game packages from
#    Debian (streamtag/train/content_set.py), unpacked into WORK_DIR, and tools/fit_content_head.py.
# Needs the project's .venv with the [train] extra (README.md), python3.11, apt-get with current package lists
# (Debian: apt-get update) and unzip. About 40 minutes on a 2-core CPU; a step already done is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
work=$(realpath -m "${1:-../streamtag-work}")
data="$repo/../shared/data"
mkdir -p "$work"

if [ ! -x "$work/teacher-venv/bin/python" ]; then
    python3.11 -m venv "$work/teacher-venv"
    "$work/teacher-venv/bin/pip" install -q tensorflow-cpu==2.15.1 'numpy<2' librosa==0.10.2.post1 soundfile soxr rich
    "$work/teacher-venv/bin/pip" install -q --no-deps musicnn==0.1.0  # it pins numpy < 1.17, which 3.11 lacks
fi

music="$work/unlabelled-music"
if [ ! -d "$music" ]; then
    mkdir -p "$work/debs" "$music.tmp"
    (cd "$work/debs" && apt-get download warzone2100-music nexuiz-music ufoai-music fb-music-high \
        singularity-music hyperrogue-music asc-music)
    for deb in "$work"/debs/*.deb; do
        name=$(basename "$deb" .deb)
        dpkg -x "$deb" "$music.tmp/$name"
    done
    # Two of the packages keep their music in a Quake-style .pk3 (a zip).
    find "$music.tmp" -name '*.pk3' | while read -r pk3; do
        mkdir -p "$pk3.d" && unzip -q -o "$pk3" -d "$pk3.d" && rm "$pk3"
    done
    mv "$music.tmp" "$music"
fi

teacher="$work/teacher-targets"
"$work/teacher-venv/bin/python" tools/teacher_targets.py --hop-frames 32 --out "$teacher" "$data/emotify/audio" "$data/cc-audio"
"$work/teacher-venv/bin/python" tools/teacher_targets.py --hop-frames 192 --out "$teacher" "$music"

# The recipe chosen by tools/crossval.py (models/README.md, "Cross-validation"); keep the two in step.
RECIPE=(--teacher "$teacher" --unlabelled "$music" "$data/cc-audio" --epochs 24 --average-last 8 --mixup 0 --probe-heads)
. .venv/bin/activate
streamtag train "$data/emotify" --all "${RECIPE[@]}" --out "$work/run-final"
python tools/export_onnx.py "$work/run-final/best.pt" models/streamtag.onnx --version 2.4.0

sounds="$work/sounds"
if [ ! -d "$sounds" ]; then
    mkdir -p "$work/sound-debs" "$sounds.tmp"
    read -r -a packages <<< "$(python -c 'from streamtag.train.content_set import PACKAGES; print(*PACKAGES)')"
    (cd "$work/sound-debs" && apt-get download "${packages[@]}")
    for package in "${packages[@]}"; do
        dpkg -x "$work"/sound-debs/"${package}"_*.deb "$sounds.tmp/$package"
    done
    # Most of the sounds are inside zips: Quake-style .pk3, Warzone's .wz, and 0 A.D.'s public.zip (audio only).
    find "$sounds.tmp" \( -name '*.pk3' -o -name '*.wz' \) | while read -r archive; do
        mkdir -p "$archive.d" && unzip -q -o "$archive" -d "$archive.d" && rm "$archive"
    done
    find "$sounds.tmp" -name public.zip | while read -r archive; do
        mkdir -p "$archive.d" && unzip -q -o "$archive" 'audio/*' -d "$archive.d" && rm "$archive"
    done
    mv "$sounds.tmp" "$sounds"
fi
python tools/fit_content_head.py "$sounds" --music "$data/emotify/audio" "$music"/* \
    --evaluate "$data/cc-audio" "$data/gtzan/samples"
