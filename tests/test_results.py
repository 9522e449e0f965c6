"""Records: JSON round trip, append-only writing, tolerant reading, and the DataFrame users load."""

import json
import os
from dataclasses import replace

import pandas as pd
import pytest

from bench.errors import UserError
from bench.records import SCHEMA_VERSION, Record
from bench.reading import read_records
from bench.results import load
from bench.writer import RecordWriter
from tests.conftest import make_record


def test_record_round_trips_through_json():
    r = make_record()
    line = r.to_json()
    assert "\n" not in line
    assert Record.from_json(line) == r
    assert json.loads(line)["schema_version"] == SCHEMA_VERSION


def test_non_finite_numbers_are_written_as_null():
    r = replace(make_record(step_seconds=(0.01,)), loss_curve=((1, float("inf")), (2, float("nan"))))
    assert json.loads(r.to_json())["loss_curve"] == [[1, None], [2, None]]


def test_unknown_status_is_refused():
    with pytest.raises(ValueError, match="status"):
        make_record(status="fine")


def test_other_schema_versions_are_refused():
    d = json.loads(make_record().to_json())
    d["schema_version"] = 99
    with pytest.raises(ValueError, match="schema_version"):
        Record.from_json(json.dumps(d))


def test_writer_appends_and_never_rewrites(tmp_path):
    w = RecordWriter(tmp_path / "out")
    w.append(make_record(batch_size=4))
    first = w.path.read_bytes()
    w.append(make_record(batch_size=8))
    assert w.path.read_bytes().startswith(first)
    assert [r.cell.batch_size for r in read_records(w.path)] == [4, 8]
    RecordWriter(tmp_path / "out")  # reopening an existing folder leaves its records alone
    assert len(read_records(w.path)) == 2


def test_torn_last_line_is_skipped_with_a_warning(tmp_path):
    w = RecordWriter(tmp_path)
    w.append(make_record())
    with open(w.path, "ab") as f:
        f.write(make_record().to_json().encode()[:50])  # a crash mid-write
    warnings = []
    assert len(read_records(w.path, warnings)) == 1
    assert "incomplete last line" in warnings[0] and "records.jsonl:2" in warnings[0]


def test_malformed_line_in_the_middle_names_file_and_line(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_text(make_record().to_json() + "\n{not json\n" + make_record().to_json() + "\n")
    with pytest.raises(UserError, match=r"records.jsonl:2"):
        read_records(path)


def test_unwritable_out_is_bad_input(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="--out"):
        RecordWriter(blocker / "sub")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_out_is_bad_input(tmp_path):
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(UserError, match="--out"):
            RecordWriter(tmp_path / "sub")
    finally:
        tmp_path.chmod(0o700)


def test_load_gives_the_documented_columns_with_derived_statistics(tmp_path):
    w = RecordWriter(tmp_path / "a")
    w.append(make_record(step_seconds=(0.010, 0.020, 0.030), batch_size=4))
    w.append(make_record(status="unavailable", device="cuda:0", step_seconds=()))
    df = load([tmp_path])
    for col in ["device", "device_name", "dataset", "pipeline", "batch_size", "width", "threads", "status",
                "images_per_s", "step_ms", "accuracy", "train_seconds"]:
        assert col in df.columns
    ok = df[df.status == "ok"].iloc[0]
    assert ok.step_ms == pytest.approx(20.0)
    assert ok.images_per_s == pytest.approx(4 / 0.020)
    assert ok.accuracy == 0.5
    assert ok.train_seconds == pytest.approx(0.06)
    assert ok.achieved_flops == pytest.approx(3_204_720 * 200)
    assert df[df.status == "unavailable"].iloc[0].device == "cuda:0"


def test_load_of_missing_path_is_bad_input(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load([tmp_path / "nope"])
    with pytest.raises(UserError, match="no results"):
        load([tmp_path])


def test_peak_fraction_for_known_gpus_only(tmp_path):
    from bench.peaks import peak_flops

    assert peak_flops("NVIDIA H100 80GB HBM3") == pytest.approx(66.9e12)
    assert peak_flops("NVIDIA H100 PCIe", "bf16") == pytest.approx(756e12)
    assert peak_flops("NVIDIA H200", "tf32") == pytest.approx(494.7e12)
    assert peak_flops("Tesla T4", "bf16") is None
    from bench.peaks import precision_of

    assert precision_of([], "cpu") == "fp32" and precision_of([], "cuda:0") == "tf32"
    assert precision_of(["amp", "cudagraph"], "cuda:0") == "bf16"
    assert peak_flops("AMD EPYC 7B13") is None
    w = RecordWriter(tmp_path)
    gpu = make_record(device="cuda:0", step_seconds=(0.001,) * 3)
    w.append(Record(**{**gpu.__dict__, "device_name": "NVIDIA H200"}))
    w.append(make_record())
    df = load([tmp_path]).set_index("device")
    assert df.loc["cuda:0", "peak_fraction"] == pytest.approx(3_204_720 * 4000 / 494.7e12)
    assert pd.isna(df.loc["cpu", "peak_fraction"])
