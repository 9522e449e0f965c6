"""Training one cell under its budget: warm-up off the clock, timed blocks of steps, evaluation between blocks.

    record = train(cell, data, bench.env.environment(), run_id="mine")

The clock runs only inside run_block(): a synchronize and a host clock read open and close each block, and the
steps between them are all that is timed (as in airbench). Warm-up, evaluation and record assembly sit around it.
The energy meter's counter reads sit just outside each block's two clock reads (bench.energy), so its windows
hold the timed blocks and nothing else, and cost the clock nothing.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from bench import devices, energy, threads, tuning, variants
from bench.config import CellConfig
from bench.data import Dataset
from bench.devices import Clock, StepClock
from bench.load import LoadMeter
from bench.preparation import Prepared, build_model, evaluate, prepare, restore_state, snapshot_state
from bench.records import AccuracyPoint, DatasetFacts, DeviceEnergy, Environment, ModelFacts, Record, Timing
from bench.timing import Schedule, StepSample
from model import count_parameters, forward_flops_per_image, training_flops_per_image

# progress(done, total, note): done and total in budget units (steps or seconds)
Progress = Callable[[float, float, str], None]
# meter_factory(device, synchronize=, clock=) -> an energy.Meter, or None to record no energy
MeterFactory = Callable[..., "energy.Meter | None"]


def dataset_facts(data: Dataset) -> DatasetFacts:
    return DatasetFacts(name=data.name, source=data.source, reason=data.reason, train_size=len(data.train_labels),
                        test_size=len(data.test_labels), input_shape=tuple(data.input_shape),
                        classes=len(data.classes))


def model_facts(net: nn.Module, data: Dataset) -> ModelFacts:
    return ModelFacts(name="TutorialNet", width=net.width, parameters=count_parameters(net),
                      train_flops_per_image=training_flops_per_image(net, data.input_shape),
                      forward_flops_per_image=forward_flops_per_image(net, data.input_shape),
                      flop_counter="torch.utils.flop_counter (convolutions and matrix products)")


def train(cell: CellConfig, data: Dataset, env: Environment, run_id: str, *, clock: Clock = time.perf_counter,
          progress: Progress | None = None, step_factory=None, cpu_watts: float | None = None,
          gpu_watts: float | None = None, meter_factory: MeterFactory | None = None) -> Record:
    """Train one cell and return its record. Faults the user can meet (out of memory, divergence, a tuned
    option the device cannot do) become the record's status, not exceptions; any other exception (a bug, a dead
    DataLoader worker, a lost device) propagates, and the caller decides.

    cpu_watts and gpu_watts (W, the user's --cpu-watts/--gpu-watts) give an estimate where no counter is read.
    step_factory(net, optimizer, host_loss) -> step replaces the cell's training step (tests inject faults);
    meter_factory replaces the energy meter (tests pass fake counters)."""
    base = dict(cell=cell, run_id=run_id, env=env, device_name=devices.name(cell.device),
                dataset=dataset_facts(data))
    reason = variants.unsupported(cell.tune, cell.device, cell.pipeline)
    if reason:
        return Record(status="unsupported", created_utc=_now(), message=reason, **base)
    if step_factory is None:
        def step_factory(net, optimizer, host_loss):
            return tuning.make_step(cell.tune, cell.device, net, optimizer, host_loss)
    try:
        with devices.cpu_threads(cell.threads), tuning.applied(cell.tune):
            net = build_model(cell, data)  # a width too large for memory fails here, on the host
            base["model"] = model_facts(net, data)
            new_meter = meter_factory or energy_meter(cpu_watts, gpu_watts)
            return _train(cell, data, net, base, clock, progress, step_factory, new_meter)
    except Exception as exc:  # noqa: BLE001 - only out-of-memory is turned into a record here
        if not devices.is_out_of_memory(exc):
            raise
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    # Out of memory. Outside the except block the traceback, and the tensors its frames hold, are gone, so
    # emptying the allocator cache really frees the cell's memory for the next one.
    net = None
    memory = devices.peak_memory(cell.device)
    devices.release_memory(cell.device)
    return Record(status="oom", created_utc=_now(), memory=memory, message=(
        f"out of memory at batch size {cell.batch_size}, width {cell.width:g}: {reason}"), **base)


def energy_meter(cpu_watts: float | None = None, gpu_watts: float | None = None) -> MeterFactory:
    """The meter a real cell uses: RAPL for the CPU, NVML for a CUDA GPU (named by its UUID) and RAPL for its
    host, the user's watts where no counter can be read, and `unavailable` with the reason otherwise."""

    def make(device: str, *, synchronize, clock) -> energy.Meter:
        return energy.meter_for(device, synchronize=synchronize, cpu_watts=cpu_watts, gpu_watts=gpu_watts,
                                gpu_uuid=devices.uuid(device), clock=clock)

    return make


def energy_facts(meter: energy.Meter | None) -> dict[str, DeviceEnergy] | None:
    """The meter's figures per device as the record keeps them (watts are derived when results are read)."""
    if meter is None:
        return None
    return {device: DeviceEnergy(method=r["method"], joules=r["joules"], seconds=r["seconds"],
                                 windows=r["windows"], window_joules=tuple(r["window_joules"]), source=r["source"],
                                 reason=r["reason"], note=r["note"])
            for device, r in meter.result().items()}


@dataclass
class Tally:
    """What the timed blocks and checkpoints have measured so far."""

    steps: int = 0
    seconds: float = 0.0  # timed training seconds: the sum of the blocks' synchronized wall time
    eval_seconds: float = 0.0
    blocks: list = field(default_factory=list)  # (steps, seconds) per block
    loss_curve: list = field(default_factory=list)  # (step, mean finite loss of the block)
    curve: list = field(default_factory=list)  # AccuracyPoint per checkpoint
    diverged_at: int | None = None  # the first step whose loss was not finite
    diverged_loss: float | None = None


def warm_up(cell: CellConfig, prep: Prepared, step, clock: Clock) -> tuple[float, dict[int, float]]:
    """Real steps on real batches, off the clock, then (--threads auto on a CPU) the thread-count probe; then
    the weights and optimizer state are put back, so the samples the accuracy curve counts are exactly the
    timed ones. Returns the warm-up's seconds and the probe's seconds per step by thread count."""
    probing = cell.threads is None and variants.kind(cell.device) == "cpu"
    if not cell.warmup_steps and not probing:
        return 0.0, {}
    snapshot = snapshot_state(prep.net, prep.optimizer)
    batches = iter(prep.warmup_batches)
    devices.synchronize(cell.device)
    t0 = clock()
    for _ in range(cell.warmup_steps):
        step(*next(batches))
    devices.synchronize(cell.device)
    seconds = clock() - t0
    probed = {}
    if probing:
        estimate = seconds / cell.warmup_steps if cell.warmup_steps else None
        probed = threads.probe(step, batches, threads.candidates(devices.default_threads()), clock, estimate)
    del batches  # ends the warm-up DataLoader's workers
    restore_state(prep.net, prep.optimizer, snapshot)
    return seconds, probed


def run_block(step, batches, n: int, timer: StepClock) -> tuple[list, list[float], float]:
    """The timed region: n steps between two synchronized host clock reads, a step mark after each.
    Returns the steps' losses (tensors or floats), their seconds, and the block's wall seconds."""
    losses = []
    timer.start_block()
    for _ in range(n):
        losses.append(step(*next(batches)))
        timer.mark()
    step_seconds, block_seconds = timer.finish_block()
    return losses, step_seconds, block_seconds


def checkpoint(cell: CellConfig, prep: Prepared, tally: Tally, clock: Clock) -> float:
    """Test accuracy now, off the clock (its time goes to eval_seconds, never to training)."""
    t0 = clock()
    acc = evaluate(prep.net, prep.test_x, prep.test_y)
    devices.synchronize(cell.device)
    tally.eval_seconds += clock() - t0
    tally.curve.append(AccuracyPoint(tally.steps, tally.steps * cell.batch_size, tally.seconds, acc))
    return acc


def _losses_to_floats(losses: list) -> list[float]:
    if losses and isinstance(losses[0], torch.Tensor):
        return torch.stack(losses).float().cpu().tolist()
    return [float(v) for v in losses]


def _count(tally: Tally, losses: list, block_seconds: float) -> None:
    """Add a finished block to the tally; stop at the first loss that is not finite."""
    values = _losses_to_floats(losses)
    bad = next((i for i, v in enumerate(values) if not math.isfinite(v)), None)
    if bad is not None:
        tally.diverged_at, tally.diverged_loss = tally.steps + bad + 1, values[bad]
    tally.steps += len(values)
    tally.seconds += block_seconds
    tally.blocks.append((len(values), block_seconds))
    finite = [v for v in values if math.isfinite(v)]
    tally.loss_curve.append((tally.steps, sum(finite) / len(finite) if finite else None))


def _train(cell, data, net, base, clock, progress, step_factory, new_meter: MeterFactory) -> Record:
    started = time.time()
    load = LoadMeter()
    load.start()
    devices.reset_peak_memory(cell.device)
    prep = prepare(cell, data, net)
    step = step_factory(prep.net, prep.optimizer, host_loss=cell.pipeline == "tutorial")
    # opened before warm-up: finding and opening the counters (NVML's init, the powercap scan) is off the clock
    meter = new_meter(cell.device, synchronize=lambda: devices.synchronize(cell.device), clock=clock)
    try:
        warm_seconds, probed = warm_up(cell, prep, step, clock)
        used = threads.fastest(probed) if probed else (cell.threads or devices.default_threads())
        with devices.cpu_threads(used):
            tally, sample, timer = _timed(cell, data, prep, step, clock, progress, warm_seconds, meter)
        used_energy = energy_facts(meter)
    finally:
        if meter is not None:
            meter.close()
    timing = Timing(
        clock=timer.source, warmup_steps=cell.warmup_steps, warmup_seconds=warm_seconds, steps=tally.steps,
        samples=tally.steps * cell.batch_size, epochs=tally.steps / prep.batches.steps_per_epoch,
        train_seconds=tally.seconds, eval_seconds=tally.eval_seconds, blocks=tuple(tally.blocks),
        step_seconds=tuple(sample.values), step_seconds_sampled=sample.sampled, diverged_at_step=tally.diverged_at,
        threads=used, thread_probe={str(n): cell.batch_size / s for n, s in probed.items()},
        started_unix=started, finished_unix=time.time())
    status, message = "ok", ""
    if tally.diverged_at is not None:
        status, message = "diverged", f"loss became {tally.diverged_loss} at step {tally.diverged_at}"
    return Record(status=status, message=message, created_utc=_now(), timing=timing,
                  accuracy_curve=tuple(tally.curve), loss_curve=tuple(tally.loss_curve),
                  memory=devices.peak_memory(cell.device), load=load.stop(), energy=used_energy, **base)


def _timed(cell, data, prep, step, clock, progress, warm_seconds,
           meter: energy.Meter | None = None) -> tuple[Tally, StepSample, StepClock]:
    """The timed blocks, with checkpoints between them, until the budget is spent or the loss diverges. Each
    block is one energy window: the meter reads its counters before the block's first clock read and after its
    last, so evaluation and warm-up fall outside every window."""
    schedule = Schedule(cell.budget, cell.budget.total_steps(len(data.train_labels), cell.batch_size),
                        cell.eval_points)
    timer = devices.step_clock(cell.device, clock)
    sample, tally = StepSample(seed=cell.seed), Tally()
    # seconds per step: from warm-up at first (provisional: warm-up steps run slower), then from timed blocks
    estimate = warm_seconds / cell.warmup_steps if cell.warmup_steps else None
    provisional = True
    note = f"acc {checkpoint(cell, prep, tally, clock):.1%}" if cell.eval_points else ""
    batches = iter(prep.batches)
    while (n := schedule.next_block(tally.steps, tally.seconds, estimate, provisional)) > 0:
        if meter is not None:
            meter.start()
        losses, step_seconds, block_seconds = run_block(step, batches, n, timer)
        if meter is not None:
            meter.stop()
        sample.extend(step_seconds)
        _count(tally, losses, block_seconds)
        estimate, provisional = block_seconds / n, False
        if tally.diverged_at is not None:
            break
        if schedule.checkpoint_due(tally.steps, tally.seconds):
            note = f"acc {checkpoint(cell, prep, tally, clock):.1%}"
        if progress:
            progress(schedule.progress(tally.steps, tally.seconds), schedule.limit, note)
    del batches  # ends the DataLoader's workers
    return tally, sample, timer


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
