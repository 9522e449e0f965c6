"""The figures' content, read back from matplotlib's objects (what a reader sees, not pixels)."""

from __future__ import annotations

from bench import figures
from bench.results import to_frame
from tests import reportdata as rd


def legend(fig) -> list[str]:
    return [t.get_text() for t in fig.legends[0].get_texts()]


def test_throughput_draws_a_cpu_at_its_fastest_thread_count_not_a_line_per_count():
    """A thread probe ran the CPU at 1, 2, 4, 8, 16 threads: one CPU line, through each cell's fastest count."""
    records = rd.grid(batches=(4, 64), widths=(1,))
    probe = [rd.record("cpu", "resident", b, 1, threads=t, scale=16 / t) for b in (4, 64) for t in (1, 2, 4, 8)]
    fig = figures.throughput(to_frame(records + probe))
    names = legend(fig)
    assert sorted(names) == ["cpu, resident", "cpu, tutorial", "cuda:0, resident", "cuda:0, tutorial"], names
    cpu = next(c for c in fig.axes[0].containers if c.get_label() == "cpu, resident")
    drawn = cpu.lines[0].get_ydata()
    fastest = [b / rd.step_model("cpu", "resident", b, 1) for b in (4, 64)]  # 16 threads: the grid's own cells
    assert len(drawn) == 2 and all(abs(y - f) / f < 0.1 for y, f in zip(drawn, fastest)), (drawn, fastest)


def test_the_throughput_figure_grows_to_hold_its_legend():
    few = figures.throughput(to_frame(rd.grid(batches=(4, 64), widths=(1,))))
    many = rd.grid(batches=(4, 64), widths=(1,))
    for host in ("beta", "gamma"):
        many += rd.grid(batches=(4, 64), widths=(1,), host=host, devices=("cpu",))
    assert figures.throughput(to_frame(many)).get_figheight() > few.get_figheight()


def test_accuracy_figures_hold_many_devices_without_squeezing_their_panels(recwarn):
    """1,000 records of several machines: matplotlib warned that the panels collapsed to zero under the legend."""
    from bench import curves

    records = rd.many(200)
    for make in (curves.time_to_accuracy, curves.samples_to_accuracy):
        fig = make(to_frame(records))
        figures.to_png(fig)
        few = make(to_frame(rd.grid(batches=(4,), widths=(1,))))
        assert fig.get_figheight() > few.get_figheight()
    assert not [w for w in recwarn if "constrained_layout" in str(w.message)]


def tick_texts(fig) -> list[str]:
    figures.to_png(fig)  # ticks are chosen and labelled as the figure is drawn
    return [t.get_text() for ax in fig.axes for axis in (ax.xaxis, ax.yaxis)
            for t in axis.get_ticklabels(minor=False) + axis.get_ticklabels(minor=True) if t.get_text()]


def test_a_log_axis_spanning_under_a_decade_labels_its_minor_ticks_in_plain_numbers():
    """A default run on a 2-core VM (tutorial 1,583 and resident 12,997 images/s) drew its y axis's minor labels
    as raw math text, "$\\mathdefault{6\\times10^{3}}$": every figure is drawn with math text off."""
    records = [rd.record("cpu", "tutorial", 4, 1, scale=0.8), rd.record("cpu", "resident", 256, 1)]
    fig = figures.throughput(to_frame(records))
    texts = tick_texts(fig)
    minor = [t.get_text() for t in fig.axes[0].yaxis.get_ticklabels(minor=True) if t.get_text()]
    assert minor and all(t.replace(",", "").isdigit() for t in minor), minor
    assert not any("$" in t or "\\" in t for t in texts), texts
    narrow = [rd.record("cpu", "resident", b, 1) for b in (4, 8)]  # profiled steps within one decade of ms
    texts = tick_texts(figures.breakdown(to_frame(narrow)))
    assert not any("$" in t or "\\" in t for t in texts), texts
