"""The grid on a Ray cluster, each cell a task in a fresh worker on its node; the only module that imports ray."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from bench import runner, signals
from bench.clusterplan import ClusterPlan, Node, Task
from bench.config import CellConfig
from bench.data import Dataset
from bench.errors import UserError, one_line
from bench.records import Git, RayWorker, Record
from bench.writer import RecordWriter

EXIT_CELL_FOR_TESTS = "BENCH_TEST_EXIT_CELL"  # tests only: a cell label whose worker dies (os._exit) on start
PACKAGES = ("bench", "model")  # shipped to every worker (runtime_env py_modules): every node runs this code
CONNECT_TIMEOUT = 5.0  # seconds to reach --ray-address before saying it is unreachable


class Session:
    """A connection to a Ray cluster for one run; close() shuts down only a Ray instance it started itself."""

    def __init__(self, ray, owned: bool, connect_seconds: float):
        self.ray, self.owned = ray, owned
        self.connect_seconds = connect_seconds  # ray.init, including shipping the code (start-up per run)
        self.put_seconds = 0.0  # shipping the dataset into the object store
        self.overheads: list[float] = []  # per finished cell: seconds of the task that were not measure()
        self.niced: set[str] = set()  # hosts whose cells ran at a niceness above 0 (Ray's default is 15)

    def nodes(self) -> list[Node]:
        out = []
        for n in self.ray.nodes():
            if not n.get("Alive"):
                continue
            res = n.get("Resources", {})
            gpu_type = next((k.split(":", 1)[1] for k in res if k.startswith("accelerator_type:")), "")
            out.append(Node(n["NodeID"], n["NodeManagerHostname"], n["NodeManagerAddress"], int(res.get("CPU", 0)),
                            int(res.get("GPU", 0)), gpu_type))
        return out

    def close(self) -> None:
        if self.owned and self.ray.is_initialized():
            self.ray.shutdown()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def runtime_env() -> dict:
    """The code every worker imports: this checkout's packages, whatever is installed on the node."""
    root = Path(__file__).resolve().parent.parent
    return {"py_modules": [str(root / p) for p in PACKAGES], "excludes": ["__pycache__"]}


def connect(address: str | None) -> Session:
    """Join the Ray instance this process already has, or the cluster at `address` (None: RAY_ADDRESS, the
    cluster `ray start` began on this machine, or else a new local instance). Bad input is one UserError."""
    target = address if address is not None else os.environ.get("RAY_ADDRESS") or None
    host_port = _host_port(target) if target else None  # a malformed address is bad input, Ray or not
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray needs Ray, which is not installed: pip install -e \".[ray]\" "
                        "(or pip install \"ray>=2.9\"), or use --executor local") from None
    if host_port is not None:
        _check_reachable(target, *host_port)
    t0 = time.perf_counter()
    if ray.is_initialized():  # a caller (a test, a notebook) joined Ray already: its session is ours to use
        return Session(ray, owned=False, connect_seconds=0.0)
    # Ray starts its workers at niceness 15, so anything else on a node would take CPU from a timed cell first;
    # a Ray instance started here runs them at the niceness of a local run (ray start reads the same variable).
    os.environ.setdefault("RAY_worker_niceness", "0")
    try:
        with _stderr_muted():
            ray.init(address=address, runtime_env=runtime_env(), include_dashboard=False,
                     logging_level=logging.ERROR, log_to_driver=False)
    except (ConnectionError, ValueError, RuntimeError, TimeoutError, SystemExit) as exc:
        raise UserError(f"cannot connect to the Ray cluster at {address or 'this machine'} ({one_line(exc)}): check "
                        f"that it runs (`ray status` on its head) and, if it uses token authentication, set "
                        f"RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN or ~/.ray/auth_token)") from None
    return Session(ray, owned=True, connect_seconds=time.perf_counter() - t0)


@contextlib.contextmanager
def _stderr_muted():
    """Ray's C++ client writes a line a second to stderr while a cluster refuses it (a missing token, say);
    the one line that matters is ours."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _host_port(address: str) -> tuple[str, int] | None:
    """HOST and PORT of a cluster address; None for what Ray resolves itself (auto, local, a URL)."""
    if address in ("auto", "local") or "://" in address:
        return None
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"cannot read --ray-address {address!r}: give the head node's HOST:PORT, e.g. 10.0.0.1:6379")
    return host.strip("[]"), int(port)


def _check_reachable(address: str, host: str, port: int) -> None:
    """Ray waits two minutes, then exits, for an address nobody answers; say so in seconds instead."""
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise UserError(f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}): start it with "
                        f"`ray start --head` there, or check the address and firewall") from None


class ClusterInterrupted(runner.Interrupted):
    """Ctrl-C on the driver: the tasks in flight are cancelled and get no record."""

    def __init__(self, in_flight: list[Task], finished: int, count: int, path: Path):
        self.in_flight, self.finished, self.count, self.path = in_flight, finished, count, path
        Exception.__init__(self, str(self))

    def __str__(self) -> str:
        flight = f"the {len(self.in_flight)} cells running or queued were cancelled and dropped" if self.in_flight \
            else "no cell was running"
        return f"interrupted: {flight}; {self.kept()}"


class CellsFailed(runner.CellFailed):
    """Cells whose worker or node died, or whose device failed: no record, so --resume measures them again."""

    def __init__(self, failed: list[str], finished: int, count: int, path: Path):
        self.failed, self.finished, self.count, self.path = failed, finished, count, path
        Exception.__init__(self, str(self))

    def __str__(self) -> str:
        return f"{len(self.failed)} of {self.count} cells failed and have no record (each named above); {self.kept()}"


def _cell(cell: dict, data: Dataset, run_id: str, breakdown: bool, git: Git, watts: tuple):
    """The Ray task: one cell in a fresh worker process (max_calls=1), its environment collected on its node;
    watts are the driver's --cpu-watts and --gpu-watts, used on a node whose counters cannot be read."""
    import ray

    from bench.env import environment

    c = CellConfig.from_dict(cell)
    if os.environ.get(EXIT_CELL_FOR_TESTS) == c.label:
        os._exit(1)
    with contextlib.suppress(OSError):  # back to a local run's priority where allowed (root, CAP_SYS_NICE)
        os.setpriority(os.PRIO_PROCESS, 0, min(0, os.getpriority(os.PRIO_PROCESS, 0)))
    # the object store hands out read-only views; a private copy is what a local run trains from
    data = replace(data, **{f: np.array(getattr(data, f)) for f in ("train_images", "train_labels",
                                                                     "test_images", "test_labels")})
    context = ray.get_runtime_context()
    env = replace(environment(), git=git,  # the code is the driver's (shipped as py_modules), so is its commit
                  ray=RayWorker(version=ray.__version__, node_id=context.get_node_id(),
                                node_ip=ray.util.get_node_ip_address(),
                                niceness=os.getpriority(os.PRIO_PROCESS, 0)))
    started = time.time()
    record = runner.measure(c, data, env, run_id, breakdown=breakdown, cpu_watts=watts[0], gpu_watts=watts[1])
    return record, {"process_started": _process_started(), "measure_started": started,
                    "measure_finished": time.time()}


def _process_started() -> float:
    """When this process began, in time.time() seconds (psutil's create_time can be a second off: it counts
    from the boot time in whole seconds); where /proc is missing, now."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime, in clock ticks
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")
        return time.time() - age
    except (OSError, ValueError, IndexError, AttributeError):
        return time.time()


def run(session: Session, plan: ClusterPlan, data: Dataset, writer: RecordWriter, *, breakdown: bool = True,
        cpu_watts: float | None = None, gpu_watts: float | None = None, say: Callable[[str], None] = print,
        warn: Callable[[str], None] = print) -> list[Record]:
    """Submit every task of the plan, then append each record the moment it arrives; returns the new records.

    A task whose worker or node dies, or whose cell meets a fault (a dead DataLoader worker, a lost device), gets
    no record and one `warn` line naming cell and node; the other cells go on, and CellsFailed is raised at the
    end. Ctrl-C cancels the tasks in flight and raises ClusterInterrupted; a record is written with both signals
    held (bench.signals.deferred), so one that arrives as Ctrl-C comes lands whole and counted, or not at all.
    `say` hears one line per record. cpu_watts and gpu_watts reach every node, as a local run's do its machine.
    """
    from bench.env import environment
    from ray.exceptions import RayError, RayTaskError

    ray, run_id, count, records, failed = session.ray, writer.dir.name, len(plan.tasks), [], []
    driver_env = environment()

    def land(record: Record) -> int:
        """Append a record and count it, both or neither (a Ctrl-C waits); the cells recorded so far."""
        with signals.deferred():
            writer.append(record)
            records.append(record)
        return len(plan.done) + len(records)

    for task in [t for t in plan.todo if t.node is None]:  # device kinds no node has: recorded here, as locally
        land(replace(runner.unavailable(task.cell, data, driver_env, run_id),
                     message=f"{task.cell.device} is on no node of the Ray cluster"))
    pending: dict = {}
    try:
        _submit(session, [t for t in plan.todo if t.node is not None], data, pending,
                (run_id, breakdown, driver_env.git, (cpu_watts, gpu_watts)))
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)  # a short wait keeps Ctrl-C prompt
            for ref in ready:
                task = pending.pop(ref)
                try:
                    record, times = ray.get(ref)
                except RayTaskError as exc:
                    if not isinstance(exc.cause, (RuntimeError, OSError)):  # a bug: stop, as a local run does
                        _cancel(ray, pending)
                        raise exc.cause from None
                    failed.append(_failure(task, exc.cause, warn))
                    continue
                except RayError as exc:  # the worker died (WorkerCrashedError), or its node (NodeDiedError)
                    failed.append(_failure(task, exc, warn))
                    continue
                finished = land(record)
                _arrived(session, task, record, times)
                say(f"[{finished}/{count}] {task.label}: {record.status}"
                    f"{' (' + record.message + ')' if record.message else ''}")
    except KeyboardInterrupt:
        in_flight = list(pending.values())
        _cancel(ray, pending)
        raise ClusterInterrupted(in_flight, len(plan.done) + len(records), count, writer.path) from None
    if failed:
        raise CellsFailed(failed, len(plan.done) + len(records), count, writer.path)
    return records


def _submit(session: Session, tasks: list[Task], data: Dataset, pending: dict, args: tuple) -> None:
    """Ship the data once, then submit each task to its node, filling pending (ref -> task) as it goes, so that a
    Ctrl-C meanwhile cancels what was submitted. args: _cell's arguments after the cell and the data."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    ray = session.ray
    remote = ray.remote(max_calls=1, max_retries=0)(_cell)  # a fresh worker per cell; a crash is not retried
    test_exit = os.environ.get(EXIT_CELL_FOR_TESTS)
    t0 = time.perf_counter()
    data_ref = ray.put(data)  # once per run; each node's object store fetches it once
    session.put_seconds = time.perf_counter() - t0
    for task in tasks:
        options = dict(num_cpus=task.num_cpus, num_gpus=task.num_gpus,
                       scheduling_strategy=NodeAffinitySchedulingStrategy(task.node.node_id, soft=False))
        if test_exit:  # merged with the job's runtime_env (the shipped code)
            options["runtime_env"] = {"env_vars": {EXIT_CELL_FOR_TESTS: test_exit}}
        pending[remote.options(**options).remote(task.cell.to_dict(), data_ref, *args)] = task


def _arrived(session: Session, task: Task, record: Record, times: dict) -> None:
    """Note what Ray added to this cell (all of the task but measure()) and whether its worker was niced."""
    session.overheads.append(times["measure_started"] - times["process_started"]
                             + time.time() - times["measure_finished"])
    if record.env.ray and record.env.ray.niceness > 0:
        session.niced.add(task.host)


def _failure(task: Task, exc: BaseException, warn: Callable[[str], None]) -> str:
    line = (f"{task.cell.label} on node {task.host} ({task.node.ip}) has no record: "
            f"{one_line(exc).rstrip('.')}; --resume measures it again")
    warn(line)
    return line


def _cancel(ray, pending: dict) -> None:
    for ref in pending:
        ray.cancel(ref, force=True)


def summary(session: Session) -> list[str]:
    """What Ray added to this run, start-up and per cell; and whether cells ran at a lowered priority."""
    per_cell = f"{statistics.median(session.overheads):.1f} s per cell (median of {len(session.overheads)}: " \
        f"worker start, imports, data, returning the record)" if session.overheads else "no cell finished"
    startup = session.connect_seconds + session.put_seconds
    lines = [f"Ray: {startup:.1f} s start-up (connect {session.connect_seconds:.1f} s, data "
             f"{session.put_seconds:.1f} s); {per_cell}"]
    if session.niced:
        lines.append(f"bench: warning: cells on {', '.join(sorted(session.niced))} ran at Ray's worker niceness, so "
                     f"other programs there took CPU from them first; start those nodes' Ray with "
                     f"RAY_worker_niceness=0 (see the README)")
    return lines
