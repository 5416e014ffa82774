"""``skipmodel cpdag`` end to end: every output file, the HTML view, one-line errors."""

from __future__ import annotations

import csv
import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from skipmodel.cli import main
from skipmodel.cpdag.pc import _canonical

sys.path.insert(0, str(Path(__file__).parent))
from store_factory import random_logs, random_tracks, write_store  # noqa: E402

OUTPUTS = (
    "edges.csv",
    "edge_strength.csv",
    "adjacency.csv",
    "sepsets.csv",
    "sepsets.json",
    "cpdag.dot",
    "cpdag.png",
    "cpdag.svg",
    "graph.html",
    "correlation.csv",
    "summary.json",
)


def _edges(path: Path) -> set[tuple[str, str, str]]:
    with open(path) as fh:
        return {_canonical(r["from"], r["to"], r["type"]) for r in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import PC_FIXTURES

    if not PC_FIXTURES.is_dir():
        pytest.skip("shared fixtures not found")
    out = tmp_path_factory.mktemp("cpdag")
    argv = ["cpdag", "--csv", str(PC_FIXTURES / "gmG8_data.csv"), "--out", str(out)]
    assert main([*argv, "--solve-conflicts", "--bootstrap", "4", "--seed", "3"]) == 0
    return out


def test_csv_run_writes_every_output(csv_run: Path, pc_dir: Path) -> None:
    for name in (*OUTPUTS, "bootstrap.csv"):
        assert (csv_run / name).stat().st_size > 0, name
    assert _edges(csv_run / "edges.csv") == _edges(
        pc_dir / "gmG8_pc_alpha0.01_solveconfl_edges.csv"
    )
    assert (csv_run / "cpdag.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ET.parse(csv_run / "cpdag.svg")
    summary = json.loads((csv_run / "summary.json").read_text())
    assert summary["n"] == 5000 and summary["bootstrap_replicates"] == 4
    assert summary["data"]["rows_dropped"] == 0
    assert set(summary["files"]) >= set(OUTPUTS)


def test_adjacency_matrix_agrees_with_edge_list(csv_run: Path) -> None:
    with open(csv_run / "adjacency.csv") as fh:
        rows = list(csv.reader(fh))
    names = rows[0][1:]
    amat = np.array([[int(v) for v in r[1:]] for r in rows[1:]])
    assert [r[0] for r in rows[1:]] == names
    for a, b, kind in _edges(csv_run / "edges.csv"):
        i, j = names.index(a), names.index(b)
        expected = {"-->": (1, 0), "---": (1, 1), "<->": (2, 2)}[kind]
        assert (amat[i, j], amat[j, i]) == expected
    edges = _edges(csv_run / "edges.csv")
    assert (amat != 0).sum() == sum(1 if kind == "-->" else 2 for _, _, kind in edges)


def test_strength_and_bootstrap_columns(csv_run: Path) -> None:
    with open(csv_run / "edge_strength.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 8
    for r in rows:
        assert 0 < float(r["min_abs_pcor"]) <= 1 and float(r["max_pvalue"]) < 0.01
        assert 0 <= float(r["boot_same_type"]) <= float(r["boot_adjacent"]) <= 1


def test_html_is_self_contained_and_well_formed(csv_run: Path) -> None:
    text = (csv_run / "graph.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text)
    assert "<link" not in text and "@import" not in text
    root = ET.fromstring(text.replace("<!DOCTYPE html>", "", 1))
    ns = {"svg": "http://www.w3.org/2000/svg"}
    nodes = root.findall(".//svg:g[@class='node']", ns)
    assert sorted(n.get("data-name") for n in nodes) == sorted(
        ["Author", "Bar", "Ctrl", "Goal", "V5", "V6", "V7", "V8"]
    )
    assert len(root.findall(".//svg:path[@data-from]", ns)) == 8
    data = json.loads(next(s.text for s in root.iter("{http://www.w3.org/1999/xhtml}script")))
    assert data["nodes"]["V5"]["parents"] == ["Bar"]
    assert data["nodes"]["V5"]["children"] == ["V8"]
    assert data["nodes"]["V5"]["conflicts"] == ["V6"]
    assert data["nodes"]["Author"]["undirected"] == ["Bar"]


def test_corr_input_matches_pcalg(tmp_path: Path, pc_dir: Path) -> None:
    argv = ["cpdag", "--corr", str(pc_dir / "gmG8_cor.csv"), "--n", "5000", "--out", str(tmp_path)]
    assert main([*argv, "--alpha", "0.05"]) == 0
    assert _edges(tmp_path / "edges.csv") == _edges(pc_dir / "gmG8_pc_alpha0.05_default_edges.csv")
    assert main([*argv, "--bootstrap", "3"]) == 0  # parametric bootstrap for a bare matrix
    assert (tmp_path / "bootstrap.csv").is_file()


def test_store_input_with_transform_options(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    tracks = random_tracks(rng, 300, coverage=1.0)
    write_store(tmp_path / "s", random_logs(rng, 10, n_tracks=300), tracks)
    out = tmp_path / "out"
    argv = ["cpdag", "--store", str(tmp_path / "s"), "--out", str(out), "--no-log", "all"]
    assert main([*argv, "--drop", "acoustic_vector_0,key"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert "key" not in summary["variables"] and "acoustic_vector_0" not in summary["variables"]
    assert summary["data"]["log_transformed"] == [] and summary["data"]["n"] == 300


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--corr", "{fix}/gmG8_cor.csv"], "needs --n"),
        (["--csv", "{fix}/gmG8_data.csv", "--n", "5"], "--n goes with --corr"),
        (["--csv", "{fix}/gmG8_data.csv", "--alpha", "2"], "alpha"),
        (["--csv", "{fix}/gmG8_data.csv", "--drop", "Nope"], "unknown column"),
        (["--store", "{tmp}/nostore"], "not a skipmodel store"),
        (["--corr", "{tmp}/asym.csv", "--n", "100"], "not symmetric"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    tmp_path: Path, pc_dir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    (tmp_path / "asym.csv").write_text("a,b\n1,0.2\n0.3,1\n")
    argv = [a.format(fix=pc_dir, tmp=tmp_path) for a in argv]
    assert main(["cpdag", *argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_empty_graph_still_draws(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 3))
    path = tmp_path / "indep.csv"
    table = pa.table({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2]})
    import pyarrow.csv as pacsv

    pacsv.write_csv(table, path)
    assert main(["cpdag", "--csv", str(path), "--out", str(tmp_path / "o"), "--alpha", "1e-6"]) == 0
    assert (tmp_path / "o" / "edges.csv").read_text().strip() == "from,to,type"
    assert (tmp_path / "o" / "cpdag.png").stat().st_size > 0


def test_awkward_names_are_escaped_everywhere(tmp_path: Path) -> None:
    from skipmodel.cpdag import pc
    from skipmodel.cpdag.html import render_html
    from skipmodel.cpdag.layout import layout_graph
    from skipmodel.cpdag.outputs import write_outputs

    names = ["a<b", "c&d", 'e"f', "price $", "ü"]
    corr = np.eye(5) + 0.6 * (np.eye(5, k=1) + np.eye(5, k=-1))
    corr = corr / 1.5 + np.eye(5) / 3  # positive definite chain
    fit = pc(corr, 1000, names=names)
    write_outputs(fit, corr, tmp_path)
    root = ET.fromstring((tmp_path / "graph.html").read_text().replace("<!DOCTYPE html>", "", 1))
    ns = {"svg": "http://www.w3.org/2000/svg"}
    assert sorted(
        g.get("data-name") for g in root.findall(".//svg:g[@class='node']", ns)
    ) == sorted(names)
    assert render_html(fit, layout_graph(fit.names, fit.edges)).count("<script") == 2
