#!/usr/bin/env bash
# One command on a machine with an NVIDIA GPU: Adam's step at 1e8 parameters and Dropout as a percentage of the
# device's measured copy bandwidth (keras_optreg, Keras and, when installed with CUDA, PyTorch's fused Adam).
# Run from anywhere; extra arguments go to tests/benchmarks/bench_gpu.py (e.g. --params 5e7 --repeats 15).
set -euo pipefail
cd "$(dirname "$0")/../.."
nvidia-smi --query-gpu=name,memory.total,clocks.max.memory --format=csv,noheader || true
exec "${PYTHON:-python3}" -m tests.benchmarks.bench_gpu "$@"
