"""Energy counters and the meter, driven by fakes: a sysfs tree under tmp_path, a fake pynvml, a fake clock."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from bench import energy
from bench.energy import Estimate, Meter, Missing, NvmlCounter, RaplCounter, Unavailable, meter_for

REPO = Path(__file__).resolve().parents[1]


class FakeClock:
    """Seconds that advance only when a test says so."""

    def __init__(self, t: float = 100.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def zone(root: Path, dirname: str, name: str, energy_uj: int, max_uj: int = 262_143_328_850) -> Path:
    """One powercap zone as Linux lays it out: /sys/class/powercap/<dirname>/{name,energy_uj,max_energy_range_uj}."""
    d = root / dirname
    d.mkdir(parents=True, exist_ok=True)
    (d / "name").write_text(name + "\n")
    (d / "energy_uj").write_text(f"{energy_uj}\n")
    (d / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return d


def set_uj(root: Path, dirname: str, energy_uj: int) -> None:
    (root / dirname / "energy_uj").write_text(f"{energy_uj}\n")


def window(meter: Meter, clock: FakeClock, seconds: float, during=lambda: None) -> None:
    meter.start()
    clock.t += seconds
    during()
    meter.stop()


# --- RAPL -------------------------------------------------------------------------------------------------------

def test_a_window_gives_the_counter_difference_in_joules(tmp_path):
    zone(tmp_path, "intel-rapl:0", "package-0", 1_000_000)
    clock = FakeClock()
    meter = meter_for("cpu", powercap=tmp_path, clock=clock)
    window(meter, clock, 2.0, lambda: set_uj(tmp_path, "intel-rapl:0", 3_500_000))
    cpu = meter.result()["cpu"]
    assert cpu["method"] == "rapl"
    assert cpu["joules"] == pytest.approx(2.5)
    assert cpu["seconds"] == pytest.approx(2.0)
    assert cpu["watts"] == pytest.approx(1.25)
    assert cpu["windows"] == 1
    assert "package-0" in cpu["source"] and cpu["reason"] == "" and cpu["note"] == ""


def test_windows_are_summed_and_what_happens_between_them_is_not(tmp_path):
    zone(tmp_path, "intel-rapl:0", "package-0", 0)
    clock = FakeClock()
    meter = meter_for("cpu", powercap=tmp_path, clock=clock)
    window(meter, clock, 0.5, lambda: set_uj(tmp_path, "intel-rapl:0", 1_000_000))
    set_uj(tmp_path, "intel-rapl:0", 9_000_000)  # an evaluation between blocks: off the clock, not counted
    clock.t += 3.0
    window(meter, clock, 0.5, lambda: set_uj(tmp_path, "intel-rapl:0", 11_000_000))
    cpu = meter.result()["cpu"]
    assert cpu["window_joules"] == pytest.approx([1.0, 2.0])
    assert cpu["joules"] == pytest.approx(3.0)
    assert cpu["seconds"] == pytest.approx(1.0)
    assert cpu["windows"] == 2


def test_a_counter_that_wraps_is_corrected_by_its_range(tmp_path):
    zone(tmp_path, "intel-rapl:0", "package-0", 990, max_uj=1000)
    clock = FakeClock()
    meter = meter_for("cpu", powercap=tmp_path, clock=clock)
    window(meter, clock, 1e-7, lambda: set_uj(tmp_path, "intel-rapl:0", 10))
    assert meter.result()["cpu"]["joules"] == pytest.approx(20e-6)  # 990 -> 1000 = 0 -> 10


def test_each_package_wraps_on_its_own(tmp_path):
    zone(tmp_path, "intel-rapl:0", "package-0", 990, max_uj=1000)
    zone(tmp_path, "intel-rapl:1", "package-1", 100, max_uj=5000)
    counter = RaplCounter(tmp_path)
    start = counter.read()
    set_uj(tmp_path, "intel-rapl:0", 10)
    set_uj(tmp_path, "intel-rapl:1", 400)
    assert counter.joules(start, counter.read(), 1.0) == pytest.approx((20 + 300) / 1e6)


def test_a_window_long_enough_to_hide_a_second_wrap_says_so(tmp_path):
    zone(tmp_path, "intel-rapl:0", "package-0", 0, max_uj=10_000_000)  # 10 J: 0.01 s at 1000 W
    clock = FakeClock()
    meter = meter_for("cpu", powercap=tmp_path, clock=clock)
    window(meter, clock, 0.5, lambda: set_uj(tmp_path, "intel-rapl:0", 2_000_000))
    cpu = meter.result()["cpu"]
    assert cpu["joules"] == pytest.approx(2.0)
    assert "wrap twice" in cpu["note"]


def test_packages_are_summed_and_subdomains_psys_and_mmio_ignored(tmp_path):
    (tmp_path / "intel-rapl").mkdir()  # the control type folder itself, not a zone
    zone(tmp_path, "intel-rapl:0", "package-0", 0)
    zone(tmp_path, "intel-rapl:0:0", "core", 0)  # inside package-0
    zone(tmp_path, "intel-rapl:0:1", "dram", 0)
    zone(tmp_path, "intel-rapl:1", "package-1", 0)
    zone(tmp_path, "intel-rapl:2", "psys", 0)  # the platform: includes the packages
    zone(tmp_path, "intel-rapl-mmio:0", "package-0", 0)  # package-0 again, through MMIO
    clock = FakeClock()
    meter = meter_for("cpu", powercap=tmp_path, clock=clock)

    def work():
        for d in ("intel-rapl:0:0", "intel-rapl:0:1", "intel-rapl:2", "intel-rapl-mmio:0"):
            set_uj(tmp_path, d, 50_000_000)
        set_uj(tmp_path, "intel-rapl:0", 3_000_000)
        set_uj(tmp_path, "intel-rapl:1", 4_000_000)

    window(meter, clock, 1.0, work)
    cpu = meter.result()["cpu"]
    assert cpu["joules"] == pytest.approx(7.0)
    assert cpu["source"].startswith("RAPL package-0, package-1 ")


def test_packages_are_taken_in_numeric_order(tmp_path):
    for i in (10, 2, 1, 0):
        zone(tmp_path, f"intel-rapl:{i}", f"package-{i}", 0)
    assert RaplCounter(tmp_path).source.startswith("RAPL package-0, package-1, package-2, package-10 ")


def permission_denied(path: Path) -> str:
    if path.name == "energy_uj":
        raise PermissionError(13, "Permission denied", str(path))
    return path.read_text()


def test_permission_denied_is_unavailable_with_the_fix(tmp_path, monkeypatch):
    zone(tmp_path, "intel-rapl:0", "package-0", 5)
    with pytest.raises(Unavailable) as e:
        RaplCounter(tmp_path, read_text=permission_denied)
    reason = str(e.value)
    assert "intel-rapl:0/energy_uj" in reason and "root" in reason and "CVE-2020-8694" in reason
    assert "chmod a+r" in reason and "\n" not in reason
    monkeypatch.setattr(energy, "RaplCounter", functools.partial(RaplCounter, read_text=permission_denied))
    cpu = meter_for("cpu", powercap=tmp_path).result()["cpu"]
    assert cpu["method"] == "unavailable" and cpu["joules"] is None and cpu["reason"] == reason


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file whatever its mode")
def test_a_root_only_energy_file_is_unavailable(tmp_path):
    zone(tmp_path, "intel-rapl:0", "package-0", 5)
    (tmp_path / "intel-rapl:0" / "energy_uj").chmod(0o000)
    with pytest.raises(Unavailable, match="root"):
        RaplCounter(tmp_path)


def test_no_powercap_folder_is_unavailable_with_the_reason(tmp_path):
    clock = FakeClock()
    meter = meter_for("cpu", powercap=tmp_path / "absent", clock=clock)
    window(meter, clock, 1.0)
    cpu = meter.result()["cpu"]
    assert cpu == {"method": "unavailable", "joules": None, "seconds": 1.0, "watts": None, "windows": 1,
                   "window_joules": [], "source": "",
                   "reason": f"no RAPL counters at {tmp_path / 'absent'} (a virtual machine usually has none)",
                   "note": ""}


def test_an_unlistable_powercap_folder_is_unavailable(tmp_path, monkeypatch):
    def denied(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "iterdir", denied)
    with pytest.raises(Unavailable, match=f"cannot list {tmp_path}: Permission denied"):
        RaplCounter(tmp_path)


def test_powercap_without_package_zones_is_unavailable(tmp_path):
    zone(tmp_path, "intel-rapl:0", "psys", 0)
    zone(tmp_path, "dtpm:0", "soc", 0)
    with pytest.raises(Unavailable, match="no RAPL package zones"):
        RaplCounter(tmp_path)


def test_a_counter_that_is_not_a_number_is_unavailable(tmp_path):
    zone(tmp_path, "intel-rapl:0", "package-0", 0)
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("garbage\n")
    with pytest.raises(Unavailable, match="not a count of microjoules"):
        RaplCounter(tmp_path)


def test_a_counter_that_fails_mid_run_loses_its_figure_not_the_run(tmp_path):
    zone(tmp_path, "intel-rapl:0", "package-0", 0)
    clock = FakeClock()
    meter = meter_for("cpu", powercap=tmp_path, clock=clock)
    window(meter, clock, 1.0, lambda: set_uj(tmp_path, "intel-rapl:0", 1_000_000))
    window(meter, clock, 1.0, lambda: (tmp_path / "intel-rapl:0" / "energy_uj").unlink())
    cpu = meter.result()["cpu"]
    assert cpu["method"] == "unavailable" and cpu["joules"] is None and cpu["window_joules"] == []
    assert cpu["reason"].startswith("stopped after 1 windows: cannot read ")
    assert "package-0" in cpu["source"]


# --- NVML -------------------------------------------------------------------------------------------------------

def fake_pynvml(energy_mj=(1000,), init_error=None, read_error=None, name="NVIDIA H200", log=None, gpus=8):
    """A stand-in for nvidia-ml-py's pynvml: the calls bench.energy makes, with NVML's error classes and codes."""
    m = types.ModuleType("pynvml")
    m.NVML_ERROR_NOT_SUPPORTED, m.NVML_ERROR_LIBRARY_NOT_FOUND = 3, 12
    messages = {2: "Invalid Argument", 3: "Not Supported", 12: "NVML Shared Library Not Found"}

    class NVMLError(Exception):
        def __init__(self, value):
            self.value = value

        def __str__(self):
            return messages[self.value]

    m.NVMLError = NVMLError
    readings = iter(energy_mj)
    log = log if log is not None else []
    m.calls = log

    def init():
        log.append("init")
        if init_error is not None:
            raise NVMLError(init_error)

    def read(handle):
        log.append(("read", handle))
        if read_error is not None:
            raise NVMLError(read_error)
        return next(readings)

    m.nvmlInit = init
    m.nvmlShutdown = lambda: log.append("shutdown")

    def handle(i):
        if i >= gpus:
            raise NVMLError(2)
        return f"handle{i}"

    m.nvmlDeviceGetHandleByIndex = handle
    m.nvmlDeviceGetHandleByUUID = lambda u: f"handle-{u}"
    m.nvmlDeviceGetName = lambda h: name.encode()  # older nvidia-ml-py returns bytes
    m.nvmlDeviceGetTotalEnergyConsumption = read
    return m


@pytest.fixture
def no_powercap(monkeypatch, tmp_path):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return tmp_path / "no-powercap"


def test_nvml_window_in_joules_with_a_synchronize_before_each_read(monkeypatch, no_powercap):
    log = []
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(energy_mj=(5000, 5000, 8000), log=log))
    clock = FakeClock()
    meter = meter_for("cuda:0", synchronize=lambda: log.append("sync"), powercap=no_powercap, clock=clock)
    window(meter, clock, 2.0)
    result = meter.result()
    gpu = result["cuda:0"]
    assert gpu["method"] == "nvml" and gpu["joules"] == pytest.approx(3.0) and gpu["watts"] == pytest.approx(1.5)
    assert gpu["source"] == "NVML total energy, GPU 0 (NVIDIA H200)" and gpu["note"] == ""
    # the probe read at construction, then each window read follows a synchronize
    assert log == ["init", ("read", "handle0"), "sync", ("read", "handle0"), "sync", ("read", "handle0")]
    assert result["cpu"]["method"] == "unavailable"  # the host's packages: no powercap here
    meter.close()
    assert log[-1] == "shutdown"


def test_a_short_nvml_total_is_flagged_as_coarse(monkeypatch, no_powercap):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(energy_mj=(0, 0, 100)))
    clock = FakeClock()
    meter = meter_for("cuda:0", synchronize=lambda: None, powercap=no_powercap, clock=clock)
    window(meter, clock, 0.3)
    gpu = meter.result()["cuda:0"]
    assert gpu["joules"] == pytest.approx(0.1) and "20-100 ms" in gpu["note"] and "0.30 s" in gpu["note"]


def test_nvml_not_installed_is_unavailable_and_nothing_else_changes(monkeypatch, no_powercap):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    clock = FakeClock()
    meter = meter_for("cuda:0", synchronize=lambda: None, powercap=no_powercap, clock=clock)
    window(meter, clock, 2.0)
    result = meter.result()
    assert set(result) == {"cuda:0", "cpu"}
    assert result["cuda:0"]["method"] == "unavailable" and result["cuda:0"]["joules"] is None
    assert result["cuda:0"]["reason"] == "nvidia-ml-py is not installed (pip install nvidia-ml-py)"
    assert result["cuda:0"]["seconds"] == pytest.approx(2.0)
    meter.close()  # nothing to shut down


def test_nvml_without_a_driver_is_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(init_error=12))
    with pytest.raises(Unavailable) as e:
        NvmlCounter(0)
    assert str(e.value) == "NVML could not start (NVML Shared Library Not Found): no NVIDIA driver loaded?"


def test_a_gpu_without_the_energy_counter_is_unavailable_and_nvml_is_shut_down(monkeypatch):
    module = fake_pynvml(read_error=3, name="Tesla P100")
    monkeypatch.setitem(sys.modules, "pynvml", module)
    with pytest.raises(Unavailable) as e:
        NvmlCounter(0, environ={})
    assert "Tesla P100" in str(e.value) and "not supported" in str(e.value) and "Volta" in str(e.value)
    assert "--gpu-watts" in str(e.value)
    assert module.calls.count("init") == module.calls.count("shutdown") == 1


def test_a_gpu_nvml_cannot_open_is_unavailable_and_nvml_is_shut_down(monkeypatch):
    module = fake_pynvml(gpus=1)
    monkeypatch.setitem(sys.modules, "pynvml", module)
    with pytest.raises(Unavailable) as e:
        NvmlCounter(5, environ={})
    assert str(e.value) == "NVML cannot open GPU 5: Invalid Argument"
    assert module.calls == ["init", "shutdown"]


@pytest.mark.parametrize("visible,index,handle", [
    ("3,1", 1, "handle1"), ("3,1", 0, "handle3"), ("GPU-abc,2", 0, "handle-GPU-abc"), (None, 1, "handle1"),
])
def test_cuda_visible_devices_maps_to_nvml_devices(monkeypatch, visible, index, handle):
    module = fake_pynvml()
    monkeypatch.setitem(sys.modules, "pynvml", module)
    NvmlCounter(index, environ={} if visible is None else {"CUDA_VISIBLE_DEVICES": visible})
    assert ("read", handle) in module.calls


def test_a_gpu_hidden_by_cuda_visible_devices_is_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml())
    with pytest.raises(Unavailable, match="cuda:2 is not among CUDA_VISIBLE_DEVICES=0,1"):
        NvmlCounter(2, environ={"CUDA_VISIBLE_DEVICES": "0,1"})


def test_a_uuid_from_torch_names_the_gpu(monkeypatch, no_powercap):
    module = fake_pynvml(energy_mj=(0, 0, 1000))
    monkeypatch.setitem(sys.modules, "pynvml", module)
    meter = meter_for("cuda:0", synchronize=lambda: None, gpu_uuid="2d7a-11", powercap=no_powercap)
    assert ("read", "handle-GPU-2d7a-11") in module.calls
    assert meter.result()["cuda:0"]["source"] == "NVML total energy, GPU GPU-2d7a-11 (NVIDIA H200)"


# --- estimates and the choice of source ---------------------------------------------------------------------------

def test_cpu_watts_gives_an_estimate_that_says_why(tmp_path):
    clock = FakeClock()
    meter = meter_for("cpu", cpu_watts=65, powercap=tmp_path / "absent", clock=clock)
    window(meter, clock, 1.5)
    window(meter, clock, 0.5)
    cpu = meter.result()["cpu"]
    assert cpu["method"] == "estimate" and cpu["joules"] == pytest.approx(130.0) and cpu["watts"] == pytest.approx(65)
    assert cpu["window_joules"] == pytest.approx([97.5, 32.5]) and cpu["source"] == "--cpu-watts 65"
    assert cpu["reason"].startswith("user-supplied 65 W (--cpu-watts) x seconds, not measured: no RAPL counters at")


def test_a_readable_counter_wins_over_the_users_watts_and_says_so(tmp_path):
    zone(tmp_path, "intel-rapl:0", "package-0", 0)
    clock = FakeClock()
    meter = meter_for("cpu", cpu_watts=65, powercap=tmp_path, clock=clock)
    window(meter, clock, 2.0, lambda: set_uj(tmp_path, "intel-rapl:0", 40_000_000))
    cpu = meter.result()["cpu"]
    assert cpu["method"] == "rapl" and cpu["joules"] == pytest.approx(40.0)
    assert cpu["note"] == "--cpu-watts 65 not used: measured by rapl (130 J if used)"


def test_gpu_watts_estimates_the_gpu_but_cpu_watts_is_not_applied_to_its_host(monkeypatch, no_powercap):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    clock = FakeClock()
    meter = meter_for("cuda:0", synchronize=lambda: None, cpu_watts=65, gpu_watts=300, powercap=no_powercap,
                      clock=clock)
    window(meter, clock, 2.0)
    result = meter.result()
    assert result["cuda:0"]["method"] == "estimate" and result["cuda:0"]["joules"] == pytest.approx(600.0)
    assert "nvidia-ml-py is not installed" in result["cuda:0"]["reason"]
    assert result["cpu"]["method"] == "unavailable" and result["cpu"]["joules"] is None


def test_mps_has_no_counter_but_takes_gpu_watts(no_powercap):
    clock = FakeClock()
    meter = meter_for("mps", synchronize=lambda: None, powercap=no_powercap, clock=clock)
    assert meter.result()["mps"]["method"] == "unavailable" and "Apple" in meter.result()["mps"]["reason"]
    meter = meter_for("mps", synchronize=lambda: None, gpu_watts=20, powercap=no_powercap, clock=clock)
    window(meter, clock, 1.0)
    assert meter.result()["mps"]["joules"] == pytest.approx(20.0)


@pytest.mark.parametrize("watts", [0, -5, float("nan"), float("inf"), True, "65"])
def test_bad_watts_are_refused_naming_the_option(tmp_path, watts):
    with pytest.raises(ValueError, match="--cpu-watts must be a positive number of watts"):
        meter_for("cpu", cpu_watts=watts, powercap=tmp_path)
    with pytest.raises(ValueError, match="--gpu-watts must be a positive number of watts"):
        Estimate(watts, "--gpu-watts")


def test_a_gpu_meter_needs_the_synchronize():
    with pytest.raises(ValueError, match="needs synchronize="):
        meter_for("cuda:0")
    with pytest.raises(ValueError, match="no energy meter for device 'xla:0'"):
        meter_for("xla:0", synchronize=lambda: None)


def test_windows_must_be_opened_before_closed_and_not_twice():
    meter = Meter({"cpu": Missing("none")})
    with pytest.raises(RuntimeError, match="without start"):
        meter.stop()
    meter.start()
    with pytest.raises(RuntimeError, match="twice"):
        meter.start()


def test_a_meter_with_no_windows_has_no_watts(tmp_path):
    zone(tmp_path, "intel-rapl:0", "package-0", 0)
    cpu = meter_for("cpu", powercap=tmp_path).result()["cpu"]
    assert (cpu["joules"], cpu["seconds"], cpu["watts"], cpu["windows"]) == (0, 0, None, 0)


def test_results_are_strict_json_and_use_the_known_methods(monkeypatch, tmp_path):
    zone(tmp_path, "intel-rapl:0", "package-0", 0)
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(energy_mj=(0, 0, 500)))
    clock = FakeClock()
    meter = meter_for("cuda:0", synchronize=lambda: None, powercap=tmp_path, clock=clock, environ={})
    window(meter, clock, 1.0)
    result = meter.result()
    assert json.loads(json.dumps(result, allow_nan=False)) == result
    assert {d["method"] for d in result.values()} <= set(energy.METHODS)


# --- this machine -------------------------------------------------------------------------------------------------

def test_a_real_cpu_meter_never_raises_and_explains_a_missing_figure():
    meter = meter_for("cpu")
    meter.start()
    meter.stop()
    cpu = meter.result()["cpu"]
    assert cpu["method"] in ("rapl", "unavailable")
    if cpu["method"] == "unavailable":  # this machine: a virtual machine with no /sys/class/powercap
        assert cpu["reason"] and cpu["joules"] is None


def test_the_module_does_not_import_torch():
    code = "import sys, bench.energy; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
