"""Tuned training paths: parsing, which cells can use which option, and the same losses as eager."""

import numpy as np
import pytest
import torch

from bench import tuning, variants
from bench.config import Budget, RunConfig
from bench.records import Environment
from bench.runner import run
from bench.writer import RecordWriter
from bench.steprunner import StepRunner
from bench.train import train
from tests.conftest import make_cell, tiny_dataset

FP32_RTOL = 1e-3  # fp32 paths (channels_last, compile, cudnn, cudagraph): per-step loss within 0.1% of eager
BF16_RTOL = 3e-2  # amp (bf16 autocast): per-step loss within 3% of eager
STEPS = 50

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(scope="module")
def data():
    return tiny_dataset(n_train=512, n_test=32)


def losses(data, tune=(), device="cpu", pipeline="resident"):
    cell = make_cell(batch_size=16, lr=0.01, tune=tune, device=device, pipeline=pipeline, workers=0)
    runner = StepRunner(cell, data)
    try:
        runner.warmup(5)  # as the harness does: a CUDA graph is captured here, then the state is restored
        return np.array(runner.losses(STEPS))
    finally:
        runner.close()


def assert_same_losses(tuned, eager, rtol):
    assert np.isfinite(tuned).all()
    assert np.max(np.abs(tuned - eager) / np.abs(eager)) <= rtol
    assert eager[-5:].mean() < eager[:5].mean()  # and it is training, not a constant


def test_parse_variants():
    assert variants.parse("none") == ((),)
    assert variants.parse("none,amp+channels_last, cudagraph") == ((), ("amp", "channels_last"), ("cudagraph",))
    assert variants.parse("channels_last+amp,amp+channels_last") == (("amp", "channels_last"),)
    assert variants.parse("fast") == (("fast",),)
    for bad, says in [("turbo", "unknown --tune option 'turbo'"), ("", "empty"), ("fast+amp", "stands alone")]:
        with pytest.raises(ValueError, match=says):
            variants.parse(bad)


def test_fast_resolves_per_device_and_pipeline():
    assert variants.resolve(("fast",), "cpu", "resident") == ("channels_last",)
    assert variants.resolve(("fast",), "cuda:0", "resident") == ("amp", "channels_last", "cudagraph", "cudnn")
    assert variants.resolve(("fast",), "cuda:0", "tutorial") == ("amp", "channels_last", "cudnn", "pinned")
    assert variants.resolve(("amp",), "cuda:0", "tutorial") == ("amp",)


@pytest.mark.parametrize("tune,device,pipeline,says", [
    (("cudagraph",), "cpu", "resident", "cudagraph needs a CUDA device"),
    (("cudnn",), "cpu", "resident", "cudnn needs a CUDA device"),
    (("pinned",), "cpu", "tutorial", "pinned needs a CUDA device"),
    (("cudagraph",), "cuda:0", "tutorial", "resident pipeline"),
    (("pinned",), "cuda:0", "resident", "tutorial pipeline"),
    (("compile", "cudagraph"), "cuda:0", "resident", "choose compile or cudagraph"),
])
def test_unsupported_combinations_say_why(tune, device, pipeline, says):
    assert says in variants.unsupported(tune, device, pipeline)


def test_supported_combinations_pass():
    assert variants.unsupported(("amp", "channels_last"), "cpu", "resident") is None
    assert variants.unsupported(("amp", "channels_last", "cudnn", "cudagraph"), "cuda:0", "resident") is None
    assert variants.unsupported(("amp", "pinned"), "cuda:0", "tutorial") is None


def test_unsupported_is_recorded_not_raised_and_the_other_cells_run(tmp_path):
    d = tiny_dataset()
    config = RunConfig(dataset="synthetic", devices=("cpu",), configs=(("resident", 4),), widths=(1.0,),
                       threads=(1,), budget=Budget.parse("5steps"), tunes=((), ("cudagraph",), ("channels_last",)),
                       warmup_steps=1, eval_points=1, workers=0)
    records = run(config, d, RecordWriter(tmp_path))
    assert [(r.cell.tune, r.status) for r in records] == [
        ((), "ok"), (("cudagraph",), "unsupported"), (("channels_last",), "ok")]
    assert "needs a CUDA device" in records[1].message


def test_fast_variant_groups_devices_whose_options_differ():
    config = RunConfig(dataset="synthetic", devices=("cpu", "cuda:0"), configs=(("resident", 4),), widths=(1.0,),
                       threads=(2,), budget=Budget.parse("5steps"), tunes=((), ("fast",)))
    cells = {(c.device, c.variant): c.tune for c in config.cells()}
    assert cells == {("cpu", ""): (), ("cpu", "fast"): ("channels_last",), ("cuda:0", ""): (),
                     ("cuda:0", "fast"): ("amp", "channels_last", "cudagraph", "cudnn")}


def test_tune_is_part_of_the_cell_and_its_key():
    assert make_cell(tune=("channels_last", "amp")).tune == ("amp", "channels_last")
    assert make_cell(tune=("amp",)).key != make_cell().key
    assert "amp" in make_cell(tune=("amp",)).label
    with pytest.raises(ValueError, match="tune option 'warp'"):
        make_cell(tune=("warp",))


def test_channels_last_gives_eager_losses_on_the_cpu(data):
    assert_same_losses(losses(data, ("channels_last",)), losses(data), FP32_RTOL)


@pytest.mark.slow
def test_amp_bf16_gives_eager_losses_within_bf16_tolerance_on_the_cpu(data):
    assert tuning.amp_dtype("cpu") == torch.bfloat16
    assert_same_losses(losses(data, ("amp",)), losses(data), BF16_RTOL)


@pytest.mark.slow
def test_compile_gives_eager_losses_on_the_cpu(data):
    if variants.unsupported(("compile",), "cpu", "resident"):
        pytest.skip(variants.unsupported(("compile",), "cpu", "resident"))
    assert_same_losses(losses(data, ("compile",)), losses(data), FP32_RTOL)


def test_tuned_cell_trains_and_records_its_options(data):
    r = train(make_cell(tune=("amp", "channels_last"), budget=Budget.parse("10steps")), data, Environment(), "run")
    assert r.status == "ok" and r.cell.tune == ("amp", "channels_last")


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("tune,rtol", [(("cudnn",), FP32_RTOL), (("channels_last",), FP32_RTOL),
                                       (("cudagraph",), FP32_RTOL), (("amp",), BF16_RTOL),
                                       (("amp", "channels_last", "cudagraph", "cudnn"), BF16_RTOL),
                                       (("compile",), FP32_RTOL)])
def test_cuda_tuned_paths_give_eager_losses(data, tune, rtol):
    assert_same_losses(losses(data, tune, "cuda:0"), losses(data, (), "cuda:0"), rtol)


@gpu
@pytest.mark.gpu
def test_cuda_pinned_tutorial_pipeline_gives_eager_losses(data):
    assert_same_losses(losses(data, ("pinned",), "cuda:0", "tutorial"), losses(data, (), "cuda:0", "tutorial"),
                       FP32_RTOL)


@gpu
@pytest.mark.gpu
def test_cudagraph_cell_trains_under_the_harness(data):
    r = train(make_cell(device="cuda:0", tune=("cudagraph",), budget=Budget.parse("40steps"), warmup_steps=5),
              data, Environment(), "run")
    assert r.status == "ok" and r.timing.clock == "events" and len(r.timing.step_seconds) == 40
    block_losses = [v for _, v in r.loss_curve]
    assert all(np.isfinite(block_losses)) and len(set(block_losses)) > 1  # each replay's loss, not one copy
