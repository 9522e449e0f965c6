"""Are the intervals honest? Run one CPU cell N times, each in a fresh `bench run`, and count how often one
run's images/s falls inside another run's 95% interval (calibrated intervals give about 95%; below 80% an
interval claims more than one run supports).

    python benchmarks/calibration.py --runs 12 --budget 5s --pipeline tutorial --batch-size 4

Check `uptime` first: on a busy machine the figure measures the other programs, not the harness.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.results import load

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=12)
    p.add_argument("--budget", default="5s")
    p.add_argument("--pipeline", default="tutorial")
    p.add_argument("--batch-size", default="4")
    p.add_argument("--threads", default="auto")
    p.add_argument("--keep", default=None, help="keep the runs' records in this folder (default: a temporary one)")
    p.add_argument("--read", default=None, help="no new runs: judge the records of an earlier --keep folder")
    args = p.parse_args(argv)
    load_before = os.getloadavg()[0]
    if args.read:
        return judge(load([args.read]).sort_values("run_id", ignore_index=True), args, load_before)
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or scratch
        for i in range(args.runs):
            t0 = time.time()
            subprocess.run([sys.executable, "-m", "bench", "run", "--devices", "cpu", "--dataset", "synthetic",
                            "--pipeline", args.pipeline, "--batch-size", args.batch_size, "--threads", args.threads,
                            "--budget", args.budget, "--eval", "none", "--no-breakdown", "--no-report", "--quiet",
                            "--out", f"{tmp}/run-{i:02d}"], cwd=ROOT, check=True, capture_output=True)
            print(f"run {i + 1}/{args.runs}: {time.time() - t0:.1f} s", file=sys.stderr)
        df = load([tmp]).sort_values("run_id", ignore_index=True)
    return judge(df, args, load_before)


def judge(df, args, load_before: float) -> int:
    rates, lows, highs = df["images_per_s"], df["images_per_s_low"], df["images_per_s_high"]
    pairs = list(itertools.permutations(range(len(df)), 2))
    inside = sum(lows[j] <= rates[i] <= highs[j] for i, j in pairs)
    width = statistics.median((highs - lows) / rates)
    spread = statistics.stdev(rates) / statistics.mean(rates)
    print(f"cell: cpu {args.pipeline} batch {args.batch_size}, budget {args.budget}, threads {args.threads} "
          f"(used {sorted(set(int(t) for t in df['threads']))}), {len(df)} runs in fresh processes, {int(df['blocks'].median())} "
          f"blocks each")
    print(f"load average before/after: {load_before:.2f} / {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
          f"busy cells: {int(df['busy'].sum())}")
    print(f"images/s per run: {', '.join(f'{r:,.0f}' for r in rates)}")
    print(f"run-to-run coefficient of variation: {spread:.1%}; median interval width: {width:.1%} of the rate")
    print(f"a run's images/s inside another run's 95% interval: {inside} of {len(pairs)} pairs = "
          f"{inside / len(pairs):.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
