"""The grid on a Ray cluster: cells planned per node with clean reservations, one record per cell through one writer,
a killed driver resumed, a dead worker reported in one line, and no two cells timed at once on the same CPUs.

The planning tests need no Ray; the others share one local Ray instance (2 CPUs) and are marked slow."""

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench import cluster, clusterplan, signals, writer
from bench.api import run_config
from bench.cli import main
from bench.clusterplan import GPU_DEVICE, Node
from bench.config import CellConfig
from bench.errors import UserError
from bench.options import build_parser
from bench.records import Environment
from bench.reading import read_records
from bench.writer import RecordWriter
from tests.conftest import make_record, tiny_dataset
from tests.formats import write_fashion

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CPU_VM = Node("a" * 8, "cpu-vm", "10.0.0.1", cpus=2)
GPU_NODE = Node("b" * 8, "gpu-node", "10.0.0.2", cpus=16, gpus=2, gpu_type="A10G")


def config(*flags):
    return run_config(build_parser().parse_args(["run", "--dataset", "synthetic", *flags]))


def planned(*flags, nodes=(CPU_VM, GPU_NODE)):
    """The tasks of `bench run --executor ray FLAGS` on these nodes."""
    return clusterplan.tasks(config(*flags), list(nodes), devices_auto="--devices" not in flags)


# --- planning, no Ray ---------------------------------------------------------------------------------------


def test_every_node_gets_its_devices_and_auto_cells_reserve_their_whole_node():
    tasks, notes = planned("--pipeline", "tutorial,resident", "--batch-size", "4")  # --threads auto
    where = sorted((t.host, t.cell.device, t.cell.pipeline, t.num_cpus, t.num_gpus) for t in tasks)
    assert where == [("cpu-vm", "cpu", "resident", 2, 0), ("cpu-vm", "cpu", "tutorial", 2, 0),
                     ("gpu-node", "cpu", "resident", 16, 0), ("gpu-node", "cpu", "tutorial", 16, 0),
                     ("gpu-node", GPU_DEVICE, "resident", 16, 1), ("gpu-node", GPU_DEVICE, "tutorial", 16, 1)]
    assert {t.cell.threads for t in tasks} == {None}  # each probes up to its node's cores on the node
    assert notes == []


def test_cpu_cells_reserve_the_whole_node_and_gpu_cells_their_gpu_and_host_cores():
    tasks, _ = planned("--pipeline", "tutorial,resident", "--batch-size", "4", "--threads", "1,4", "--workers", "2")
    by = {(t.host, t.cell.device, t.cell.pipeline, t.cell.threads): (t.num_cpus, t.num_gpus) for t in tasks}
    assert by[("cpu-vm", "cpu", "resident", 1)] == (2, 0)  # one thread still keeps the node to itself
    assert by[("gpu-node", "cpu", "tutorial", 4)] == (16, 0)
    assert by[("gpu-node", GPU_DEVICE, "resident", 4)] == (4, 1)  # its threads
    assert by[("gpu-node", GPU_DEVICE, "tutorial", 4)] == (6, 1)  # and its DataLoader workers
    small = Node("c" * 8, "small-gpu", "10.0.0.3", cpus=2, gpus=1)
    tasks, _ = planned("--pipeline", "tutorial", "--batch-size", "4", "--threads", "8", nodes=[small])
    assert {(t.cell.device, t.num_cpus, t.num_gpus) for t in tasks} == {("cpu", 2, 0), (GPU_DEVICE, 2, 1)}


def test_named_devices_pick_kinds_and_any_cuda_index_means_the_gpu_ray_gives():
    tasks, _ = planned("--devices", "cpu")
    assert {t.cell.device for t in tasks} == {"cpu"} and {t.host for t in tasks} == {"cpu-vm", "gpu-node"}
    tasks, _ = planned("--devices", "cuda:1")
    assert {(t.host, t.cell.device) for t in tasks} == {("gpu-node", GPU_DEVICE)}
    with pytest.raises(UserError, match="--executor ray runs cpu and cuda cells, not mps"):
        planned("--devices", "cpu,mps")


def test_a_device_no_node_has_is_recorded_unavailable_and_the_rest_run():
    tasks, notes = planned("--devices", "cpu,cuda", "--batch-size", "4", "--pipeline", "resident", nodes=[CPU_VM])
    assert [(t.cell.device, t.node) for t in tasks] == [("cpu", CPU_VM), (GPU_DEVICE, None)]
    assert len(notes) == 1 and "no node of the Ray cluster has a GPU" in notes[0] and "cpu-vm (2 CPUs)" in notes[0]


@pytest.mark.parametrize("nodes,match", [
    ([CPU_VM, Node("d" * 8, "cpu-vm", "10.0.0.4", cpus=4)], "share the host name cpu-vm"),
    ([Node("e" * 8, "head", "10.0.0.5", cpus=0)], "no node of the Ray cluster can run a cell"),
])
def test_clusters_whose_records_could_not_be_told_apart_or_that_run_nothing_are_refused(nodes, match):
    with pytest.raises(UserError, match=match):
        planned(nodes=nodes)


def test_resume_matches_the_cell_and_the_machine_that_measured_it(tmp_path):
    cfg = config("--devices", "cpu", "--pipeline", "resident", "--batch-size", "4,8", "--threads", "1",
                 "--budget", "3steps")
    data = tiny_dataset()
    path = tmp_path / "records.jsonl"
    tasks, _ = clusterplan.tasks(cfg, [CPU_VM, GPU_NODE], devices_auto=False)
    writer = RecordWriter(tmp_path)
    on_vm = [t for t in tasks if t.host == "cpu-vm"]
    for t in on_vm:
        writer.append(replace(make_record(), cell=t.cell, env=Environment(host="cpu-vm")))
    plan = clusterplan.plan(cfg, data, path, [CPU_VM, GPU_NODE], resume=True)
    assert {t.host for t in plan.todo} == {"gpu-node"} and len(plan.todo) == 2 and len(plan.done) == 2
    assert "skipping 2 of 4 cells" in plan.describe(path)
    with pytest.raises(UserError, match="none of the 2 records"):
        clusterplan.plan(cfg, data, path, [GPU_NODE], resume=True)  # only other machines' records there


class StandInRef:
    def __init__(self, value):
        self.value = value


class StandInRay:
    """Just enough of Ray for cluster.run: a task runs, in this process, as it is submitted (so every task has
    finished by the first wait). The modules cluster.run imports from are stand-ins too: no Ray needed."""

    __version__ = "stand-in"

    def __init__(self, monkeypatch):
        self.cancelled = []
        self.util = SimpleNamespace(get_node_ip_address=lambda: CPU_VM.ip)
        exceptions = SimpleNamespace(RayError=type("RayError", (Exception,), {}))
        exceptions.RayTaskError = type("RayTaskError", (exceptions.RayError,), {})
        strategies = SimpleNamespace(NodeAffinitySchedulingStrategy=lambda node_id, soft: node_id)
        for name, module in (("ray", self), ("ray.exceptions", exceptions), ("ray.util", self.util),
                             ("ray.util.scheduling_strategies", strategies)):
            monkeypatch.setitem(sys.modules, name, module)

    def remote(self, **_):
        return lambda task: SimpleNamespace(options=lambda **_: SimpleNamespace(
            remote=lambda *args: StandInRef(task(*args))))

    def get_runtime_context(self):
        return SimpleNamespace(get_node_id=lambda: CPU_VM.node_id)

    def put(self, value):
        return value

    def wait(self, refs, num_returns, timeout):
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        return ref.value

    def cancel(self, ref, force):
        self.cancelled.append(ref)


def stand_in_run(monkeypatch, out, batches, **kw):
    """cluster.run of a 3-step grid on CPU_VM, through StandInRay."""
    cfg = config("--devices", "cpu", "--pipeline", "resident", "--batch-size", batches, "--threads", "1",
                 "--budget", "3steps", "--warmup", "1", "--eval", "none", "--workers", "0")
    tasks, _ = clusterplan.tasks(cfg, [CPU_VM], devices_auto=False)
    session = cluster.Session(StandInRay(monkeypatch), owned=False, connect_seconds=0.0)
    return cluster.run(session, clusterplan.ClusterPlan(tuple(tasks)), tiny_dataset(), RecordWriter(out),
                       breakdown=False, say=lambda line: None, **kw), session


def test_ctrl_c_as_a_record_is_written_keeps_that_record_whole_and_counted(tmp_path, monkeypatch):
    """The race the slow Ctrl-C test met in CI: the signal came after a record's bytes were written and before
    they were synced, and the record was cut back out of the file. It now waits until the record is counted."""
    def write_then_ctrl_c(fd, data):
        written = os.write(fd, data)
        os.kill(os.getpid(), signal.SIGINT)  # between this record's write and its sync
        return written

    monkeypatch.setattr(writer, "_write", write_then_ctrl_c)
    with signals.handled(), pytest.raises(cluster.ClusterInterrupted) as stop:
        stand_in_run(monkeypatch, tmp_path, "4,8,16")
    assert [r.cell.batch_size for r in read_records(tmp_path / "records.jsonl")] == [4]
    assert "1 of 3 cells are recorded" in str(stop.value), str(stop.value)
    assert "the 2 cells running or queued were cancelled and dropped" in str(stop.value)
    assert len(sys.modules["ray"].cancelled) == 2


def test_the_watts_flags_reach_the_cells_on_the_nodes(tmp_path, monkeypatch):
    """--cpu-watts under --executor ray was dropped on the way to the task: CPU cells recorded no estimate."""
    (record,), session = stand_in_run(monkeypatch, tmp_path, "4", cpu_watts=50.0)
    cpu = record.energy["cpu"]
    assert record.status == "ok" and record.env.ray.node_id == CPU_VM.node_id
    assert "--cpu-watts 50" in (cpu.source if cpu.method == "estimate" else cpu.note), cpu  # RAPL wins if read
    assert len(session.overheads) == 1 and session.overheads[0] >= 0


# --- the command line without a cluster ---------------------------------------------------------------------


def one_line(capsys, argv, match, code=2):
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err and match in err, err
    return err


def test_ray_not_installed_is_one_line_exit_2(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    one_line(capsys, ["run", "--executor", "ray", "--out", str(tmp_path / "o")], "needs Ray, which is not installed")
    assert not (tmp_path / "o").exists()


def test_an_unreachable_ray_address_is_one_line_exit_2_within_seconds(capsys, tmp_path):
    pytest.importorskip("ray", reason="ray is not installed (pip install -e \".[ray]\")")
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    one_line(capsys, ["run", "--executor", "ray", "--ray-address", f"127.0.0.1:{port}", "--out",
                      str(tmp_path / "o")], f"cannot reach the Ray cluster at 127.0.0.1:{port}")
    assert time.monotonic() - t0 < 10 and not (tmp_path / "o").exists()


@pytest.mark.parametrize("flags,match", [
    (["--ray-address", "10.0.0.1:6379"], "--ray-address is for --executor ray"),
    (["--executor", "slurm"], "invalid choice: 'slurm'"),
    (["--executor", "ray", "--ray-address", "head"], "cannot read --ray-address 'head'"),
])
def test_bad_executor_flags_are_one_line_exit_2(capsys, tmp_path, flags, match):
    one_line(capsys, ["run", *flags, "--out", str(tmp_path / "o")], match)


# --- on a local Ray instance --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ray_address():
    """One local Ray instance of 2 CPUs for every test here; its workers import this checkout's code."""
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install -e \".[ray]\")")
    import logging

    from bench import cluster

    context = ray.init(num_cpus=2, include_dashboard=False, runtime_env=cluster.runtime_env(),
                       logging_level=logging.ERROR, log_to_driver=False)
    yield context.address_info["gcs_address"]
    ray.shutdown()


@pytest.fixture
def fashion(tmp_path):
    folder = tmp_path / "fm"
    write_fashion(folder, gz=True, n_train=64, n_test=16)
    return folder


def ray_args(fashion, out, batches="4,8", widths="1,2", budget="3steps", *extra):
    return ["run", "--executor", "ray", "--dataset", "fashion-mnist", "--data-dir", str(fashion), "--devices", "cpu",
            "--pipeline", "resident", "--batch-size", batches, "--width", widths, "--budget", budget, "--warmup", "1",
            "--eval", "none", "--workers", "0", "--threads", "1", "--no-report", "--out", str(out), *extra]


def records_of(out: Path):
    return read_records(out / "records.jsonl")


def assert_one_record_per_cell(out, cells):
    keys = [r.key for r in records_of(out)]
    assert len(keys) == len(set(keys)) == cells, keys


@pytest.fixture(scope="module")
def grid_of_four(ray_address, tmp_path_factory):
    """A 4-cell grid of a second of training each, run once through `bench run --executor ray`."""
    folder = tmp_path_factory.mktemp("grid")
    write_fashion(folder / "fm", gz=True, n_train=64, n_test=16)
    out = folder / "out"
    code = main(ray_args(folder / "fm", out, "4,8", "1,2", "1s"))
    return code, out


@pytest.mark.slow
def test_a_four_cell_grid_gives_exactly_one_record_per_cell_from_the_worker_node(grid_of_four):
    import ray

    code, out = grid_of_four
    assert code == 0
    assert_one_record_per_cell(out, 4)
    node = ray.nodes()[0]
    for r in records_of(out):
        assert r.status == "ok" and r.profile, r.message  # trained, then the breakdown pass
        assert r.env.host == node["NodeManagerHostname"] and r.env.ray.node_id == node["NodeID"]
        assert r.env.cpu_threads_available and r.env.torch  # collected in the worker
        if os.geteuid() == 0:  # allowed to undo Ray's niceness 15 for workers
            assert r.env.ray.niceness == 0
        assert r.run_id == out.name


@pytest.mark.slow
def test_two_cells_are_never_timed_at_once_on_the_same_cpus(grid_of_four):
    """Each cell took one thread of the two CPUs, so Ray would have run two at once had a CPU cell not reserved
    the whole node; the timed windows (warm-up to last block) must not overlap."""
    _, out = grid_of_four
    windows = sorted((r.timing.started_unix, r.timing.finished_unix) for r in records_of(out))
    assert len(windows) == 4 and all(end - start >= 1 for start, end in windows)
    for (_, end), (next_start, _) in zip(windows, windows[1:]):
        assert end <= next_start, windows


def bench_process(*argv):
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.Popen([sys.executable, "-m", "bench", *argv], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_records(proc, path, count, timeout=180.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= count:
            return
        if proc.poll() is not None:
            pytest.fail(f"bench ended (status {proc.returncode}) before writing {count} records: {proc.stderr.read()}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"no {count} records in {path} after {timeout} s")


@pytest.mark.slow
def test_the_driver_killed_mid_grid_then_resume_gives_exactly_one_record_per_cell(ray_address, tmp_path, fashion):
    out = tmp_path / "out"
    grid = ray_args(fashion, out, "4,8", "1,2", "1s", "--ray-address", ray_address, "--quiet")
    proc = bench_process(*grid)
    wait_for_records(proc, out / "records.jsonl", 1)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    killed_with = len(records_of(out))
    assert 1 <= killed_with < 4
    resumed = bench_process(*grid, "--resume")
    _, err = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, err
    assert f"skipping {killed_with} of 4 cells" in err
    assert_one_record_per_cell(out, 4)


@pytest.mark.slow
def test_a_task_whose_worker_dies_gets_no_record_and_one_line_naming_cell_and_node(ray_address, capsys, tmp_path,
                                                                                    fashion, monkeypatch):
    import ray

    from bench.cluster import EXIT_CELL_FOR_TESTS

    out = tmp_path / "out"
    monkeypatch.setenv(EXIT_CELL_FOR_TESTS, "cpu resident bs8 w1 t1")  # that cell's worker calls os._exit(1)
    assert main(ray_args(fashion, out, "4,8", "1")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    host = ray.nodes()[0]["NodeManagerHostname"]
    died = [line for line in err if "has no record" in line]
    assert len(died) == 1, err
    assert died[0].startswith(f"bench: error: cpu resident bs8 w1 t1 on node {host} (")
    assert "has no record: WorkerCrashedError" in died[0] and died[0].endswith("--resume measures it again")
    assert err[-1].startswith("bench: error: 1 of 2 cells failed and have no record") and err[-1].endswith("--resume")
    assert "Traceback" not in "\n".join(err)
    assert [r.cell.batch_size for r in records_of(out)] == [4]
    monkeypatch.delenv(EXIT_CELL_FOR_TESTS)
    assert main(ray_args(fashion, out, "4,8", "1", "3steps", "--resume")) == 0
    assert_one_record_per_cell(out, 2)


@pytest.mark.slow
def test_ctrl_c_on_the_driver_cancels_the_tasks_and_exits_130_with_the_resume_command(ray_address, tmp_path,
                                                                                     fashion):
    import ray

    out = tmp_path / "out"
    proc = bench_process(*ray_args(fashion, out, "4,8,16", "1", "2s", "--ray-address", ray_address, "--quiet"))
    wait_for_records(proc, out / "records.jsonl", 1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("bench: interrupted: ") and "cancelled and dropped" in last and "Traceback" not in err
    assert f"resume with: {sys.executable} -m bench run --executor ray" in last and last.endswith(" --resume")
    assert 1 <= len(records_of(out)) < 3
    deadline = time.monotonic() + 30
    while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)  # the cancelled task's worker is gone: the node's CPUs are free again
    assert ray.available_resources().get("CPU", 0) == 2


NODE_DEATH = """
import sys, tempfile, threading, time
from pathlib import Path
from types import SimpleNamespace
from ray.cluster_utils import Cluster
import ray
from bench import cluster
from bench.clusterplan import ClusterPlan, Node, Task, reservation
from bench.config import Budget, CellConfig
from bench.reading import read_records
from bench.writer import RecordWriter
from tests.conftest import tiny_dataset

local = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
doomed = local.add_node(num_cpus=2)
ray.init(address=local.address, runtime_env=cluster.runtime_env(), log_to_driver=False)
session = cluster.connect(None)
found = next(n for n in session.nodes() if n.node_id == doomed.node_id)
node = Node(found.node_id, "doomed-node", found.ip, found.cpus)  # the head shares its host name
cells = [CellConfig(dataset="synthetic", device="cpu", pipeline="resident", batch_size=b, width=1.0, threads=1,
                    budget=Budget.parse(budget), lr=0.01, eval_points=0, warmup_steps=1, workers=0)
         for b, budget in ((4, "3steps"), (8, "60s"), (16, "3steps"))]
out = Path(tempfile.mkdtemp())
def kill_when_the_first_record_is_in():
    while not (out / "records.jsonl").exists() or not read_records(out / "records.jsonl"):
        time.sleep(0.1)
    time.sleep(3)  # the second cell is training
    local.remove_node(doomed, allow_graceful=False)
threading.Thread(target=kill_when_the_first_record_is_in, daemon=True).start()
try:
    cluster.run(session, ClusterPlan(tuple(Task(c, node, *reservation(c, node)) for c in cells)), tiny_dataset(),
                RecordWriter(out), say=lambda line: None, warn=lambda line: print("WARN", line))
except cluster.CellsFailed as stop:
    print("STOP", stop)
print("RECORDS", [r.cell.batch_size for r in read_records(out / "records.jsonl")])
ray.shutdown()
local.shutdown()
"""


@pytest.mark.slow
def test_a_node_that_dies_leaves_its_cells_without_records_each_named_in_one_line():
    """On a Ray cluster of its own (a head and a worker node on this machine), the node dies during the second of
    its three cells: the first keeps its record, the other two get none and one line each."""
    pytest.importorskip("ray", reason="ray is not installed (pip install -e \".[ray]\")")
    proc = subprocess.run([sys.executable, "-c", NODE_DEATH], cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT},
                          capture_output=True, text=True, timeout=240)
    lines = proc.stdout.splitlines()
    assert "RECORDS [4]" in lines, proc.stdout + proc.stderr[-3000:]
    warned = [line for line in lines if line.startswith("WARN ")]
    assert len(warned) == 2 and all("on node doomed-node (" in line and "has no record" in line for line in warned)
    assert any("bs8" in line and "NodeDiedError" in line for line in warned), warned
    assert "STOP 2 of 3 cells failed and have no record (each named above); 1 of 3 cells are recorded in" in \
        proc.stdout


@pytest.mark.slow
def test_a_cluster_that_refuses_the_driver_is_one_line_exit_2(ray_address, tmp_path):
    """The local instance uses Ray's token authentication; a driver without RAY_AUTH_MODE=token is refused, after
    Ray's client has retried for 20 s: one line, not Ray's retry log, and nothing written."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    proc = subprocess.run([sys.executable, "-m", "bench", "run", "--executor", "ray", "--ray-address", ray_address,
                           "--out", str(tmp_path / "o")], cwd=ROOT, env={**env, "PYTHONPATH": ROOT},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(f"bench: error: cannot connect to the Ray cluster "
                                                                   f"at {ray_address}"), proc.stderr
    assert "RAY_AUTH_MODE=token" in proc.stderr and not (tmp_path / "o").exists()
