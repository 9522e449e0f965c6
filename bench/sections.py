"""The step-time breakdown's sections and how the profiling pass times them: shared, without torch, by the pass
(bench.breakdown) and by the report that describes it."""

SECTIONS = ("data", "h2d", "forward", "backward", "optimizer")  # the parts of one training step, in order
METHOD = "synchronized section timers"
STEPS = 30  # profiled steps per cell (fewer when MAX_SECONDS runs out)
WARMUP_STEPS = 5  # first steps (DataLoader workers starting, kernels loading) are not counted
MIN_STEPS = 5  # profiled steps kept even past MAX_SECONDS
MAX_SECONDS = 2.0  # budget of the pass, so a wide model at a large batch on the CPU stays cheap
