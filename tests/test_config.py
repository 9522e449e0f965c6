"""Budgets, cells and the grid: parsing, validation and the step counts budgets allow."""

import pytest

from bench.config import Budget, CellConfig, RunConfig, default_lr, steps_per_epoch


@pytest.mark.parametrize("text,amount,unit", [
    ("2ep", 2, "epochs"), ("0.5ep", 0.5, "epochs"), ("5000steps", 5000, "steps"), ("1step", 1, "steps"),
    ("200000samples", 200000, "samples"), ("60s", 60, "seconds"), (" 1.5 s ", 1.5, "seconds"),
    ("3epochs", 3, "epochs"), ("10seconds", 10, "seconds"),
])
def test_budget_parse(text, amount, unit):
    b = Budget.parse(text)
    assert (b.amount, b.unit) == (amount, unit)


@pytest.mark.parametrize("text", ["", "2", "ep", "2 parsecs", "-1ep", "0s", "0steps", "1.5steps", "10samplesx",
                                  "inf s", "nan ep", "2ep3"])
def test_bad_budgets_are_refused_with_the_fix(text):
    with pytest.raises(ValueError) as e:
        Budget.parse(text)
    assert "budget" in str(e.value)


def test_budget_round_trips_through_text():
    for text in ["2ep", "0.5ep", "5000steps", "200000samples", "60s"]:
        assert str(Budget.parse(text)) == text


def test_total_steps():
    assert Budget.parse("2ep").total_steps(50_000, 4) == 25_000
    assert Budget.parse("1ep").total_steps(50_000, 256) == 195  # full batches only
    assert Budget.parse("0.5ep").total_steps(60_000, 4) == 7_500
    assert Budget.parse("5000steps").total_steps(50_000, 4) == 5_000
    assert Budget.parse("1000samples").total_steps(50_000, 3) == 334  # ceil: at least the samples asked for
    assert Budget.parse("60s").total_steps(50_000, 4) is None
    assert steps_per_epoch(10, 32) == 1


def test_default_lr_is_the_tutorials_at_batch_4_and_scales_linearly():
    assert default_lr(4) == 0.001
    assert default_lr(32) == pytest.approx(0.008)
    assert default_lr(4096) == 0.05


def cell(**kw):
    base = dict(dataset="synthetic", device="cpu", pipeline="tutorial", batch_size=4, width=1.0, threads=2,
                budget=Budget.parse("1ep"), lr=0.001)
    base.update(kw)
    return CellConfig(**base)


@pytest.mark.parametrize("field,value", [("batch_size", 0), ("batch_size", -4), ("threads", 0), ("width", 0.0),
                                         ("width", -2.0), ("lr", 0.0), ("lr", float("nan")), ("momentum", 1.0),
                                         ("pipeline", "fast"), ("eval_points", -1), ("warmup_steps", -1),
                                         ("batch_size", 2.5)])
def test_cell_validation_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        cell(**{field: value})


def test_cell_key_is_stable_and_distinguishes_configs():
    assert cell().key == cell().key
    assert cell().key != cell(batch_size=8).key
    assert CellConfig.from_dict(cell().to_dict()) == cell()


def test_grid_varies_threads_only_on_the_cpu():
    rc = RunConfig(dataset="synthetic", devices=("cpu", "cuda:0"), configs=(("tutorial", 4), ("resident", 256)),
                   widths=(1.0, 4.0), threads=(1, 2), budget=Budget.parse("1ep"))
    cells = rc.cells()
    cpu = [c for c in cells if c.device == "cpu"]
    gpu = [c for c in cells if c.device == "cuda:0"]
    assert len(cpu) == 2 * 2 * 2 and len(gpu) == 2 * 2
    assert {c.threads for c in gpu} == {2}
    assert {(c.pipeline, c.batch_size, c.lr) for c in cells} == {("tutorial", 4, 0.001), ("resident", 256, 0.05)}
    assert len({c.key for c in cells}) == len(cells)


def test_explicit_lr_applies_to_every_cell():
    rc = RunConfig(dataset="synthetic", devices=("cpu",), configs=(("resident", 256),), widths=(1.0,),
                   threads=(2,), budget=Budget.parse("1ep"), lr=0.01)
    assert [c.lr for c in rc.cells()] == [0.01]
