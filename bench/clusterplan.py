"""Cells planned over a Ray cluster's nodes, without Ray: which run where, what each reserves, what resume skips."""

from __future__ import annotations

import platform
from dataclasses import dataclass, replace
from pathlib import Path

from bench import devices, runner
from bench.config import CellConfig, RunConfig
from bench.data import Dataset
from bench.errors import UserError
from bench.records import Record
from bench.reading import read_records

KINDS = ("cpu", "cuda")  # the device kinds Ray schedules (num_gpus means CUDA GPUs)
GPU_DEVICE = "cuda:0"  # a GPU cell's device: the one GPU Ray gives it (CUDA_VISIBLE_DEVICES), seen as cuda:0


@dataclass(frozen=True)
class Node:
    """One machine of the cluster, as Ray sees it."""

    node_id: str  # Ray's node id (hex)
    host: str  # host name: records carry it as env.host, which tells machines apart in reports
    ip: str
    cpus: int  # Ray's CPU resource: the node's logical cores, or what `ray start --num-cpus` said
    gpus: int = 0  # Ray's GPU resource
    gpu_type: str = ""  # Ray's accelerator_type (e.g. A10G); "" when Ray did not detect one

    def describe(self) -> str:
        gpus = f", {self.gpus} GPU{'s' if self.gpus != 1 else ''}{' ' + self.gpu_type if self.gpu_type else ''}" \
            if self.gpus else ""
        return f"{self.host} ({self.cpus} CPUs{gpus})"


@dataclass(frozen=True)
class Task:
    """One cell on one node, with what it reserves there so that no other cell is timed beside it."""

    cell: CellConfig
    node: Node | None  # None: no node has the cell's device kind, so the driver records it unavailable
    num_cpus: float = 0  # Ray CPU resource reserved for the whole task
    num_gpus: float = 0  # Ray GPU resource reserved (0 or 1)

    @property
    def host(self) -> str:
        return self.node.host if self.node else platform.node()

    @property
    def key(self) -> tuple[str, str]:
        """What resume matches: the same cell measured on the same machine."""
        return self.cell.key, self.host

    @property
    def label(self) -> str:
        return f"{self.cell.label} on {self.host}"


def reservation(cell: CellConfig, node: Node) -> tuple[float, float]:
    """(CPUs, GPUs) a cell reserves on its node. A CPU cell takes all the node's CPUs, whatever its thread
    count, so nothing else runs there while it is timed; a GPU cell takes its GPU and the host cores it uses
    (its threads, plus the DataLoader workers of the tutorial pipeline), at most the node's CPUs."""
    if devices.kind(cell.device) == "cpu":
        return float(node.cpus), 0.0
    host_cores = (cell.threads or node.cpus) + (cell.workers if cell.pipeline == "tutorial" else 0)
    return float(min(node.cpus, host_cores)), 1.0


def kinds(config: RunConfig, devices_auto: bool) -> list[str]:
    """The device kinds asked for: with auto, every kind Ray schedules; cuda:N means a GPU, whichever Ray gives."""
    if devices_auto:
        return list(KINDS)
    out: list[str] = []
    for device in config.devices:
        k = devices.kind(device)
        if k not in KINDS:
            raise UserError(f"--executor ray runs cpu and cuda cells, not {device}: drop it from --devices, "
                            f"or run it with --executor local on its machine")
        if k not in out:
            out.append(k)
    return out


def tasks(config: RunConfig, nodes: list[Node], *, devices_auto: bool) -> tuple[list[Task], list[str]]:
    """Every node's cells: a CPU cell set on each node with CPUs, a CUDA cell set on each node with GPUs (its
    cells spread over the node's GPUs, one GPU each). With --threads auto, each CPU cell probes thread counts up
    to its node's cores. Returns the tasks and notes for the user (device kinds that no node has)."""
    hosts = [n.host for n in nodes]
    twins = sorted({h for h in hosts if hosts.count(h) > 1})
    if twins:
        raise UserError(f"several Ray nodes share the host name {', '.join(twins)}, so their records could not be "
                        f"told apart: give each machine its own host name")
    wanted = kinds(config, devices_auto)
    out: list[Task] = []
    for node in nodes:
        devs = tuple(d for k, d in (("cpu", "cpu"), ("cuda", GPU_DEVICE))
                     if k in wanted and (node.cpus if k == "cpu" else node.gpus) > 0)
        if not devs:
            continue
        for cell in replace(config, devices=devs).cells():
            out.append(Task(cell, node, *reservation(cell, node)))
    notes = []
    names = ", ".join(n.describe() for n in nodes) or "none"
    for k in wanted:
        if not any(devices.kind(t.cell.device) == k for t in out):
            device = "cpu" if k == "cpu" else GPU_DEVICE
            notes.append(f"no node of the Ray cluster has a {'CPU' if k == 'cpu' else 'GPU'} for cells (nodes: "
                         f"{names}); recording the {k} cells as unavailable")
            out += [Task(c, None) for c in replace(config, devices=(device,)).cells()]
    if all(t.node is None for t in out):
        raise UserError(f"no node of the Ray cluster can run a cell (nodes: {names}): start nodes with CPUs or "
                        f"GPUs (`ray start --address ...`), or use --executor local")
    return out, notes


@dataclass(frozen=True)
class ClusterPlan:
    """What a cluster run measures: every (cell, node) task, minus (on resume) those already recorded."""

    tasks: tuple[Task, ...]
    done: tuple[Record, ...] = ()  # records in the results file for tasks of this plan, one per task
    other: int = 0  # records in the results file for other cells or machines (left alone)
    warnings: tuple[str, ...] = ()  # from reading the results file
    notes: tuple[str, ...] = ()  # device kinds that no node has

    @property
    def todo(self) -> list[Task]:
        done = {record_key(r) for r in self.done}
        return [t for t in self.tasks if t.key not in done]

    def describe(self, path: Path) -> str:
        others = f"; {self.other} records there are from other arguments and are left alone" if self.other else ""
        return (f"resuming {path}: skipping {len(self.done)} of {len(self.tasks)} cells that already have a "
                f"record, measuring the other {len(self.todo)}{others}")


def record_key(record: Record) -> tuple[str, str]:
    return record.key, str(record.env.host)


def plan(config: RunConfig, data: Dataset, path: Path, nodes: list[Node], *, resume: bool = False,
         devices_auto: bool = False) -> ClusterPlan:
    """Check the grid against the data and the cluster and, when resuming, against the records in `path`:
    a task is done when a record of the same cell from the same machine (env.host) is there, whatever its
    status. As for a local run, a folder none of whose records is a task of this grid is refused."""
    runner.plan(config, data, path)  # the same checks of the grid against the data as a local run
    found, notes = tasks(config, nodes, devices_auto=devices_auto)
    if not resume:
        return ClusterPlan(tuple(found), notes=tuple(notes))
    if not path.is_file():
        raise UserError(f"--resume: {path} does not exist, so there is nothing to resume; give the --out of the "
                        f"run to resume, or drop --resume to start a new run")
    warnings: list[str] = []
    existing = read_records(path, warnings)
    keys = {t.key for t in found}
    done: dict[tuple[str, str], Record] = {}
    other = 0
    for r in existing:
        if record_key(r) in keys:
            done.setdefault(record_key(r), r)
        else:
            other += 1
    if existing and not done:
        raise UserError(f"--resume: none of the {len(existing)} records in {path} is a cell of this grid on these "
                        f"machines, so they come from other arguments or another cluster; give the same arguments "
                        f"as the run you are resuming, or drop --resume")
    return ClusterPlan(tuple(found), tuple(done.values()), other, tuple(warnings), tuple(notes))
