#!/usr/bin/env bash
# The GPU check: what this project measures, on a bare GPU machine, in priority order, in 9 minutes or less.
#
#   scripts/gpu-check.sh OUTDIR              # on the GPU machine (GPU_CHECK_SECONDS, default 540, caps the whole)
#   scripts/gpu-check.sh --rehearse OUTDIR   # the same stages on this machine's CPU, tiny budgets, 2 minutes or less
#   scripts/gpu-check.sh --archive OUTDIR    # the same, packed at the end into OUTDIR/check.tar.gz (a lent machine
#                                            # brings back only a handful of files)
#   scripts/gpu-check.sh --device-command    # the exact command for a lent GPU machine, with this commit in it
#   scripts/gpu-check.sh --plan              # the stages, their budgets and what each measures
#
# Needs a Python (PYTHON, default python3) with torch, torchvision, numpy, pandas, matplotlib, pytest and
# pytest-benchmark; no network, no install step, no .git (give BENCH_COMMIT). The stages live in
# scripts/gpu_check.py; OUTDIR/summary.txt lists each stage's exit status, seconds and limit.
py=${PYTHON:-python3}
if ! command -v "$py" >/dev/null 2>&1; then
  echo "gpu-check: error: cannot run $py: set PYTHON to a Python that has torch" >&2
  exit 2
fi
exec "$py" "$(dirname "$0")/gpu_check.py" "$@"
