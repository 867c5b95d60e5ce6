#!/usr/bin/env bash
# GPU check of pretraining (bench/gpu_check.py): float32 vs mixed_float16, with and without XLA,
# char and word models; under 5 minutes on one GPU. Needs TensorFlow with GPU support in the
# environment (pip install 'tensorflow[and-cuda]==2.21.*' in place of tensorflow-cpu).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2} PYTHONUNBUFFERED=1
exec timeout 300 "$PY" bench/gpu_check.py "$@"
