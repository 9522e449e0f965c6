#!/usr/bin/env bash
# The GPU check: everything this project measures, on a bare GPU machine, in about 6 minutes, into one folder.
#
#   scripts/gpu-check.sh OUTDIR
#
# Needs python3 with torch, torchvision, numpy, pandas, matplotlib, tqdm, tabulate, psutil and pytest-benchmark;
# no network and no install step (it runs from the checkout with PYTHONPATH=.). Each stage has its own time
# limit and a failing stage does not stop the others; OUTDIR/summary.txt says what each stage did.
set -u
out=${1:?usage: scripts/gpu-check.sh OUTDIR}
cd "$(dirname "$0")/.."
mkdir -p "$out"
out=$(cd "$out" && pwd)
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 MPLBACKEND=Agg
py=${PYTHON:-python3}
summary=$out/summary.txt
: >"$summary"
start=$(date +%s)

stage() {  # stage NAME LIMIT_SECONDS COMMAND...
  local name=$1 limit=$2
  shift 2
  local t0=$(date +%s)
  timeout --signal=INT --kill-after=20 "$limit" "$@" >"$out/$name.log" 2>&1
  local rc=$?
  printf '%-14s rc=%-3s %4ss  %s\n' "$name" "$rc" "$(( $(date +%s) - t0 ))" "$*" | tee -a "$summary"
}

{
  echo "gpu-check $(date -u +%Y-%m-%dT%H:%M:%SZ) commit $(git rev-parse --short HEAD 2>/dev/null || echo none)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv 2>&1
  $py -c 'import torch,torchvision;print("torch",torch.__version__,"cuda",torch.version.cuda,"cudnn",torch.backends.cudnn.version(),"torchvision",torchvision.__version__,"gpus",torch.cuda.device_count())'
  nproc
} >"$out/machine.txt" 2>&1
cat "$out/machine.txt" | tee -a "$summary"

# 1. the test suite, on cuda (GPU tests run; the long CPU-only ones are left to CI)
stage tests 150 $py -m pytest -q -x -p no:cacheprovider -m "not slow or gpu" tests
# 2. `bench run` with its defaults: the tutorial configuration and a resident batch-256 one, on cpu and cuda
stage run-default 170 $py -m bench run --out "$out/run-default" --quiet
# 3. a short grid: batch 4 to 4096, width 1 to 16, eager and tuned, on cuda and on this machine's CPU
stage grid-cuda 120 $py -m bench run --devices cuda --pipeline resident --batch-size 4,16,64,256,1024,4096 \
  --width 1,4,16 --tune none,fast --budget 1s --eval none --warmup 10 --out "$out/grid" --quiet --no-report
stage grid-cuda-cg 40 $py -m bench run --devices cuda --pipeline resident --batch-size 4,32 --tune cudagraph \
  --budget 1s --eval none --warmup 10 --out "$out/grid" --quiet --no-report
stage grid-cuda-tut 40 $py -m bench run --devices cuda --pipeline tutorial --batch-size 4,32 --tune none,fast \
  --budget 3s --eval none --out "$out/grid" --quiet --no-report
stage grid-cpu 110 $py -m bench run --devices cpu --pipeline resident --batch-size 4,64,1024,4096 --width 1,4,16 \
  --tune none,fast --budget 1s --eval none --warmup 2 --out "$out/grid" --quiet --no-report
# 4. the pytest-benchmark suite, with JSON output, and the CUDA timing cross-checks
BENCH_SECONDS=0.4 stage benchmarks 150 $py -m pytest -q -p no:cacheprovider --benchmark-only \
  --benchmark-json "$out/benchmarks.json" tests/benchmarks/test_train_step.py
stage fidelity 90 $py -m pytest -q -p no:cacheprovider --benchmark-only --benchmark-json "$out/fidelity.json" \
  tests/benchmarks/test_fidelity.py -k "cuda"
# 5. the report over everything measured here
stage report 60 $py -m bench report "$out/run-default" "$out/grid" "$out/benchmarks.json" --out "$out/report"
stage summary 30 $py scripts/gpu_summary.py "$out"

echo "total $(( $(date +%s) - start ))s" | tee -a "$summary"
