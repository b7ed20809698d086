#!/usr/bin/env bash
# The GPU checks, as one prepared run on the GPU test machine (../shared/device/README.md): CUDA tests, windows/s
# at batch 1..2048, one live stream's per-hop time with the device rings, and `serve` with many streams on CUDA.
# One run stays under 8 minutes (each step has its own timeout); results are written under $OUT.
#
#   here:   bash ../shared/device/stage-ort-gpu.sh     # onnxruntime-gpu in five parts (.ortgpu/), five runs there
#           bash tools/gpu_check.sh stage               # the Python 3.12 wheels the checks need, into .gpudeps/
#   there:  carry [".gpudeps"], command: bash tools/gpu_check.sh run   (after the five onnxruntime-gpu runs)
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-run}" in
stage)
    grep -qx '/.gpudeps/' .git/info/exclude 2>/dev/null || echo '/.gpudeps/' >> .git/info/exclude
    rm -rf .gpudeps && mkdir -p .gpudeps
    # What the runtime and the tests import beyond numpy (which the machine has). av is left out: only
    # network sources need it, and its wheel alone is most of one transfer.
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .gpudeps soundfile soxr rich markdown-it-py mdurl pygments websockets platformdirs prometheus-client \
        pytest pytest-timeout pluggy iniconfig packaging cffi pycparser onnx protobuf typing-extensions ml-dtypes
    du -sh .gpudeps
    ;;
run)
    OUT="${OUT:-/tmp/gpu-check}"
    mkdir -p "$OUT"
    python3 -m pip install -q --no-index --no-deps --target /tmp/gpudeps .gpudeps/*.whl
    export PYTHONPATH="/tmp/ortgpu:/tmp/gpudeps:$PWD"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.csv" || true
    python3 -c "import onnxruntime as ort; ort.preload_dlls(); print(ort.__version__, ort.get_available_providers())" \
        > "$OUT/providers.txt" 2>&1
    timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_streaming.py tests/core \
        > "$OUT/tests.txt" 2>&1 || true
    timeout 150 python3 tools/bench_batch.py --provider cuda --json > "$OUT/batch.json" 2> "$OUT/batch.err" || true
    timeout 150 python3 tools/bench_serve.py --provider cuda --seconds 15 --counts 32,128,256 --json \
        > "$OUT/serve.json" 2> "$OUT/serve.err" || true
    tail -n 3 "$OUT/tests.txt"
    ;;
*)
    echo "usage: bash tools/gpu_check.sh stage|run" >&2
    exit 2
    ;;
esac
