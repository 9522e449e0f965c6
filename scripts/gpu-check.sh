#!/usr/bin/env bash
# The GPU check: everything this project measures, on a bare GPU machine, in 8 minutes or less, into one folder.
#
#   scripts/gpu-check.sh OUTDIR            # GPU_CHECK_SECONDS=480 by default: the whole check's time limit
#
# Needs python3 with torch, torchvision, numpy, pandas, matplotlib, tqdm, tabulate, psutil and pytest-benchmark;
# no network and no install step (it runs from the checkout with PYTHONPATH=.). Stages run in order of what
# they are for; each has its own time limit, cut to what is left of the whole, and a failing stage does not
# stop the others. OUTDIR/summary.txt lists each stage's exit status and seconds; OUTDIR/figures.txt the
# figures (tables, eager vs cudagraph, the fastest tuned cell, the timing cross-checks, energy per image).
set -u
out=${1:?usage: scripts/gpu-check.sh OUTDIR}
cd "$(dirname "$0")/.."
mkdir -p "$out"
out=$(cd "$out" && pwd)
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 MPLBACKEND=Agg
py=${PYTHON:-python3}
total=${GPU_CHECK_SECONDS:-480}
summary=$out/summary.txt
: >"$summary"
start=$(date +%s)

stage() {  # stage NAME LIMIT_SECONDS COMMAND...
  local name=$1 limit=$2
  shift 2
  local left=$(( total - ($(date +%s) - start) - 15 ))  # 15 s kept for the last stages' bookkeeping
  if [ "$left" -lt 10 ]; then
    printf '%-14s skipped: the check is out of time\n' "$name" | tee -a "$summary"
    return
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  local t0=$(date +%s)
  timeout --signal=INT --kill-after=10 "$limit" "$@" >"$out/$name.log" 2>&1
  local rc=$?
  printf '%-14s rc=%-3s %4ss (limit %ss)  %s\n' "$name" "$rc" "$(( $(date +%s) - t0 ))" "$limit" "$*" \
    | tee -a "$summary"
}

{
  echo "gpu-check $(date -u +%Y-%m-%dT%H:%M:%SZ) commit $(git rev-parse --short HEAD 2>/dev/null || echo none)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv 2>&1
  $py -c 'import torch,torchvision;print("torch",torch.__version__,"cuda",torch.version.cuda,"cudnn",torch.backends.cudnn.version(),"torchvision",torchvision.__version__,"gpus",torch.cuda.device_count())'
  echo "cpu cores: $(nproc)"
  $py -c 'import pynvml; pynvml.nvmlInit(); print("nvidia-ml-py: NVML", pynvml.nvmlSystemGetDriverVersion())' 2>&1 | tail -1
  ls /sys/class/powercap 2>&1 | head -3
} >"$out/machine.txt" 2>&1
tee -a "$summary" <"$out/machine.txt"

grid="--eval none --quiet --no-report --out $out/grid"
# 1. `bench run` with its defaults: the tutorial configuration and a resident batch-256 one, on cpu and cuda
stage run-default 170 $py -m bench run --out "$out/run-default" --reports "$out/reports" --quiet
# 2. a short grid: batch 4 to 4096, width 1 to 16, eager and tuned, on cuda and on this machine's CPU
stage grid-cuda 90 $py -m bench run --devices cuda --pipeline resident --batch-size 4,16,64,256,1024,4096 \
  --width 1,4,16 --tune none,fast --budget 1s --warmup 10 $grid
stage grid-cuda-cg 30 $py -m bench run --devices cuda --pipeline resident --batch-size 4,32 --tune cudagraph \
  --budget 1s --warmup 10 $grid
stage grid-cuda-tut 30 $py -m bench run --devices cuda --pipeline tutorial --batch-size 4,32 --tune none,fast \
  --budget 3s $grid
# 3. the test suite's CUDA paths (the rest of the suite runs in CI, which has no GPU), and the harness against
#    torch.utils.benchmark on cuda
stage tests 80 $py -m pytest -q -p no:cacheprovider -m gpu tests
stage fidelity 60 $py -m pytest -q -p no:cacheprovider --benchmark-only --benchmark-json "$out/fidelity.json" \
  tests/benchmarks/test_fidelity.py -k "cuda and 4"
# 4. the short grid on this machine's CPU
stage grid-cpu 60 $py -m bench run --devices cpu --pipeline resident --batch-size 4,64,1024,4096 --width 1,4 \
  --tune none,fast --budget 1s --warmup 2 $grid
stage grid-cpu-w16 40 $py -m bench run --devices cpu --pipeline resident --batch-size 4,64,1024 --width 16 \
  --tune none,fast --budget 1s --warmup 1 $grid
# 5. the pytest-benchmark suite, with JSON output
BENCH_SECONDS=0.3 stage benchmarks 100 $py -m pytest -q -p no:cacheprovider --benchmark-only \
  --benchmark-json "$out/benchmarks.json" tests/benchmarks/test_train_step.py
# 6. the report over everything measured here (it reads records only: it can be rendered anywhere later), and the figures
stage report 40 $py -m bench report "$out/run-default" "$out/grid" "$out/benchmarks.json" \
  --reports "$out/reports" --name gpu-check
stage figures 20 $py scripts/gpu_summary.py "$out"
# 7. energy: joules per image of the tutorial configuration and of the fastest tuned GPU cell, with their methods
stage energy 15 $py scripts/gpu_summary.py "$out" energy
cp "$out/figures.log" "$out/figures.txt" 2>/dev/null
echo "total $(( $(date +%s) - start ))s" | tee -a "$summary"
