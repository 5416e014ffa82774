"""Building the PyMC models: names, coords, logp and its gradient, prediction arithmetic.

No sampling here. Log-probabilities are evaluated with PyTensor's Python linker and no graph
rewrites, which avoids C compilation (minutes on a busy 2-core machine).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pymc as pm
import pytest

from model_points import PY_MODE, draws_at, logp_and_grad, random_point
from skipmodel.errors import SkipmodelError
from skipmodel.model.build import build, build_model
from skipmodel.model.design import build_design
from skipmodel.model.prediction import linear_predictor_draws, predict_design, predict_sequential
from skipmodel.model.spec import (
    VARIANTS,
    Fixed,
    Markov,
    ModelSpec,
    Pooled,
    Priors,
    Seasonal,
    Smooth,
    get_variant,
)
from skipmodel.simulate.plays import toy_plays

MODELS = Path(__file__).resolve().parents[1] / "models"

EXPECTED_VARIABLES = {
    "baseline": {"intercept", "track_sigma", "track_z"},
    "seasonal": {"weekday_effect", "hour_sigma", "hour_z", "position_z"},  # toy data: thin modes
    # With position modelled, "no previous play" is fixed at 0: the free part is false / true.
    "markov": {"prev_skip_2_observed_effect", "markov_prev_beta", "markov_interaction_beta"},
    "smooth": {"duration_amplitude"},  # fixed lengthscale: rotated modes, coef and/or z
    "full": {"context_type_sigma", "prev2_skip_2_observed_effect", "fixed_beta"},
    "session": {"session_sigma", "session_z"},
}
EXPECTED_DETERMINISTICS = {
    "seasonal": {"hour_effect", "position_effect"},
    "markov": {"prev_skip_2_effect"},
    "smooth": {"duration_effect", "us_popularity_estimate_effect"},
    "full": {"context_type_effect", "prev2_skip_2_effect"},
}


@pytest.fixture(scope="module")
def plays() -> pd.DataFrame:
    return toy_plays(30, n_tracks=40, seed=5)


@pytest.fixture(scope="module")
def models_from_toml(plays) -> dict[str, tuple[pm.Model, object]]:
    return {
        name: build(ModelSpec.load(MODELS / f"{name}.toml"), plays) for name in sorted(VARIANTS)
    }


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_toml_and_python_build_the_identical_model(plays, models_from_toml, name) -> None:
    from_toml, _ = models_from_toml[name]
    from_python, _ = build(get_variant(name), plays)
    assert [v.name for v in from_toml.free_RVs] == [v.name for v in from_python.free_RVs]
    assert {k: tuple(v) for k, v in from_toml.coords.items()} == {
        k: tuple(v) for k, v in from_python.coords.items()
    }
    point = from_toml.initial_point()
    lp_toml, grad = logp_and_grad(from_toml, point)
    lp_python, _ = logp_and_grad(from_python, from_python.initial_point())
    assert lp_toml == pytest.approx(lp_python, rel=1e-12)
    assert np.isfinite(lp_toml)
    assert np.isfinite(grad).all() and np.abs(grad).sum() > 0


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_has_expected_named_variables_and_coords(models_from_toml, name) -> None:
    model, design = models_from_toml[name]
    names = {v.name for v in model.free_RVs}
    # Each variant adds to the previous one (baseline < ... < full < session).
    order = ["baseline", "seasonal", "markov", "smooth", "full", "session"]
    for earlier in order[: order.index(name) + 1]:
        assert EXPECTED_VARIABLES[earlier] <= names, earlier
        assert EXPECTED_DETERMINISTICS.get(earlier, set()) <= {v.name for v in model.deterministics}
    assert tuple(model.coords["track"]) == design.coords["track"]
    if name != "baseline":
        assert tuple(model.coords["weekday"]) == ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
        assert tuple(model.coords["hour"]) == tuple(range(24))
        assert model.named_vars_to_dims["hour_effect"] == ("hour",)
    if name in ("markov", "smooth", "full"):
        assert tuple(model.coords["prev_skip_2"]) == ("no_previous", "false", "true")
        assert model.named_vars_to_dims["prev_skip_2_effect"] == ("prev_skip_2",)
    assert model.observed_RVs[0].name == "skip_2"
    assert "track_effect" not in model.named_vars or len(design.coords["track"]) <= 500


EVERY_OPTION = ModelSpec(
    name="every_option",
    terms=(
        Pooled(column="track_id_clean", min_count=3),
        Pooled(
            column="context_type", slopes=("danceability", "duration"), parametrization="centered"
        ),
        Seasonal(
            hour="periodic_gp", hour_harmonics=4, day_of_month=True, parametrization="centered"
        ),
        Markov(lag2=True, features=("energy",), current=False, interactions=False),
        Smooth(column="duration", log=True, m=7, c=2.0, lengthscale="free"),
        Smooth(column="us_popularity_estimate", lengthscale=0.8),
        Fixed(
            columns=("premium", "danceability", "hist_user_behavior_reason_start", "prev_skip_1"),
            log=("danceability",),
        ),
    ),
)


@pytest.mark.parametrize(
    "spec", [get_variant("full"), get_variant("smooth"), EVERY_OPTION], ids=lambda s: s.name
)
def test_numpy_prediction_reproduces_the_model_logit(plays, spec) -> None:
    design = build_design(spec, plays)
    model = build_model(design, record_logit=True)
    point = random_point(model, seed=1)
    draws = draws_at(model, point)
    # the draws are the point's values, not random draws from the prior
    np.testing.assert_allclose(draws["intercept"][0], point["intercept"], rtol=1e-12)
    eta = linear_predictor_draws(design, draws, rng=np.random.default_rng(0))
    np.testing.assert_allclose(eta[0], draws["logit_p"][0], rtol=1e-10, atol=1e-10)
    lp, grad = logp_and_grad(model, point)
    assert np.isfinite(lp) and np.isfinite(grad).all()


def test_mixed_pool_centres_informative_levels_and_prediction_agrees(plays) -> None:
    # One track with a third of the plays: informative, so centred; the others stay non-centred.
    skewed = toy_plays(30, n_tracks=120, seed=5)  # >= MIXED_MIN_LEVELS tracks
    skewed.loc[skewed.index % 3 == 0, "track_id_clean"] = "t_hit"
    spec = ModelSpec(
        terms=(Pooled(column="track_id_clean"), Seasonal(weekday=False)),
        priors=Priors(group_sigma=1.0, smooth_sigma=1.0),
    )
    design = build_design(spec, skewed)
    td = design.term("pooled_track")
    assert td.settings["parametrization"] == "mixed"
    assert design.coords["track_centered"] == ("t_hit",)
    assert "t_hit" not in design.coords["track_noncentered"]
    # the random walks' smoothest modes are informed too, the wiggly ones are not
    assert design.coords["hour_mode_centered"] == (0, 1)
    assert design.coords["position_mode_noncentered"][0] == 2
    model = build_model(design, record_logit=True)
    named = set(model.named_vars)
    assert {"track_z", "track_centered_effect", "track_effect", "hour_coef", "hour_z"} <= named
    assert model.named_vars_to_dims["track_z"] == ("track_noncentered",)
    point = random_point(model, seed=2)
    draws = draws_at(model, point)
    eta = linear_predictor_draws(design, draws, rng=np.random.default_rng(0))
    np.testing.assert_allclose(eta[0], draws["logit_p"][0], rtol=1e-10, atol=1e-10)
    # the same without the recorded effect table (pools of more than 500 levels)
    del draws["track_effect"]
    again = linear_predictor_draws(design, draws, rng=np.random.default_rng(0))
    np.testing.assert_allclose(again, eta, rtol=1e-10, atol=1e-10)
    lp, grad = logp_and_grad(model, point)
    assert np.isfinite(lp) and np.isfinite(grad).all()


def test_periodic_gp_hour_joins_23_and_0(plays) -> None:
    spec = ModelSpec(terms=(Seasonal(weekday=False, position=False, hour="periodic_gp"),))
    model, _ = build(spec, plays)
    effect = pm.draw(model["hour_effect"], draws=3000, random_seed=11, mode=PY_MODE)
    corr = np.corrcoef(effect.T)
    assert abs(corr[23, 0] - corr[0, 1]) < 0.05
    assert corr[23, 0] > corr[0, 12] + 0.2


# --- prediction with hand-made draws (no sampling) ---------------------------------------------


def test_unseen_track_draws_from_the_population(plays) -> None:
    spec = ModelSpec(terms=(Pooled(column="track_id_clean"),))
    design = build_design(spec, plays)
    n_draws, n_levels = 4000, len(design.coords["track"])
    rng = np.random.default_rng(2)
    draws = {
        "intercept": np.zeros(n_draws),
        "track_sigma": np.full(n_draws, 0.8),
        "track_z": np.tile(np.linspace(-1, 1, n_levels), (n_draws, 1)),
    }
    new = plays.head(4).assign(
        track_id_clean=["t_unseen_1", "t_unseen_2", "t_unseen_1", plays["track_id_clean"].iloc[0]]
    )
    new_design = build_design(spec, new, encoders=design.encoders, require_outcome=False)
    eta = linear_predictor_draws(new_design, draws, rng=rng)
    assert eta[:, 0].std() == pytest.approx(0.8, rel=0.05)
    assert abs(eta[:, 0].mean()) < 0.05
    assert abs(np.corrcoef(eta[:, 0], eta[:, 1])[0, 1]) < 0.05, "distinct new tracks independent"
    np.testing.assert_array_equal(eta[:, 0], eta[:, 2])  # the same new track: the same draw
    seen = design.coords["track"].index(plays["track_id_clean"].iloc[0])
    np.testing.assert_allclose(eta[:, 3], 0.8 * np.linspace(-1, 1, n_levels)[seen])
    pred = predict_design(new_design, draws)
    assert pred.p_lo[0] < 0.5 < pred.p_hi[0]
    assert pred.p_hi[0] - pred.p_lo[0] > pred.p_hi[3] - pred.p_lo[3]


def test_sequential_prediction_rolls_simulated_outcomes_forward(plays) -> None:
    spec = ModelSpec(terms=(Markov(),))
    design = build_design(spec, plays)
    n_draws = 200
    draws = {
        "intercept": np.zeros(n_draws),
        # no previous / previous not skipped / previous skipped
        "prev_skip_2_effect": np.tile([0.0, -6.0, 6.0], (n_draws, 1)),
    }
    ids, pred = predict_sequential(design, draws, plays, seed=3)
    frame = plays.set_index(["session_id", "session_position"])
    lengths = frame["session_length"].groupby(level=0).first()
    assert len(ids) == sum(n - n // 2 for n in lengths)
    # With so strong a memory, every predicted play repeats the last observed outcome.
    for (session, position), p in zip(ids.itertuples(index=False), pred.p_skip, strict=True):
        last_seen = frame.loc[(session, lengths[session] // 2), "skip_2"]
        assert (p > 0.95) if last_seen else (p < 0.05), (session, position)
    # Ordinary prediction uses the real previous outcomes instead and differs.
    plain = predict_design(design, draws)
    assert not np.allclose(plain.p_skip[-len(ids) :], pred.p_skip)
    # reveal="all": every earlier outcome is known, so the same plays match ordinary prediction.
    ids_all, pred_all = predict_sequential(design, draws, plays, seed=3, reveal="all")
    pd.testing.assert_frame_equal(ids_all, ids)
    second = np.flatnonzero(
        plays["session_position"].to_numpy() > plays["session_length"].to_numpy() // 2
    )
    np.testing.assert_allclose(pred_all.p_skip, plain.p_skip[second])
    with pytest.raises(SkipmodelError, match="reveal: invalid value 'some'"):
        predict_sequential(design, draws, plays, reveal="some")


def test_binomial_cells_give_the_bernoulli_logp_up_to_a_constant(plays) -> None:
    """The likelihood is a swappable piece: Binomial on aggregated cells == Bernoulli on rows."""
    from dataclasses import replace

    from scipy.special import gammaln

    from skipmodel.model.design import TermDesign

    spec = ModelSpec(terms=(Pooled(column="track_id_clean"),))
    rows = build_design(spec, plays)
    td = rows.terms[0]
    cells, cell_of_row = np.unique(td.codes["level"], return_inverse=True)
    trials = np.bincount(cell_of_row)
    skips = np.bincount(cell_of_row, weights=rows.outcome).astype(np.int64)
    cell_term = TermDesign(
        td.term,
        td.name,
        codes={"level": cells.astype(np.int32)},
        coords=td.coords,
        settings=td.settings,
    )
    aggregated = replace(rows, n_obs=len(cells), outcome=skips, trials=trials, terms=(cell_term,))
    assert aggregated.likelihood == "binomial"
    m_rows, m_cells = build_model(rows), build_model(aggregated)
    point = random_point(m_rows, seed=4)
    lp_rows, g_rows = logp_and_grad(m_rows, point)
    lp_cells, g_cells = logp_and_grad(m_cells, point)
    log_choose = gammaln(trials + 1) - gammaln(skips + 1) - gammaln(trials - skips + 1)
    assert lp_cells - log_choose.sum() == pytest.approx(lp_rows, rel=1e-10)
    np.testing.assert_allclose(g_cells, g_rows, rtol=1e-8, atol=1e-10)


def test_no_previous_is_fixed_at_zero_when_position_carries_it(plays) -> None:
    # Without position, "no previous play" is a level of its own (three-level zero-sum effect).
    alone = build_model(build_design(ModelSpec(terms=(Markov(),)), plays))
    assert "prev_skip_2_effect" in {v.name for v in alone.free_RVs}
    # With position, only the sum of position 1 and "no previous" would be identified: the
    # latter is fixed at 0 and false / true form a zero-sum pair.
    spec = ModelSpec(terms=(Seasonal(weekday=False, hour="none"), Markov(lag2=True)))
    design = build_design(spec, plays)
    model = build_model(design)
    free = {v.name for v in model.free_RVs}
    assert {"prev_skip_2_observed_effect", "prev2_skip_2_observed_effect"} <= free
    assert "prev_skip_2_effect" not in free
    assert tuple(model.coords["prev_skip_2_observed"]) == ("false", "true")
    draws = draws_at(model, random_point(model, seed=4))
    for name in ("prev_skip_2_effect", "prev2_skip_2_effect"):
        table = draws[name][0]
        assert table[0] == 0.0 and table[1] == pytest.approx(-table[2]) and table[2] != 0.0
    # A run fitted before this choice (no setting in its encoders) keeps the three levels.
    del design.encoders.settings["markov.no_previous"]
    again = build_design(spec, plays, encoders=design.encoders)
    assert "prev_skip_2_effect" in {v.name for v in build_model(again).free_RVs}


def test_levels_of_a_nullable_integer_do_not_depend_on_the_pandas_conversion(tmp_path) -> None:
    from skipmodel.load.loaders import load_pandas, load_table
    from store_factory import random_logs, random_tracks, write_store

    rng = np.random.default_rng(4)
    tracks = random_tracks(rng, 30, coverage=0.7)
    write_store(tmp_path, random_logs(rng, 40, n_tracks=30), tracks, n_buckets=2)
    spec = ModelSpec(
        name="keys",
        terms=(Fixed(columns=("key",), categorical=("key",)), Pooled(column="release_year")),
    )
    table = load_table(tmp_path)
    assert table.column("key").null_count > 0  # plays of tracks without features
    fitted = build_design(spec, load_pandas(tmp_path))
    assert "3" in fitted.term("fixed").coords["key"]  # an Int8 level, not "3.0"
    # prediction converts Arrow batches itself (nulls make them float64): the same levels
    for other in (table, table.to_pandas()):
        again = build_design(spec, other, encoders=fitted.encoders, require_outcome=False)
        for mine, theirs in zip(fitted.terms, again.terms, strict=True):
            for key, codes in mine.codes.items():
                np.testing.assert_array_equal(codes, theirs.codes[key])
