"""The report's recovery section (``skipmodel report --truth``): coverage of the true effects.

Coverage is checked by hand on constructed posteriors whose intervals are known (draws that are
exact normal quantiles, or a nested-Laplace run's Gaussian levels), with truths placed at chosen
distances from the posterior mean; the section is checked in a report of a fake run, with and
without the truth, and end to end on a tiny nested-Laplace fit (about ten seconds).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from report_fakes import fake_plays, fake_posterior
from skipmodel.cli import main
from skipmodel.ingest import ingest
from skipmodel.model.levels import LEVELS_GROUP
from skipmodel.report.inputs import RunInputs
from skipmodel.report.recovery import (
    RecoveryInputs,
    Truth,
    binomial_band,
    coverage_table,
    recovery_quantities,
)
from skipmodel.report.report import ReportOptions, report
from skipmodel.simulate.mssd import simulate
from skipmodel.store.schema import WEEKDAYS

FAST = ReportOptions(ppc_draws=50, max_trace_vars=4, max_rank_panels=4)
DRAWS = 1000  # the report thins to 1000 draws: keep them all
#: Exact standard normal quantiles: a posterior whose central intervals are known.
GRID = stats.norm.ppf((np.arange(DRAWS) + 0.5) / DRAWS)
# distances of the truth from the posterior mean, in posterior sds: inside 50 % below 0.674,
# inside 90 % below 1.645 (1.75 would be inside a 94 % interval, 0.9 inside a 68 % one)
WEEKDAY_Z = np.array([0.0, 0.3, -0.5, 0.9, -1.2, 1.75, -2.6])
TRACK_Z = np.repeat([0.2, -0.2, 1.0, -1.0, 2.2, -2.2], [5, 5, 5, 5, 10, 10])


def truth_data(**skip_model: object) -> dict:
    """A ``truth.json`` with every key the line-up reads; effects 0 unless given."""
    sm: dict[str, object] = {
        "weekday_effect": dict.fromkeys(WEEKDAYS, 0.0),
        "hour_effect": {str(h): 0.0 for h in range(24)},
        "position_effect": {str(p): 0.0 for p in range(1, 21)},
        "context_type_effect": {"catalog": 0.1, "radio": -0.1},
        "premium_effect": -0.3,
        "shuffle_effect": 0.35,
        "markov": {"prev_skip_2": 1.0, "no_previous": 0.2},
        "danceability": {
            "standardise_mean": 0.5,
            "standardise_sd": 0.2,
            "main_effect": 0.0,
            "prev_x_current": -0.25,
            "abs_change": 0.3,
        },
        "smooth_effects": {},
        "track_effect": {"sd": 0.5},
        "no_effect_columns": ["context_switch"],
    }
    sm.update(skip_model)
    return {"skip_model": sm}


def _normal(mean: np.ndarray, sd: float | np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(1 chain, DRAWS, K) draws with exactly normal marginals: each column a shuffled GRID."""
    mean, sd = np.broadcast_arrays(np.atleast_1d(mean), np.atleast_1d(sd))
    cols = [m + s * rng.permutation(GRID) for m, s in zip(mean, sd, strict=True)]
    return np.stack(cols, axis=-1)[None]


def _together(mean: np.ndarray, sd: float, rng: np.random.Generator) -> np.ndarray:
    """Like :func:`_normal`, but every column the same shuffle: the quantities err together."""
    return (mean + sd * rng.permutation(GRID)[:, None])[None]


def _coverage(q: pd.DataFrame) -> pd.DataFrame:
    return coverage_table(q).set_index("term")


def test_coverage_per_term_by_hand() -> None:
    rng = np.random.default_rng(1)
    weekday_mean = np.linspace(-0.3, 0.3, 7)
    hour_mean = np.sin(np.arange(24) / 4)
    track_mean = np.linspace(-1, 1, 40)
    track_mean -= track_mean.mean()
    tracks = [f"t{i}" for i in range(40)]
    posterior = xr.Dataset(
        {
            "intercept": (("chain", "draw"), _normal(np.zeros(1), 0.1, rng)[..., 0]),
            "weekday_effect": (("chain", "draw", "weekday"), _normal(weekday_mean, 0.1, rng)),
            "hour_effect": (("chain", "draw", "hour"), _together(hour_mean, 0.2, rng)),
            "track_sigma": (("chain", "draw"), _normal(np.full(1, 0.5), 0.05, rng)[..., 0]),
            "track_effect": (
                ("chain", "draw", "track"),
                _normal(np.r_[track_mean, 0.0], 1.0, rng),
            ),
        },
        coords={
            "chain": [0],
            "draw": np.arange(DRAWS),
            "weekday": list(WEEKDAYS),
            "hour": np.arange(24),
            "track": [*tracks, "__other__"],
        },
    )
    data = truth_data(
        weekday_effect=dict(zip(WEEKDAYS, weekday_mean + 0.1 * WEEKDAY_Z, strict=True)),
        hour_effect={str(h): float(v) for h, v in enumerate(hour_mean + 0.2 * 2.0)},
    )
    track_truth = pd.DataFrame(
        {"intercept": track_mean + TRACK_Z, "plays": np.arange(40) + 2}, index=tracks
    )
    run = RunInputs("hand", xr.DataTree.from_dict({"posterior": posterior}))
    q, notes = recovery_quantities(run, Truth(Path("truth.json"), data, track_truth))
    table = _coverage(q)

    weekday = table.loc["weekday"]
    assert weekday["quantities"] == 7 and weekday["not estimated"] == 0
    assert weekday["covered 50"] == pytest.approx(3 / 7)  # |z| 0, 0.3, 0.5
    assert weekday["covered 90"] == pytest.approx(5 / 7)  # and 0.9, 1.2; not 1.75, 2.6
    # binomial(7, 0.9): P(X <= 4) = 0.0257 > 0.025, P(X >= 7) = 0.478: band 4/7..7/7
    assert (weekday["band 90 low"], weekday["band 90 high"]) == pytest.approx((4 / 7, 1.0))
    assert (weekday["band 50 low"], weekday["band 50 high"]) == pytest.approx((1 / 7, 6 / 7))
    assert weekday["flag"] == weekday["posterior flag"] == ""
    # independent quantities: the posterior band is about the binomial one
    assert 2 / 7 < weekday["posterior band 90 low"] <= 5 / 7
    assert weekday["posterior band 90 high"] == 1.0

    hour = table.loc["hour"]  # every truth two posterior sds above the mean
    assert (hour["quantities"], hour["covered 50"], hour["covered 90"]) == (24, 0.0, 0.0)
    assert hour["flag"] == "50 % low, 90 % low"
    # ... but the hours err together: the posterior covers all of them or none, so a share of 0
    # is what one draw in ten of the posterior itself would show
    assert (hour["posterior band 90 low"], hour["posterior band 90 high"]) == (0.0, 1.0)
    assert hour["posterior flag"] == ""

    scales = table.loc["pooling scales"]
    assert (scales["quantities"], scales["covered 90"]) == (1, 1.0)

    track = table.loc["track effects"]  # __other__ is not a track of the truth: left out
    assert (track["quantities"], track["not estimated"]) == (40, 0)
    assert track["covered 50"] == pytest.approx(10 / 40)
    assert track["covered 90"] == pytest.approx(20 / 40)
    assert "90 % low" in track["flag"] and "90 % low" in track["posterior flag"]
    rows = q[q["term"] == "track effects"].set_index("level")
    assert rows.loc["t0", "truth"] == pytest.approx(track_mean[0] + 0.2)  # mean of truths is 0
    assert rows.loc["t0", "mean"] == pytest.approx(track_mean[0], abs=1e-9)

    # what the model has no term for is listed, never counted as a miss
    for term, n in (("position", 19), ("context type", 2), ("Markov outcome", 1)):
        assert table.loc[term, "quantities"] == 0 and table.loc[term, "not estimated"] == n, term
        assert table.loc[term, "flag"] == ""
    assert q.loc[~q["estimated"], ["in50", "in90", "lo90", "hi90"]].isna().all().all()
    assert any("encoders were not given" in n for n in notes)


def test_gaussian_levels_of_a_laplace_run_by_hand() -> None:
    """A nested-Laplace run's tracks: intervals from the per-level mean and sd, no draws."""
    n = 60
    sd = np.repeat([0.3, 0.6], n // 2)
    mean = np.tile(np.linspace(-0.5, 0.5, n // 2), 2)
    mean -= mean.mean()
    # pairs +-z at the same sd keep the truths' mean at the means' mean
    z = np.tile(np.repeat([0.5, -0.5, 1.5, -1.5, 1.8, -1.8], 5), 2)
    labels = [f"t{i}" for i in range(n)]
    rng = np.random.default_rng(0)
    posterior = xr.Dataset(
        {
            "intercept": (("chain", "draw"), rng.normal(0.0, 0.05, (1, 400))),
            "track_sigma": (("chain", "draw"), rng.normal(0.5, 0.05, (1, 400))),
        }
    )
    levels = xr.Dataset(
        {"track_effect_mean": (("track",), mean), "track_effect_sd": (("track",), sd)},
        coords={"track": labels},
        attrs={"variable": "track_effect"},
    )
    tree = xr.DataTree.from_dict({"posterior": posterior, LEVELS_GROUP: levels})
    truth = pd.DataFrame({"intercept": mean + z * sd, "plays": 3}, index=labels)
    q, notes = recovery_quantities(
        RunInputs("laplace", tree, method="laplace"), Truth(Path("t.json"), truth_data(), truth)
    )
    track = _coverage(q).loc["track effects"]
    assert track["quantities"] == n
    assert track["covered 50"] == pytest.approx(20 / 60)  # |z| = 0.5 only
    assert track["covered 90"] == pytest.approx(40 / 60)  # and 1.5; 1.8 > 1.645
    rows = q[q["term"] == "track effects"]
    assert np.allclose(rows["hi90"] - rows["mean"], 1.6448536 * sd)
    # independent Gaussian levels: the posterior band is the binomial band
    assert (track["posterior band 90 low"], track["posterior band 90 high"]) == pytest.approx(
        binomial_band(n, 0.9)
    )
    assert any("Gaussian" in note for note in notes)


def test_binomial_band() -> None:
    lo, hi = binomial_band(400, 0.9)
    assert lo == pytest.approx(0.87, abs=0.005) and hi == pytest.approx(0.93, abs=0.005)
    assert binomial_band(1, 0.9) == (0.0, 1.0)  # one quantity can never be flagged
    assert all(np.isnan(binomial_band(0, 0.5)))


# --- the section in a report ---------------------------------------------------------------------


def _fake_truth(tmp: Path) -> Truth:
    """A truth for report_fakes' runs: their levels, one context type they lack, a smooth."""
    grid = np.linspace(np.log(50.0), np.log(700.0), 41)
    data = truth_data(
        weekday_effect=dict(zip(WEEKDAYS, np.linspace(-0.2, 0.2, 7), strict=True)),
        hour_effect={str(h): float(0.3 * np.cos(2 * np.pi * (h - 3) / 24)) for h in range(24)},
        position_effect={str(p): float(v) for p, v in enumerate(np.linspace(0.2, -0.2, 20), 1)},
        context_type_effect={"user_collection": 0.1, "catalog": -0.1, "radio": 0.0, "charts": 0.0},
        smooth_effects={
            "duration": {
                "scale": "log",
                "grid": grid.tolist(),
                "effect": (0.2 * np.sin(np.exp(grid) / 100)).tolist(),
            }
        },
        danceability={
            "standardise_mean": 0.5,
            "standardise_sd": 0.29,
            "main_effect": -0.15,
            "prev_x_current": -0.25,
            "abs_change": 0.3,
        },
    )
    path = tmp / "truth.json"
    path.write_text(json.dumps(data))
    labels = [f"t_{i:05d}" for i in range(39)]
    tracks = pd.DataFrame(
        {"intercept": np.random.default_rng(0).normal(0, 0.5, 39), "plays": 5}, index=labels
    )
    return Truth(path, data, tracks)


def test_the_section_and_its_figures_appear_only_with_the_truth(tmp_path: Path) -> None:
    truth = _fake_truth(tmp_path)
    # the posterior and the training plays only: no predictive checks or held-out metrics
    run = RunInputs("good", fake_posterior(), train=fake_plays(80))
    with_truth = report([run], tmp_path / "with", options=FAST, truth=RecoveryInputs(truth))
    text = with_truth.index.read_text()
    assert ">Recovery of the true effects</h2>" in text and ">good: recovery</h3>" in text
    for part in ("levels", "effects", "smooths", "tracks"):
        png = tmp_path / "with" / "figures" / f"good_recovery_{part}.png"
        assert png.stat().st_size > 10_000, part
    assert text.count("truth against the posterior of good.</figcaption>") == 4
    assert "Not estimated (the model has no term for them)" in text
    assert "context_type[charts]" in text  # a level the run does not have: not estimated
    # the fake model lacks a danceability slope: it is part of each track's own effect
    assert "current danceability slope" in text
    recovery = json.loads((tmp_path / "with" / "metrics.json").read_text())["recovery"]
    assert recovery["good"]["weekday"]["quantities"] == 7
    assert recovery["good"]["context type"]["not_estimated"] == 1  # charts
    assert recovery["good"]["track effects"]["quantities"] == 39
    assert (tmp_path / "with" / "recovery_good.csv").is_file()

    without = report([run], tmp_path / "without", options=FAST)
    plain = without.index.read_text()
    assert "Recovery of the true effects" not in plain and "recovery" not in plain
    assert not list((tmp_path / "without" / "figures").glob("*recovery*"))
    assert "recovery" not in json.loads((tmp_path / "without" / "metrics.json").read_text())


# --- end to end ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def laplace_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """300 simulated sessions fitted by nested Laplace (markov: no smooths): (RUN, truth.json)."""
    root = tmp_path_factory.mktemp("recovery_cli")
    sim = simulate(root / "sim", sessions=300, seed=4, tracks=400, days=7)
    store, run = root / "store", root / "run"
    ingest([sim.training_set, sim.track_features], store, n_buckets=4, progress=False)
    fit = ["fit", "--store", str(store), "--model", "markov", "--method", "laplace"]
    assert main([*fit, "--draws", "200", "--out", str(run)]) == 0
    return run, sim.truth


def test_cli_report_with_truth(
    laplace_run: tuple[Path, Path],
    tmp_path: Path,
    capsys,  # noqa: ANN001
) -> None:
    run, truth = laplace_run
    out = tmp_path / "report"
    assert main(["report", str(run), "--out", str(out), "--truth", str(truth)]) == 0
    assert "wrote" in capsys.readouterr().out
    text = (out / "index.html").read_text()
    assert ">Recovery of the true effects</h2>" in text and ">run: recovery</h3>" in text
    assert "per-level mean and sd" in text  # the laplace run's tracks
    assert "smooth of duration" in text  # markov has no smooths: part of each track's effect
    recovery = json.loads((out / "metrics.json").read_text())["recovery"]["run"]
    assert recovery["track effects"]["quantities"] > 50
    assert recovery["hour"]["quantities"] == 24
    assert recovery["smooth: duration"]["quantities"] == 0
    assert recovery["smooth: duration"]["not_estimated"] == 41
    assert recovery["Markov outcome"]["quantities"] == 1
    q = pd.read_csv(out / "recovery_run.csv")
    est = q[q["estimated"]]
    assert (est["lo90"] <= est["lo50"]).all() and (est["hi50"] <= est["hi90"]).all()
    assert est["in90"].isin([0.0, 1.0]).all()


def test_cli_report_with_a_missing_truth_is_one_line(
    laplace_run: tuple[Path, Path],
    tmp_path: Path,
    capsys,  # noqa: ANN001
) -> None:
    run, _ = laplace_run
    code = main(["report", str(run), "--out", str(tmp_path), "--truth", str(tmp_path / "no.json")])
    assert code == 2
    err = capsys.readouterr().err
    assert "--truth" in err and "does not exist" in err and len(err.strip().splitlines()) == 1
