"""The notebook: committed without outputs, and it runs top to bottom (with its small budget) in a fresh kernel."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "cpu_vs_gpu.ipynb"
nbformat = pytest.importorskip("nbformat", reason="the notebook tools come with the dev extra")


def test_the_notebook_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code), \
        "clear the outputs before committing: jupyter nbconvert --clear-output --inplace notebooks/cpu_vs_gpu.ipynb"
    assert "SECONDS_PER_CELL = " in code[0].source  # the one budget knob, at the top


@pytest.mark.slow
def test_the_notebook_runs_top_to_bottom(tmp_path):
    nbclient = pytest.importorskip("nbclient", reason="the notebook tools come with the dev extra")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    t0 = time.perf_counter()
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    seconds = time.perf_counter() - t0
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert (tmp_path / "results" / "notebook" / "records.jsonl").is_file()
    assert (tmp_path / "reports" / "notebook" / "report.html").is_file()
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 4  # the training images, accuracy, throughput and the headline figure
    print(f"notebook executed in {seconds:.0f} s")
