"""Training one cell under its budget: warm-up off the clock, timed blocks of steps, evaluation between blocks."""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from bench import devices, tuning
from bench.config import CellConfig
from bench.data import Dataset
from bench.devices import Clock
from bench.pipelines import ResidentBatches, TutorialBatches, normalized_tensor
from bench.records import Record
from bench.timing import Schedule, StepSample
from model import TutorialNet, count_parameters, forward_flops_per_image, training_flops_per_image

EVAL_BATCH = 1000  # images per forward pass when measuring test accuracy (off the clock)

# progress(done, total, note): done and total in budget units (steps or seconds)
Progress = Callable[[float, float, str], None]


@dataclass
class Prepared:
    """What a cell needs on its device before the clock starts (data preparation is never timed)."""

    net: nn.Module
    optimizer: torch.optim.Optimizer
    batches: object  # TutorialBatches | ResidentBatches
    warmup_batches: object
    test_x: torch.Tensor
    test_y: torch.Tensor


def build_model(cell: CellConfig, data: Dataset) -> nn.Module:
    torch.manual_seed(cell.seed)
    return TutorialNet(width=cell.width, in_channels=data.channels, image_size=data.image_size,
                       num_classes=data.num_classes)


def dataset_facts(data: Dataset) -> dict:
    return {"name": data.name, "source": data.source, "reason": data.reason, "train_size": len(data.train_labels),
            "test_size": len(data.test_labels), "input_shape": list(data.input_shape), "classes": len(data.classes)}


def model_facts(net: nn.Module, data: Dataset) -> dict:
    return {
        "name": "TutorialNet",
        "width": net.width,
        "parameters": count_parameters(net),
        "train_flops_per_image": training_flops_per_image(net, data.input_shape),
        "forward_flops_per_image": forward_flops_per_image(net, data.input_shape),
        "flop_counter": "torch.utils.flop_counter (convolutions and matrix products)",
    }


def prepare(cell: CellConfig, data: Dataset, net: nn.Module) -> Prepared:
    device = cell.device
    net = tuning.prepare_model(net.to(device), cell.tune)
    optimizer = torch.optim.SGD(net.parameters(), lr=cell.lr, momentum=cell.momentum)
    if cell.pipeline == "tutorial":
        pinned = "pinned" in cell.tune
        batches = TutorialBatches(data.train_images, data.train_labels, cell.batch_size, device,
                                  cell.workers, cell.seed, pinned)
        warmup = TutorialBatches(data.train_images, data.train_labels, cell.batch_size, device,
                                 cell.workers, cell.seed + 1, pinned)
    else:
        x = normalized_tensor(data.train_images).to(device)
        y = torch.from_numpy(data.train_labels).to(device)
        batches = ResidentBatches(x, y, cell.batch_size, cell.seed)
        warmup = ResidentBatches(x, y, cell.batch_size, cell.seed + 1)
    test_x = normalized_tensor(data.test_images).to(device)
    test_y = torch.from_numpy(data.test_labels).to(device)
    return Prepared(net, optimizer, batches, warmup, test_x, test_y)


def make_step(net: nn.Module, optimizer: torch.optim.Optimizer, host_loss: bool):
    """One training step: forward, loss, backward, optimizer step. The tutorial reads loss.item() every step
    (a host synchronization); the resident pipeline keeps the loss on the device."""
    criterion = nn.CrossEntropyLoss()

    def step(x: torch.Tensor, y: torch.Tensor):
        optimizer.zero_grad()
        loss = criterion(net(x), y)
        loss.backward()
        optimizer.step()
        return loss.item() if host_loss else loss.detach()

    return step


@torch.no_grad()
def evaluate(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    net.eval()
    correct = 0
    for i in range(0, len(y), EVAL_BATCH):
        correct += int((net(x[i:i + EVAL_BATCH]).argmax(1) == y[i:i + EVAL_BATCH]).sum())
    net.train()
    return correct / len(y)


def _losses_to_floats(losses: list) -> list[float]:
    if losses and isinstance(losses[0], torch.Tensor):
        return torch.stack(losses).float().cpu().tolist()
    return [float(v) for v in losses]


def snapshot_state(net: nn.Module, optimizer: torch.optim.Optimizer):
    params = {k: v.detach().clone() for k, v in net.state_dict().items()}
    state = {p: {k: v.detach().clone() for k, v in s.items() if torch.is_tensor(v)} for p, s in optimizer.state.items()}
    return params, state


def restore_state(net: nn.Module, optimizer: torch.optim.Optimizer, snapshot) -> None:
    """Put weights and optimizer state back in place: a captured CUDA graph or a compiled model keeps
    pointing at these very tensors. SGD momentum created during warm-up is zeroed, which is exactly a fresh
    buffer for SGD without dampening (its first step sets the buffer to the gradient either way)."""
    params, state = snapshot
    with torch.no_grad():
        for k, v in net.state_dict().items():
            v.copy_(params[k])
        for p, s in optimizer.state.items():
            saved = state.get(p, {})
            for k, v in s.items():
                if torch.is_tensor(v):
                    v.copy_(saved[k]) if k in saved else v.zero_()


def train(cell: CellConfig, data: Dataset, env: dict, run_id: str, *, clock: Clock = time.perf_counter,
          progress: Progress | None = None, step_factory=None) -> Record:
    """Train one cell and return its record. Faults the user can meet (out of memory, divergence, a tuned
    option the device cannot do) become the record's status, not exceptions; any other exception (a bug, a dead
    DataLoader worker, a lost device) propagates, and the caller decides.

    step_factory(net, optimizer, host_loss) -> step replaces the cell's training step (tests inject faults)."""
    base = dict(cell=cell.to_dict(), run_id=run_id, env=env, device_name=devices.name(cell.device),
                dataset=dataset_facts(data))
    reason = tuning.unsupported(cell.tune, cell.device, cell.pipeline)
    if reason:
        return Record(status="unsupported", created_utc=_now(), message=reason, **base)
    if step_factory is None:
        def step_factory(net, optimizer, host_loss):
            return tuning.make_step(cell.tune, cell.device, net, optimizer, host_loss)
    try:
        with devices.cpu_threads(cell.threads), tuning.applied(cell.tune):
            net = build_model(cell, data)  # a width too large for memory fails here, on the host
            base["model"] = model_facts(net, data)
            return _train(cell, data, net, base, clock, progress, step_factory)
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


def _train(cell, data, net, base, clock, progress, step_factory) -> Record:
    device = cell.device
    devices.reset_peak_memory(device)
    prep = prepare(cell, data, net)
    step = step_factory(prep.net, prep.optimizer, host_loss=cell.pipeline == "tutorial")
    steps_per_epoch = prep.batches.steps_per_epoch
    total_steps = cell.budget.total_steps(len(data.train_labels), cell.batch_size)
    schedule = Schedule(cell.budget, total_steps, cell.eval_points)

    # Warm-up: real steps on real batches, off the clock, then the weights and optimizer state are put back,
    # so the samples the accuracy curve counts are exactly the timed ones.
    warm_seconds = 0.0
    started_unix = time.time()  # the timed window in wall-clock time, so cells on one machine can be checked apart
    if cell.warmup_steps:
        snapshot = snapshot_state(prep.net, prep.optimizer)
        warm = iter(prep.warmup_batches)
        devices.synchronize(device)
        t0 = clock()
        for _ in range(cell.warmup_steps):
            step(*next(warm))
        devices.synchronize(device)
        warm_seconds = clock() - t0
        del warm
        restore_state(prep.net, prep.optimizer, snapshot)

    timer = devices.step_clock(device, clock)
    sample = StepSample(seed=cell.seed)
    blocks: list[list] = []
    curve: list[dict] = []
    loss_curve: list[list] = []
    eval_seconds = 0.0
    steps, seconds = 0, 0.0
    # seconds per step: from warm-up at first (provisional: warm-up steps run slower), then from timed blocks
    est = warm_seconds / cell.warmup_steps if cell.warmup_steps else None
    provisional = True
    status, message, diverged_at = "ok", "", None

    def checkpoint():
        nonlocal eval_seconds
        t0 = clock()
        acc = evaluate(prep.net, prep.test_x, prep.test_y)
        devices.synchronize(device)
        eval_seconds += clock() - t0
        curve.append({"step": steps, "samples": steps * cell.batch_size, "seconds": seconds, "accuracy": acc})
        return acc

    note = ""
    if cell.eval_points:
        note = f"acc {checkpoint():.1%}"
    batches = iter(prep.batches)
    while (n := schedule.next_block(steps, seconds, est, provisional)) > 0:
        losses = []
        timer.start_block()
        for _ in range(n):
            losses.append(step(*next(batches)))
            timer.mark()
        step_seconds, block_seconds = timer.finish_block()
        losses = _losses_to_floats(losses)
        bad = next((i for i, v in enumerate(losses) if not math.isfinite(v)), None)
        if bad is not None:
            diverged_at = steps + bad + 1
            status, message = "diverged", f"loss became {losses[bad]} at step {diverged_at}"
        steps += n
        seconds += block_seconds
        sample.extend(step_seconds)
        blocks.append([n, block_seconds])
        finite = [v for v in losses if math.isfinite(v)]
        loss_curve.append([steps, sum(finite) / len(finite) if finite else None])
        est, provisional = block_seconds / n, False
        if status != "ok":
            break
        if schedule.checkpoint_due(steps, seconds):
            note = f"acc {checkpoint():.1%}"
        if progress:
            progress(schedule.progress(steps, seconds), schedule.limit, note)
    del batches
    finished_unix = time.time()

    timing = {
        "clock": timer.source,
        "warmup_steps": cell.warmup_steps,
        "warmup_seconds": warm_seconds,
        "steps": steps,
        "samples": steps * cell.batch_size,
        "epochs": steps / steps_per_epoch,
        "train_seconds": seconds,
        "eval_seconds": eval_seconds,
        "blocks": blocks,
        "step_seconds": sample.values,
        "step_seconds_sampled": sample.sampled,
        "diverged_at_step": diverged_at,
        "started_unix": started_unix,  # seconds since the epoch, before warm-up
        "finished_unix": finished_unix,  # seconds since the epoch, after the last block
    }
    return Record(status=status, message=message, created_utc=_now(), timing=timing, accuracy_curve=curve,
                  loss_curve=loss_curve, memory=devices.peak_memory(device), **base)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
