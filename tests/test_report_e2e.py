"""End to end: simulate -> ingest -> fit a tiny model -> ``skipmodel report`` (the real model).

The fit and report take about a minute of CPU on a small machine, so they are marked ``slow``
(``make test-slow``); the report's logic is covered fast by test_report_build.py on fake runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skipmodel.cli import main
from test_report_html import check_self_contained


def test_report_of_a_missing_run_is_one_line(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "not a fitted run" in err and len(err.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def tiny_fit(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("e2e")
    sim, store, run = root / "sim", root / "store", root / "markov"
    assert main(["simulate", "--out", str(sim), "--sessions", "60", "--seed", "5"]) == 0
    archives = [str(sim / "training_set.tar.gz"), str(sim / "track_features.tar.gz")]
    assert main(["ingest", *archives, "--store", str(store)]) == 0
    fit_args = ["--draws", "20", "--tune", "20", "--chains", "2", "--sampler", "pymc"]
    code = main(
        [
            "fit",
            "--store",
            str(store),
            "--model",
            "markov",
            "--out",
            str(run),
            *fit_args,
            "--log-likelihood",
        ]
    )
    assert code == 0
    return store, run


@pytest.mark.slow
def test_report_of_a_real_tiny_fit(tiny_fit: tuple[Path, Path], tmp_path: Path, capsys) -> None:  # noqa: ANN001
    store, run = tiny_fit
    out = tmp_path / "report"
    assert main(["report", str(run), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "wrote" in printed
    # 2 x 20 draws cannot pass the ESS rule: the report must still build and say so on top
    assert "warning: diagnostics failed for markov" in printed
    index = out / "index.html"
    text = index.read_text()
    assert text.index("Do not trust this fit yet") < text.index('<nav class="toc"')
    check_self_contained(index)
    for heading in (
        "markov: diagnostics",
        "hour effect",
        "Memory in chains",
        "Held-out evaluation",
        "Model comparison",
    ):
        assert f">{heading}</h" in text, heading
    metrics = json.loads((out / "metrics.json").read_text())
    rows = metrics["heldout"]["rows"]
    assert {"markov", "overall rate", "per-track rate", "repeat last skip"} <= set(rows)
    assert rows["markov"]["n"] == rows["overall rate"]["n"] > 0
    second = metrics["heldout"]["second_half"]
    assert 0.0 <= second["markov"]["mean_average_accuracy"] <= 1.0
    # scored as the challenge revealed the second halves, and with their context revealed
    assert 0.0 <= second["markov [second-half context revealed]"]["mean_average_accuracy"] <= 1
    assert metrics["loo"]["markov"]["method"] == "PSIS-LOO"


@pytest.mark.slow
def test_report_of_a_moved_store_is_one_line(tiny_fit, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    store, run = tiny_fit
    code = main(
        ["report", str(run), "--out", str(tmp_path / "o"), "--store", str(tmp_path / "nope")]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and len(err.strip().splitlines()) == 1


def test_report_out_must_be_a_directory(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    target = tmp_path / "file.txt"
    target.write_text("x")
    assert main(["report", str(tmp_path / "run"), "--out", str(target)]) == 2
    assert "is a file" in capsys.readouterr().err
