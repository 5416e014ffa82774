"""``skipmodel report`` on a nested-Laplace run (``--method laplace``): the banner judges the mode,
not chains; the tracks come from the per-level summary; held-out predictions draw the levels.

The end-to-end test fits a tiny simulated store (about ten seconds) and reports on it; the rest
check the parts on hand-made inputs.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import skipmodel.scale  # noqa: F401 - registers --method laplace
from skipmodel.cli import main
from skipmodel.ingest import ingest
from skipmodel.model.levels import LEVELS_GROUP, GaussianLevels
from skipmodel.report.diagnostics import diagnose_run
from skipmodel.report.effects import track_extremes
from skipmodel.report.laplace import hyper_table, pass_table
from skipmodel.simulate.mssd import simulate
from test_report_html import check_self_contained

FIT = {
    "method": "laplace",
    "seconds": 5.0,
    "passes": 4,
    "converged": True,
    "pass_seconds": [1.0, 1.0, 1.0, 1.0],
    "max_step_sd": [12.0, None, 0.4, 0.005],
    "halved_steps": 1,
    "hessian_condition": 12.5,
    "n_levels": 5,
    "n_dense": 3,
    "hyper_mode": {"track_sigma": 0.7},
    "hyper_log_sd": {"track_sigma": 0.1},
}


# --- end to end --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def laplace_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A store of 300 simulated sessions, fitted by nested Laplace, reported on: (OUT, stdout)."""
    root = tmp_path_factory.mktemp("laplace_report")
    sim = simulate(root / "sim", sessions=300, seed=4, tracks=400, days=7)
    store, run, out = root / "store", root / "run", root / "report"
    ingest([sim.training_set, sim.track_features], store, n_buckets=4, progress=False)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        fit = ["fit", "--store", str(store), "--model", "markov", "--method", "laplace"]
        assert main([*fit, "--draws", "200", "--out", str(run)]) == 0
        assert main(["report", str(run), "--out", str(out)]) == 0
    return out, printed.getvalue()


def test_the_banner_of_a_converged_laplace_fit_passes_and_names_it(
    laplace_report: tuple[Path, str],
) -> None:
    out, printed = laplace_report
    assert "warning: diagnostics failed" not in printed
    text = (out / "index.html").read_text()
    top = text[: text.index('<nav class="toc"')]
    assert '<div class="banner ok"' in top and "banner bad" not in text
    assert "run: Diagnostics passed for a nested Laplace approximation" in top
    assert "Gauss-Hermite" in top  # the run's approximation sentence
    for line in ("Mode converged (", "Hessian condition (", "NUTS check: not checked"):
        assert line in text, line
    assert "R-hat (" not in text and "Bulk ESS (" not in text
    check_self_contained(out / "index.html")
    metrics = json.loads((out / "metrics.json").read_text())
    diag = metrics["runs"]["run"]["diagnostics"]
    assert diag["ok"] and diag["method"] == "laplace" and diag["n_chains"] == 1
    assert [c["name"] for c in diag["checks"]] == [
        "Mode converged",
        "Hessian condition",
        "NUTS check",
    ]
    assert metrics["runs"]["run"]["fit"]["converged"] is True


def test_the_report_shows_the_mode_not_traces(laplace_report: tuple[Path, str]) -> None:
    out, _ = laplace_report
    text = (out / "index.html").read_text()
    assert ">Mode convergence</h3>" in text and "max step (posterior sd)" in text
    assert "<td>track_sigma</td>" in text  # the hyperparameters' table
    assert ">Trace plots</h3>" not in text and not (out / "figures" / "run_trace.png").exists()
    assert "r_hat" not in (out / "summary_run.csv").read_text().splitlines()[0]


def test_the_track_extremes_come_from_the_levels_group(laplace_report: tuple[Path, str]) -> None:
    out, _ = laplace_report
    text = (out / "index.html").read_text()
    assert ">Most and least skipped tracks</h3>" in text
    assert (out / "figures" / "run_tracks.png").stat().st_size > 10_000


def test_held_out_metrics_of_a_laplace_run(laplace_report: tuple[Path, str]) -> None:
    out, _ = laplace_report
    text = (out / "index.html").read_text()
    assert ">Held-out evaluation</h2>" in text and ">run: posterior predictive checks</h2>" in text
    heldout = json.loads((out / "metrics.json").read_text())["heldout"]
    row = heldout["rows"]["run"]
    assert row["n"] == heldout["rows"]["overall rate"]["n"] > 0
    assert 0.0 < row["log_loss"] < 1.0 and 0.5 < row["auc"] <= 1.0
    assert 0.0 <= heldout["second_half"]["run"]["mean_average_accuracy"] <= 1.0


# --- the parts -----------------------------------------------------------------------------------


def _laplace_tree(mean: np.ndarray, sd: np.ndarray, labels: list[str], draws: int = 400):  # noqa: ANN202
    """One chain of intercept and sigma draws, and a ``levels`` group like a laplace run's."""
    rng = np.random.default_rng(0)
    posterior = xr.Dataset(
        {
            "intercept": (("chain", "draw"), rng.normal(0.0, 0.05, (1, draws))),
            "track_sigma": (("chain", "draw"), np.exp(rng.normal(np.log(0.7), 0.1, (1, draws)))),
        },
        coords={"chain": [0], "draw": np.arange(draws)},
    )
    levels = xr.Dataset(
        {"track_effect_mean": (("track",), mean), "track_effect_sd": (("track",), sd)},
        coords={"track": labels},
        attrs={"variable": "track_effect"},
    )
    return xr.DataTree(
        children={"posterior": xr.DataTree(posterior), LEVELS_GROUP: xr.DataTree(levels)}
    )


def test_laplace_checks_pass_fail_and_stay_out_of_other_methods() -> None:
    tree = _laplace_tree(np.zeros(3), np.ones(3), ["a", "b", "c"])
    good = diagnose_run(tree, method="laplace", fit=FIT, approximation="nested Laplace: a test")
    assert good.ok and "nested Laplace approximation" in good.headline
    assert good.headline.endswith("Approximation — nested Laplace: a test.")
    mode = good.checks[0].describe()
    assert "4 passes" in mode and "last max step 0.005" in mode and "1 halved" in mode
    assert list(good.summary.columns) == ["mean", "sd", "eti94_lb", "eti94_ub"]
    stuck = diagnose_run(tree, method="laplace", fit={**FIT, "converged": False})
    assert not stuck.ok and stuck.headline.startswith("Do not trust this fit yet: Mode converged")
    ill = diagnose_run(tree, method="laplace", fit={**FIT, "hessian_condition": 3e9})
    assert [c.status for c in ill.checks] == ["pass", "fail", "n/a"]
    unknown = diagnose_run(tree, method="laplace", fit={**FIT, "hessian_condition": math.nan})
    assert unknown.ok and unknown.checks[1].status == "n/a"
    assert not diagnose_run(tree, method="laplace", fit={}).ok  # nothing recorded: not trusted
    assert [c.name for c in diagnose_run(tree, method="advi").checks] == ["Sampler"]


def test_track_extremes_rank_by_mean_probability_and_draw_only_the_chosen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # "sure" (0.8 +- 0.05) beats "wild" (1.0 +- 3): the wild one's P(skip) averages near 1/2
    labels = ["wild", "sure", "mid", "low", "lowest", "__other__"]
    mean = np.array([1.0, 0.8, 0.0, -0.5, -1.0, 5.0])
    sd = np.array([3.0, 0.05, 0.1, 0.1, 0.1, 0.1])
    asked: list[int] = []
    original = GaussianLevels.__getitem__

    def spy(self: GaussianLevels, key: tuple) -> np.ndarray:
        asked.append(np.asarray(key[1]).size)
        return original(self, key)

    monkeypatch.setattr(GaussianLevels, "__getitem__", spy)
    extremes = track_extremes(_laplace_tree(mean, sd, labels), n=2)
    assert extremes is not None
    most, least = extremes
    assert most.labels == ("sure", "wild") and least.labels == ("lowest", "low")
    assert most.probability.shape == (400, 2)
    assert asked and max(asked) <= 2  # never every level
    p = least.summary().mean
    assert p[0] == pytest.approx(1 / (1 + np.exp(1.0)), abs=0.02)


def test_pass_and_hyperparameter_tables() -> None:
    passes = pass_table(FIT)
    assert passes is not None and list(passes.index) == [1, 2, 3, 4]
    assert list(passes["halved"]) == ["", "yes", "", ""]
    assert np.isnan(passes["max step (posterior sd)"][2])
    hypers = hyper_table(FIT)
    assert hypers is not None
    row = hypers.loc["track_sigma"]
    assert row["mode"] == 0.7 and row["3%"] < 0.7 < row["97%"]
    assert row["97%"] == pytest.approx(0.7 * np.exp(1.881 * 0.1), rel=1e-3)
    assert pass_table({}) is None and hyper_table({}) is None
