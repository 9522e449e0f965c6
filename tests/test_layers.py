"""The layers of ../shared/LAYERS.md hold: reading and reporting never import torch, and bench/ has no import cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "bench"
TORCH_FREE = ["bench.results", "bench.report", "bench.compare", "bench.reading", "bench.records", "bench.config",
              "bench.verdict", "bench.figures", "bench.cli"]


def test_reading_and_reporting_do_not_import_torch():
    code = ("import sys\n" + "".join(f"import {m}\n" for m in TORCH_FREE)
            + "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def imports_of(path: Path) -> set[str]:
    """bench modules this file imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    return {m.split(".")[1] for m in found if m.startswith("bench.") and m.split(".")[1] in modules}


def graph() -> dict[str, set[str]]:
    return {p.stem: imports_of(p) - {p.stem} for p in PACKAGE.glob("*.py")}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary cycle's smallest representative found by depth-first search (enough to name one)."""
    found, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_bench_has_no_import_cycle():
    assert cycles(graph()) == []


def test_nothing_after_the_record_imports_the_measuring_side():
    measure = {"devices", "data", "pipelines", "timing", "train", "tuning", "breakdown", "runner", "steprunner",
               "env", "synthetic"}
    store = {"records", "results", "reading", "writer", "pbjson", "schema"}
    edges = graph()
    for module in sorted(store | {"config", "variants", "sections", "stats", "verdict", "figures", "report",
                                  "compare", "prices", "provenance", "document", "sidebyside", "pairing", "labels",
                                  "terminal", "targets"}):
        assert not edges.get(module, set()) & measure, f"{module} imports {edges[module] & measure}"
