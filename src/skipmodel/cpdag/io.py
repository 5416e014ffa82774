"""Files in and out of the CPDAG step: ``--corr`` matrices, edge lists, adjacency, sepsets, DOT.

Adjacency coding (``adjacency.csv``): row ``i``, column ``j`` holds ``1`` and row ``j``, column
``i`` holds ``0`` for ``i --> j``; both ``1`` for ``i --- j``; both ``2`` for ``i <-> j``; both
``0`` for no edge. Rows are tails, columns heads: R's ``as(pc.fit@graph, "matrix")``. pcalg's
``as(pc.fit, "amat")`` ("amat.cpdag" coding) is the transpose.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from skipmodel.cpdag.bootstrap import BootstrapResult

from skipmodel.cpdag.pc import BIDIRECTED, DIRECTED, CPDAGResult
from skipmodel.errors import SkipmodelError
from skipmodel.store.layout import atomic_write_text

ADJACENCY_CODING = (
    "adjacency[i][j] = 1 and adjacency[j][i] = 0: i --> j; both 1: i --- j; both 2: i <-> j; "
    "rows are tails (R's as(fit@graph, 'matrix'); pcalg's as(fit, 'amat') is the transpose)"
)
#: Tolerances for validating a user's correlation matrix.
SYMMETRY_TOL = 1e-8
DIAGONAL_TOL = 1e-8
PSD_TOL = 1e-8


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_correlation_csv(path: str | os.PathLike[str]) -> tuple[tuple[str, ...], np.ndarray]:
    """Read and validate a correlation matrix CSV (header row of names; R row names allowed).

    Raises
    ------
    SkipmodelError
        When the file is not a square numeric matrix, not symmetric, not unit-diagonal, has
        entries outside [-1, 1], or is not positive semi-definite.
    """
    path = Path(path)
    if not path.is_file():
        raise SkipmodelError(f"{path} does not exist")
    rows = [r for r in csv.reader(io.StringIO(path.read_text())) if any(c.strip() for c in r)]
    if len(rows) < 3:
        raise SkipmodelError(f"{path}: need a header row of names and at least 2 matrix rows")
    header = [c.strip() for c in rows[0]]
    body = rows[1:]
    width = len(body[0])
    if width == len(header) + 1:  # row names without a header cell for them
        row_names, names = True, header
    elif header[0] == "" or not _is_number(body[0][0]):  # R's write.csv: "" then the names
        row_names, names = True, header[1:]
    else:
        row_names, names = False, header
    p = len(names)
    if p != len(body):
        raise SkipmodelError(
            f"{path}: {p} column names but {len(body)} rows; a correlation matrix is square"
        )
    values = np.empty((p, p))
    for i, row in enumerate(body):
        cells = row[1:] if row_names else row
        if row_names and row[0].strip() != names[i]:
            raise SkipmodelError(
                f"{path}: row {i + 1} is named {row[0].strip()!r} but column {i + 1} is {names[i]!r}"
            )
        if len(cells) != p:
            raise SkipmodelError(f"{path}: row {i + 1} has {len(cells)} values, expected {p}")
        for j, cell in enumerate(cells):
            try:
                values[i, j] = float(cell)
            except ValueError:
                raise SkipmodelError(
                    f"{path}: entry [{names[i]}, {names[j]}] = {cell!r} is not a number"
                ) from None
    validate_correlation(values, names, source=str(path))
    return tuple(names), (values + values.T) / 2.0


def validate_correlation(corr: np.ndarray, names: Sequence[str], *, source: str = "matrix") -> None:
    """Raise a one-line :class:`SkipmodelError` unless ``corr`` is a valid correlation matrix."""
    if len(set(names)) != len(names) or any(not n for n in names):
        raise SkipmodelError(f"{source}: column names must be non-empty and distinct")
    if not np.all(np.isfinite(corr)):
        i, j = (int(v) for v in np.argwhere(~np.isfinite(corr))[0])
        raise SkipmodelError(f"{source}: entry [{names[i]}, {names[j]}] is not finite")
    asym = np.abs(corr - corr.T)
    if asym.max() > SYMMETRY_TOL:
        i, j = (int(v) for v in np.unravel_index(np.argmax(asym), asym.shape))
        raise SkipmodelError(
            f"{source} is not symmetric: [{names[i]}, {names[j]}] = {corr[i, j]:.10g} but "
            f"[{names[j]}, {names[i]}] = {corr[j, i]:.10g}"
        )
    diag = np.abs(np.diag(corr) - 1.0)
    if diag.max() > DIAGONAL_TOL:
        i = int(np.argmax(diag))
        raise SkipmodelError(
            f"{source} is not a correlation matrix: diagonal entry {names[i]} = {corr[i, i]:.10g}"
            " (must be 1; pass correlations, not covariances)"
        )
    if np.abs(corr).max() > 1.0 + SYMMETRY_TOL:
        i, j = (int(v) for v in np.unravel_index(np.argmax(np.abs(corr)), corr.shape))
        raise SkipmodelError(
            f"{source}: [{names[i]}, {names[j]}] = {corr[i, j]:.10g} is outside [-1, 1]"
        )
    smallest = float(np.linalg.eigvalsh((corr + corr.T) / 2.0)[0])
    if smallest < -PSD_TOL * len(names):
        raise SkipmodelError(
            f"{source} is not positive semi-definite (smallest eigenvalue {smallest:.3g}); "
            "was it computed from one complete data set?"
        )


def _csv_text(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _fmt(x: float) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else repr(float(x))


def edges_csv(result: CPDAGResult) -> str:
    """``from,to,type`` (the stable contract)."""
    return _csv_text(["from", "to", "type"], [(e.source, e.target, e.type) for e in result.edges])


def strength_csv(result: CPDAGResult, bootstrap: BootstrapResult | None = None) -> str:
    """Per edge: smallest |partial correlation| and largest p-value over the tests it survived,
    plus, with a bootstrap, how often the edge (any type) and this exact edge type recurred."""
    header = ["from", "to", "type", "min_abs_pcor", "max_pvalue"]
    if bootstrap is not None:
        header += ["boot_adjacent", "boot_same_type"]
    rows = []
    for e in result.edges:
        row: list[object] = [e.source, e.target, e.type, _fmt(e.min_abs_pcor), _fmt(e.max_pvalue)]
        if bootstrap is not None:
            row += [_fmt(bootstrap.adjacent(e.source, e.target)), _fmt(bootstrap.same_type(e))]
        rows.append(row)
    return _csv_text(header, rows)


def adjacency_csv(result: CPDAGResult) -> str:
    """R-style matrix: a header row with an empty first cell, then one named row per variable."""
    rows = [[name, *map(int, result.adjacency[i])] for i, name in enumerate(result.names)]
    return _csv_text(["", *result.names], rows)


def sepsets_csv(result: CPDAGResult) -> str:
    """``x,y,sepset`` for every non-adjacent pair; the set is space-separated (empty: none)."""
    rows = [
        (x, y, " ".join(s)) for (x, y), s in sorted(result.sepsets.items(), key=_pair_order(result))
    ]
    return _csv_text(["x", "y", "sepset"], rows)


def _pair_order(result: CPDAGResult):
    index = {name: i for i, name in enumerate(result.names)}
    return lambda item: (index[item[0][0]], index[item[0][1]])


def sepsets_json(result: CPDAGResult) -> str:
    items = sorted(result.sepsets.items(), key=_pair_order(result))
    return json.dumps([{"x": x, "y": y, "sepset": list(s)} for (x, y), s in items], indent=1) + "\n"


def dot_id(name: str) -> str:
    r"""``name`` as a DOT quoted ID, shown as ``name`` by Graphviz.

    In a quoted ID only ``\"`` is an escape, so a quote is written ``\"``. The label (``\N``:
    the node's name) reads backslash escapes, so a backslash is written ``\\`` and a line
    break ``\n`` (``\r`` for a carriage return); every backslash written starts one of these
    escapes, so distinct names stay distinct IDs. Any other character stands for itself.
    """
    text = name.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("\n", "\\n").replace("\r", "\\r") + '"'


def dot(result: CPDAGResult) -> str:
    """Graphviz DOT: ``-->`` plain arrows, ``---`` ``dir=none``, ``<->`` ``dir=both`` (red).
    Names are quoted IDs (:func:`dot_id`), whatever characters they hold."""
    width = _widths(result)
    lines = ["digraph cpdag {", '  node [shape=box, style=rounded, fontname="Helvetica"];']
    lines += [f"  {dot_id(name)};" for name in result.names]
    for e, w in zip(result.edges, width, strict=True):
        attrs = [f"penwidth={w:.2f}"]
        if e.type == BIDIRECTED:
            attrs += ["dir=both", 'color="#c0392b"']
        elif e.type != DIRECTED:
            attrs += ["dir=none", 'color="#555555"']
        lines.append(f"  {dot_id(e.source)} -> {dot_id(e.target)} [{', '.join(attrs)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _widths(result: CPDAGResult) -> list[float]:
    strengths = np.array([e.min_abs_pcor for e in result.edges], dtype=float)
    if strengths.size == 0:
        return []
    top = np.nanmax(strengths) if np.isfinite(strengths).any() else 1.0
    scaled = np.sqrt(np.clip(np.nan_to_num(strengths / (top or 1.0)), 0.0, 1.0))
    return (0.8 + 3.2 * scaled).tolist()


def write_tables(
    result: CPDAGResult, out: Path, *, bootstrap: BootstrapResult | None = None
) -> list[Path]:
    """Write edges.csv, edge_strength.csv, adjacency.csv, sepsets.csv/.json and cpdag.dot."""
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "edges.csv": edges_csv(result),
        "edge_strength.csv": strength_csv(result, bootstrap),
        "adjacency.csv": adjacency_csv(result),
        "sepsets.csv": sepsets_csv(result),
        "sepsets.json": sepsets_json(result),
        "cpdag.dot": dot(result),
    }
    for name, text in files.items():
        atomic_write_text(out / name, text)
    return [out / name for name in files]
