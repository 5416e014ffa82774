"""A run fitted from Python on a data frame is predicted and reported by the CLI with --store."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import skipmodel.scale  # noqa: F401 - registers --method laplace
from skipmodel.cli import main
from skipmodel.ingest import ingest
from skipmodel.model.data import StoreSample, load_plays
from skipmodel.model.fitting import fit, save_run
from skipmodel.model.spec import get_variant
from skipmodel.simulate.mssd import simulate


@pytest.fixture(scope="module")
def python_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("pyrun")
    sim = simulate(root / "sim", sessions=200, seed=4, tracks=150, days=2)
    store = root / "store"
    ingest([sim.training_set, sim.track_features], store, n_buckets=4, progress=False)
    spec = get_variant("markov")
    frame = load_plays(store, StoreSample(store).rows_sample(spec))
    result = fit(spec, frame, method="laplace", draws=100)
    run = root / "run"
    save_run(result, run)
    return run, store


def test_cli_predicts_a_python_run_from_a_store(python_run, tmp_path: Path) -> None:
    run, store = python_run
    out = tmp_path / "pred.parquet"
    assert main(["predict", str(run), "--store", str(store), "--out", str(out)]) == 0
    table = pd.read_parquet(out)
    assert len(table) > 300 and table["p_skip"].between(0, 1).all()


def test_cli_reports_a_python_run_from_a_store(python_run, tmp_path: Path) -> None:
    run, store = python_run
    out = tmp_path / "report"
    assert main(["report", str(run), "--store", str(store), "--out", str(out)]) == 0
    assert (out / "index.html").is_file()
