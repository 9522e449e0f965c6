"""Machine identity: a host name together with the hardware; two machines that share a name stay two."""

from __future__ import annotations

from dataclasses import replace

from bench import machines, pairing
from bench.records import Environment, Gpu
from bench.results import to_frame
from tests import reportdata as rd

H200_HOST = Environment(host="vm", cpu_model="Intel(R) Xeon(R) Processor", cpu_logical_cores=16,
                        gpus=(Gpu(device="cuda:0", name="NVIDIA H200"),))
SMALL_VM = Environment(host="vm", machine_id="f234f6ebe33c", cpu_model="AMD EPYC 7B13", cpu_logical_cores=2,
                       memory_bytes=24 * 2**30)


def on(env: Environment, device: str, batch: int = 64):
    r = rd.record(device, "resident", batch, 1)
    return replace(r, env=env)


def test_two_machines_with_one_host_name_stay_two():
    df = to_frame([on(H200_HOST, "cuda:0"), on(H200_HOST, "cpu"), on(SMALL_VM, "cpu")])
    assert df["machine"].nunique() == 2
    assert set(df["machine"]) == {"vm (16 cores, H200)", "vm (2 cores)"}
    p = pairing.accelerator_pairs(pairing.pairs(df))
    local = p[~p["cross_machine"]]
    assert len(local) == 1 and local.iloc[0]["base_machine"] == "vm (16 cores, H200)"
    assert df[df["device"] == "cpu"].groupby("machine").size().tolist() == [1, 1]


def test_one_machine_across_runs_is_one_machine():
    a, b = on(SMALL_VM, "cpu", 4), replace(on(SMALL_VM, "cpu", 64), run_id="another-run")
    assert to_frame([a, b])["machine"].tolist() == ["vm", "vm"]


def test_names_add_only_what_tells_machines_apart():
    same_cores = [machines.fingerprint({"host": "vm", "cpu_model": m, "cpu_logical_cores": 8}) for m in ("A", "B")]
    assert sorted(machines.names(same_cores).values()) == ["vm (8 cores, A)", "vm (8 cores, B)"]
    twins = [machines.fingerprint({"host": "vm", "machine_id": i, "cpu_model": "A", "cpu_logical_cores": 8})
             for i in ("111111aaaa", "222222bbbb")]
    assert sorted(machines.names(twins).values()) == ["vm (8 cores, id 111111)", "vm (8 cores, id 222222)"]
    # a pytest-benchmark document says nothing of memory or install id: the name says what it lacks
    known = machines.fingerprint({"host": "vm", "machine_id": "111111aaaa", "cpu_model": "A", "cpu_logical_cores": 8,
                                  "memory_bytes": 126 * 2**30})
    unknown = machines.fingerprint({"host": "vm", "cpu_model": "A", "cpu_logical_cores": 8})
    assert sorted(machines.names([known, unknown]).values()) == ["vm (8 cores, 126 GiB)", "vm (8 cores, memory unknown)"]
    assert machines.names([machines.fingerprint({"host": "laptop"})]) == {("laptop", None, None, None, None, ()):
                                                                          "laptop"}
