"""One real training run: the tutorial net on Fashion-MNIST from Debian's package, as the tutorial trains."""

from pathlib import Path

import pytest

from bench import data
from bench.records import Environment
from bench.config import Budget, CellConfig
from bench.devices import default_threads
from bench.train import train

pytestmark = pytest.mark.slow


@pytest.mark.skipif(not Path(data.DEFAULT_FASHION_MNIST_DIR).is_dir(),
                    reason="needs Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist)")
def test_tutorial_net_learns_fashion_mnist_in_one_epoch():
    fm = data.load("fashion-mnist")
    cell = CellConfig(dataset="fashion-mnist", device="cpu", pipeline="tutorial", batch_size=4, width=1.0,
                      threads=default_threads(), budget=Budget.parse("1ep"), lr=0.001, momentum=0.9,
                      eval_points=2, workers=2)
    r = train(cell, fm, Environment(host="test"), "real")
    assert r.status == "ok"
    assert r.timing.samples == 60_000
    curve = [p.accuracy for p in r.accuracy_curve]
    assert curve[0] < 0.2  # untrained: about chance
    print("accuracy curve", curve)
    assert curve[-1] >= 0.83, curve
