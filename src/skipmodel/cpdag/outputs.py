"""Everything ``skipmodel cpdag`` writes into ``--out``, from one :class:`CPDAGResult`.

========================  =====================================================================
``edges.csv``             ``from,to,type`` with ``-->``, ``---``, ``<->`` (the stable contract)
``edge_strength.csv``     per edge: smallest |partial r| and largest p-value over its tests
                          (+ bootstrap shares of "adjacent" and "this edge type")
``adjacency.csv``         R-style matrix, coding in :data:`skipmodel.cpdag.io.ADJACENCY_CODING`
``sepsets.csv/.json``     separating set of every non-adjacent pair
``cpdag.dot``             Graphviz DOT
``cpdag.png/.svg``        static drawing
``graph.html``            self-contained interactive view
``correlation.csv``       the matrix the search ran on (reusable with ``--corr``)
``bootstrap.csv``         with ``--bootstrap``: per pair, shares of each edge type
``summary.json``          options, n, data-pass counts, tests per level, files, timings
========================  =====================================================================
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from skipmodel.cpdag.bootstrap import BootstrapResult
from skipmodel.cpdag.draw import draw_cpdag
from skipmodel.cpdag.html import render_html
from skipmodel.cpdag.io import ADJACENCY_CODING, write_tables
from skipmodel.cpdag.layout import layout_graph
from skipmodel.cpdag.pc import CPDAGResult
from skipmodel.store.layout import atomic_write_json, atomic_write_text


def correlation_csv(names: tuple[str, ...], corr: np.ndarray) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["", *names])
    for name, row in zip(names, corr, strict=True):
        writer.writerow([name, *(repr(float(v)) for v in row)])
    return buf.getvalue()


def untested_removals(result: CPDAGResult) -> str | None:
    """A warning when some tests had no degrees of freedom, else None.

    Fisher's z needs ``n - |S| - 3 > 0``; below that pcalg's rule (z = 0, p = 1, which this
    search follows) removes the edge without evidence. With ``n`` not above the number of
    variables this can empty the graph, which should not pass for independence.
    """
    first = max(0, math.ceil(result.n - 3))  # the smallest |S| with n - |S| - 3 <= 0
    tests = sum(result.n_tests[first:])
    if not tests:
        return None
    removed = sum(len(s) >= first for s in result.sepsets.values())
    return (
        f"{tests:,} tests (conditioning sets of {first} or more variables) had no degrees of "
        f"freedom (Fisher z needs n - |S| - 3 > 0; n = {result.n:g}) and removed {removed} "
        f"edges untested; give more data or --max-cond {first - 1}"
    )


def describe(result: CPDAGResult) -> str:
    """One line: options and size of the graph (and any warning), for titles and logs."""
    o = result.options
    extra = [
        name
        for name, on in (
            ("conservative", o.conservative),
            ("majority rule", o.majority),
            ("conflicts as <->", o.solve_conflicts),
        )
        if on
    ]
    if o.max_cond is not None:
        extra.append(f"max |S| {o.max_cond}")
    counts = {t: sum(e.type == t for e in result.edges) for t in ("-->", "---", "<->")}
    text = (
        f"PC (stable, Fisher z) alpha={o.alpha:g}, n={result.n:,.0f}; {len(result.names)} variables, "
        f"{counts['-->']} directed, {counts['---']} undirected"
    )
    if counts["<->"]:
        text += f", {counts['<->']} conflicting"
    text += f" [{', '.join(extra)}]" if extra else ""
    if untested_removals(result) is not None:
        text += "; warning: some tests had no degrees of freedom (see summary.json)"
    return text


def write_outputs(
    result: CPDAGResult,
    corr: np.ndarray,
    out: Path,
    *,
    data_summary: dict[str, Any] | None = None,
    bootstrap: BootstrapResult | None = None,
    timings: dict[str, float] | None = None,
    title: str = "CPDAG",
) -> list[Path]:
    """Write every output file; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    files = write_tables(result, out, bootstrap=bootstrap)
    atomic_write_text(out / "correlation.csv", correlation_csv(result.names, corr))
    files.append(out / "correlation.csv")
    if bootstrap is not None:
        atomic_write_text(out / "bootstrap.csv", bootstrap.csv())
        files.append(out / "bootstrap.csv")
    layout = layout_graph(result.names, result.edges)
    subtitle = describe(result)
    files += draw_cpdag(
        result,
        layout,
        [out / "cpdag.png", out / "cpdag.svg"],
        bootstrap=bootstrap,
        title=f"{title}: {subtitle}",
    )
    atomic_write_text(
        out / "graph.html",
        render_html(result, layout, title=title, subtitle=subtitle, bootstrap=bootstrap),
    )
    files.append(out / "graph.html")
    o = result.options
    summary = {
        "algorithm": "PC, order-independent skeleton, Fisher z test (matches R pcalg::pc)",
        "options": {
            "alpha": o.alpha,
            "max_cond": o.max_cond,
            "conservative": o.conservative,
            "majority": o.majority,
            "solve_conflicts": o.solve_conflicts,
            "meek_rules": list(o.rules),
        },
        "n": result.n,
        "variables": list(result.names),
        "edges": {t: sum(e.type == t for e in result.edges) for t in ("-->", "---", "<->")},
        "tests_per_level": list(result.n_tests),
        "ambiguous_triples": [list(t) for t in result.ambiguous],
        "warnings": [w for w in (untested_removals(result),) if w is not None],
        "adjacency_coding": ADJACENCY_CODING,
        "data": data_summary or {},
        "bootstrap_replicates": bootstrap.replicates if bootstrap is not None else 0,
        "timings_seconds": timings or {},
        "files": sorted(p.name for p in [*files, out / "summary.json"]),
    }
    atomic_write_json(out / "summary.json", summary)
    files.append(out / "summary.json")
    return files
