"""Effects, predictive checks, surfaces and LOO comparison on small hand-made inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from report_fakes import fake_posterior
from skipmodel.report.checks import binned_surface, group_check
from skipmodel.report.compare import compare_runs, run_loo
from skipmodel.report.effects import (
    logistic,
    posterior_draws,
    probability_effects,
    scale_parameters,
    slope_parameters,
    track_extremes,
)
from skipmodel.report.figures import plot_curve_effect
from skipmodel.report.runs import cap_sessions


@pytest.fixture(scope="module")
def tree():  # noqa: ANN201
    return fake_posterior()


def test_effects_found_by_name_and_kind(tree) -> None:  # noqa: ANN001
    kinds = {e.variable: e.kind for e in probability_effects(tree)}
    assert kinds == {
        "hour_effect": "cyclic",
        "weekday_effect": "categorical",
        "prev_skip_2_effect": "categorical",
        "context_type_effect": "categorical",
        "position_effect": "curve",
        "duration_effect": "curve",
    }
    assert set(scale_parameters(tree)) == {
        "hour_sigma",
        "position_sigma",
        "track_sigma",
        "duration_amplitude",
    }
    assert slope_parameters(tree) == []


def test_effect_is_logistic_of_intercept_plus_effect(tree) -> None:  # noqa: ANN001
    weekday = next(e for e in probability_effects(tree) if e.variable == "weekday_effect")
    intercept = posterior_draws(tree, "intercept").values
    effect = posterior_draws(tree, "weekday_effect").values
    np.testing.assert_allclose(weekday.probability, logistic(intercept[:, None] + effect))
    assert weekday.labels == ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    s = weekday.summary()
    assert (s.lower <= s.mean).all() and (s.mean <= s.upper).all()
    # the fake's weekday effect rises Mon -> Sun
    assert s.mean[0] < s.mean[-1]


def test_track_extremes_from_sigma_times_z(tree) -> None:  # noqa: ANN001
    most, least = track_extremes(tree, n=5)
    assert len(most.labels) == 5 and "__other__" not in most.labels + least.labels
    assert most.summary().mean.min() > least.summary().mean.max()
    z = tree["posterior"]["track_z"].mean(("chain", "draw")).to_series()
    assert most.labels[0] == z.drop("__other__").idxmax()


def test_mixed_track_pool_joins_both_parts() -> None:
    tree = fake_posterior(mixed_tracks=3)
    # the centred part is not an effect of its own ...
    assert "track_centered_effect" not in {e.variable for e in probability_effects(tree)}
    # ... its levels rank with the non-centred ones
    most, least = track_extremes(tree, n=5)
    assert most.labels[0] == "hit_0"
    assert "__other__" not in most.labels + least.labels
    assert most.summary().mean.min() > least.summary().mean.max()


def test_cyclic_curve_is_closed(tree, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    import matplotlib.axes

    hour = next(e for e in probability_effects(tree) if e.kind == "cyclic")
    drawn: list[np.ndarray] = []
    original = matplotlib.axes.Axes.plot

    def spy(self, x, y, *args, **kwargs):  # noqa: ANN001, ANN202
        drawn.append((np.asarray(x), np.asarray(y)))
        return original(self, x, y, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", spy)
    plot_curve_effect(hour, tmp_path / "hour.png")
    x, y = drawn[0]
    assert x[0] == 0 and x[-1] == 24 and len(x) == 25
    assert y[-1] == pytest.approx(y[0])  # 24 h is 0 h again: the curve meets itself


def test_group_check_by_hand() -> None:
    groups = np.array(["a", "a", "b", "b", "b"])
    y = np.array([1, 0, 1, 1, 0])
    p = np.tile([0.5, 0.5, 1.0, 1.0, 0.0], (400, 1))
    check = group_check("g", groups, y, p, seed=1)
    assert check.labels == ("a", "b")
    assert check.count.tolist() == [2, 3]
    np.testing.assert_allclose(check.observed, [0.5, 2 / 3])
    # group b is deterministic under p: every replicate has rate 2/3
    np.testing.assert_allclose(check.replicated[:, 1], 2 / 3)
    assert abs(check.replicated[:, 0].mean() - 0.5) < 0.06
    assert check.coverage == 1.0
    ordered = group_check("g", groups, y, p, order=["b", "a"])
    assert ordered.labels == ("b", "a")
    np.testing.assert_allclose(ordered.observed, [2 / 3, 0.5])


def test_group_check_flags_a_miss() -> None:
    y = np.ones(200)
    check = group_check("all", np.zeros(200), y, np.full((100, 200), 0.2))
    assert check.coverage == 0.0


def test_binned_surface_by_hand() -> None:
    prev = np.array([0.1, 0.1, 0.9, 0.9, np.nan] * 10)
    cur = np.array([0.1, 0.9, 0.1, 0.9, 0.5] * 10)
    y = np.array([1, 0, 0, 1, 1] * 10)
    p = np.array([0.8, 0.2, 0.3, 0.7, 0.5] * 10)
    s = binned_surface("x", prev, cur, y, p, bins=2, min_count=5)
    assert s.count.tolist() == [[10, 10], [10, 10]]  # the NaN row is dropped
    np.testing.assert_allclose(s.empirical, [[1, 0], [0, 1]])
    np.testing.assert_allclose(s.predicted, [[0.8, 0.2], [0.3, 0.7]])
    thin = binned_surface("x", prev, cur, y, p, bins=2, min_count=11)
    assert np.isnan(thin.empirical).all()


def test_loo_and_comparison() -> None:
    a, b = fake_posterior(seed=0), fake_posterior(seed=1)
    la, lb = run_loo(a, "a"), run_loo(b, "b")
    assert la.method == "PSIS-LOO" and la.n_obs == 300 and np.isfinite(la.elpd_loo)
    table, why = compare_runs({"a": la, "b": lb})
    assert why == "" and set(table.index) == {"a", "b"}
    sub = run_loo(a, "a", full_max=100, subsample=50)
    assert sub.method.startswith("subsampled PSIS-LOO (50 of 300)")
    other = run_loo(fake_posterior(n_obs=200), "c")
    table, why = compare_runs({"a": la, "c": other})
    assert table is None and "not comparable" in why
    assert compare_runs({"a": la})[0] is None


def test_loo_absent_without_log_likelihood() -> None:
    import arviz_base as azb

    dt = azb.from_dict({"posterior": {"mu": np.zeros((2, 10))}})
    assert run_loo(dt, "x") is None


def test_cap_sessions_is_deterministic_and_whole() -> None:
    frame = pd.DataFrame(
        {
            "session_id": np.repeat([f"s{i}" for i in range(50)], 3),
            "session_position": [1, 2, 3] * 50,
        }
    )
    one = cap_sessions(frame, 10, seed=0)
    two = cap_sessions(frame.sample(frac=1.0, random_state=2), 10, seed=0)
    assert one["session_id"].nunique() == 10
    assert set(one["session_id"]) == set(two["session_id"])
    assert (one.groupby("session_id").size() == 3).all()
    assert cap_sessions(frame, None) is frame


def test_session_chunks_keep_sessions_whole() -> None:
    from skipmodel.report.runs import _session_chunks

    sizes = [3, 5, 2, 7, 1, 4]
    frame = pd.DataFrame({"session_id": np.repeat([f"s{i}" for i in range(6)], sizes)})
    chunks = _session_chunks(frame, 6)
    assert sum(len(c) for c in chunks) == len(frame)
    seen = [set(c["session_id"]) for c in chunks]
    assert all(not (a & b) for i, a in enumerate(seen) for b in seen[i + 1 :])
    assert len(chunks) > 1


def test_heldout_notes_a_run_without_sequential_prediction(tmp_path: Path) -> None:
    import dataclasses

    from report_fakes import fake_run
    from skipmodel.errors import SkipmodelError
    from skipmodel.report.heldout import heldout_section

    def refuse(frame: pd.DataFrame, reveal: str = "wsdm") -> pd.DataFrame:
        raise SkipmodelError("cannot roll prev_reason_end forward")

    run = dataclasses.replace(fake_run("nolag"), predict_second_half=refuse)
    section, metrics = heldout_section([run], tmp_path)
    assert "nolag" in metrics["rows"] and "nolag" not in metrics["second_half"]
    assert {"overall rate", "per-track rate", "repeat last skip"} <= set(metrics["second_half"])
    texts = [b.text for b in section.blocks if hasattr(b, "text")]
    assert any("no sequential prediction (cannot roll" in t for t in texts)
    assert list(metrics["rows"])[0] == "nolag"  # models before baselines


def test_a_level_fixed_at_zero_is_left_out_of_its_panel(tree) -> None:  # noqa: ANN001
    fixed = tree.copy()
    posterior = fixed["posterior"].to_dataset()
    effect = posterior["prev_skip_2_effect"].copy()
    effect.loc[{"prev_skip_2": "no_previous"}] = 0.0  # position carries "no previous play"
    fixed["posterior"] = xr.DataTree(posterior.assign(prev_skip_2_effect=effect))
    prev = next(e for e in probability_effects(fixed) if e.variable == "prev_skip_2_effect")
    assert prev.labels == ("false", "true")
    assert prev.probability.shape[1] == 2
    # a free level stays, even when its draws happen to be near 0
    again = next(e for e in probability_effects(tree) if e.variable == "prev_skip_2_effect")
    assert again.labels == ("no_previous", "false", "true")


def test_effects_are_drawn_as_the_run_recorded() -> None:
    from skipmodel.report.effects import with_effect_plots

    recorded = {
        # a cyclic dimension drawn as the run says (a curve), whatever its name
        "hour_effect": {"variable": "hour_effect", "dim": "hour", "draw": "curve", "term": "x"},
        "context_type_effect": {
            "variable": "context_type_effect",
            "dim": "context_type",
            "draw": "categorical",
            "term": "pooled",
        },
        "duration_effect": {
            "variable": "duration_effect",
            "dim": "duration_grid",
            "draw": "curve",
            "term": "smooth",
        },
    }
    tree = with_effect_plots(fake_posterior(draws=50), recorded)
    kinds = {e.variable: e.kind for e in probability_effects(tree)}
    # unrecorded variables (here weekday, position, prev_skip_2) are not effects of this run
    assert kinds == {
        "hour_effect": "curve",
        "context_type_effect": "categorical",
        "duration_effect": "curve",
    }
    # runs fitted before drawings were recorded keep the guess from dimension names
    assert with_effect_plots(fake_posterior(draws=50), {}).attrs == fake_posterior(draws=50).attrs
