"""cpdag outputs that must hold whatever the input: valid DOT for any variable name, and a
warning when tests had no degrees of freedom (issue 17)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from skipmodel.cli import main
from skipmodel.cpdag import pc
from skipmodel.cpdag.io import dot
from skipmodel.cpdag.outputs import untested_removals

#: A DOT quoted ID: ``"``, then characters other than ``"`` and ``\`` or a backslash pair, then
#: ``"`` (the DOT language's only escape in quoted strings is ``\"``; a raw line break would
#: end the label's line, so none may appear).
QUOTED = r'"(?:[^"\\\n\r]|\\[^\n\r])*"'
NODE = re.compile(rf"^  ({QUOTED});$")
EDGE = re.compile(rf"^  ({QUOTED}) -> ({QUOTED}) \[([^\]\n]*)\];$")
HEADER = ("digraph cpdag {", '  node [shape=box, style=rounded, fontname="Helvetica"];')


def _name(quoted: str) -> str:
    """The name Graphviz shows for a quoted ID (its label ``\\N`` reads these escapes)."""
    return re.sub(
        r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m.group(1), m.group(1)), quoted[1:-1]
    )


def parse_dot(text: str) -> tuple[list[str], list[tuple[str, str, str]]]:
    """Nodes and edges of the DOT that :func:`dot` writes; fails on anything else."""
    lines = text.split("\n")
    assert tuple(lines[:2]) == HEADER and lines[-2:] == ["}", ""], text
    nodes, edges = [], []
    for line in lines[2:-2]:
        if node := NODE.match(line):
            nodes.append(_name(node.group(1)))
        elif edge := EDGE.match(line):
            edges.append((_name(edge.group(1)), _name(edge.group(2)), edge.group(3)))
        else:
            raise AssertionError(f"not a DOT statement: {line!r}")
    return nodes, edges


def equicorrelated(p: int, r: float) -> np.ndarray:
    corr = np.full((p, p), r)
    np.fill_diagonal(corr, 1.0)
    return corr


NAMES = ('a "quoted" name', "back\\slash", "ends in \\", 'both \\" at once', "new\nline\r")


def test_dot_quotes_any_name_so_a_parser_reads_it_back() -> None:
    result = pc(equicorrelated(len(NAMES), 0.5), 1000, names=NAMES)
    assert result.edges  # a complete graph: every name is an endpoint
    nodes, edges = parse_dot(dot(result))
    assert nodes == list(NAMES)
    assert [(s, t) for s, t, _ in edges] == [(e.source, e.target) for e in result.edges]


def test_names_with_quotes_through_the_cli(tmp_path: Path) -> None:
    names = ['say "hi"', "back\\slash", "plain"]
    path = tmp_path / "corr.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["", *names])
        for name, row in zip(names, equicorrelated(3, 0.6), strict=True):
            writer.writerow([name, *row])
    out = tmp_path / "out"
    assert main(["cpdag", "--corr", str(path), "--n", "500", "--out", str(out)]) == 0
    nodes, edges = parse_dot((out / "cpdag.dot").read_text())
    assert nodes == names and len(edges) == 3


def test_tests_without_degrees_of_freedom_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # n = 4: order-0 tests have n - 3 = 1 degree of freedom and keep every edge; order-1
    # tests have none and (z = 0, p = 1, as pcalg) remove all ten edges untested
    corr, names = equicorrelated(5, 0.99), [f"v{i}" for i in range(5)]
    result = pc(corr, 4, names=names)
    assert not result.edges
    warning = untested_removals(result)
    assert warning is not None
    assert "had no degrees of freedom (Fisher z needs n - |S| - 3 > 0; n = 4)" in warning
    assert "removed 10 edges untested" in warning and warning.endswith("--max-cond 0")
    assert untested_removals(pc(corr, 1000, names=names)) is None
    # the console, the graph's description and summary.json say so
    path = tmp_path / "corr.csv"
    path.write_text(
        ",".join(["", *names])
        + "\n"
        + "".join(
            ",".join([n, *(str(float(v)) for v in row)]) + "\n"
            for n, row in zip(names, corr, strict=True)
        )
    )
    out = tmp_path / "out"
    assert main(["cpdag", "--corr", str(path), "--n", "4", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"skipmodel cpdag: warning: {warning}" in err.splitlines()
    assert json.loads((out / "summary.json").read_text())["warnings"] == [warning]
    assert "some tests had no degrees of freedom" in (out / "graph.html").read_text()
    assert main(["cpdag", "--corr", str(path), "--n", "1000", "--out", str(tmp_path / "ok")]) == 0
    assert "warning" not in capsys.readouterr().err
    assert json.loads((tmp_path / "ok" / "summary.json").read_text())["warnings"] == []
