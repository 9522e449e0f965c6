"""The measuring method's constants: read by the harness that applies them and by the report's method notes, so
the two never disagree. No torch here."""

# Timed blocks (bench.timing): the host clock is read only at block boundaries, after a synchronize.
MAX_BLOCK_STEPS = 256  # steps between host clock reads at most (also bounds the events kept per block)
TARGET_BLOCK_SECONDS = 0.5  # and about this much training time, so progress and time budgets stay responsive
FIRST_BLOCK_STEPS = 8  # before any step time is known
TARGET_BLOCKS = 32  # a cell's blocks are the unit of its interval: aim for this many, however short the budget
MIN_BLOCK_SECONDS = 0.01  # but not shorter than this (a synchronize per block must stay negligible)
MIN_BLOCKS = 10  # fewer blocks than this: too few samples for an interval to say anything
STEP_SAMPLE = 4096  # per-step times kept per cell; a seeded uniform sample beyond this

# The step-time breakdown (bench.breakdown): a separate profiling pass after the timed run.
SECTIONS = ("data", "h2d", "forward", "backward", "optimizer")  # the parts of one training step, in order
BREAKDOWN_METHOD = "synchronized section timers"
BREAKDOWN_STEPS = 30  # profiled steps per cell (fewer when BREAKDOWN_MAX_SECONDS runs out)
BREAKDOWN_WARMUP_STEPS = 5  # first steps (DataLoader workers starting, kernels loading) are not counted
BREAKDOWN_MIN_STEPS = 5  # profiled steps kept even past BREAKDOWN_MAX_SECONDS
BREAKDOWN_MAX_SECONDS = 2.0  # budget of the pass, so a wide model at a large batch on the CPU stays cheap

# Energy (bench.energy): NVML's energy counter refreshes every 20-100 ms, so windows that add up to less than this
# are mostly that step: the record keeps the joules with a note, and no figure is derived from them. On the H200
# (2026-11-28) one eager cell read 0.101 J per image over 0.11 s and 0.150 over 0.24 s, where 4.4 s read 0.090;
# CUDA-graph cells of 0.02 s read 0 J.
NVML_MIN_SECONDS = 1.0
