"""Term kinds behind one registry: the interface's generic pieces and the interaction kind.

The interaction kind (``Interaction``) is the proof that a kind lives in one module: these tests
build it, check its codes, TOML, prediction of unseen pairs, aggregation and a quick recovery.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pandas as pd
import pyarrow as pa
import pymc as pm
import pytest

from skipmodel.errors import SkipmodelError
from skipmodel.model.build import build_model
from skipmodel.model.design import build_design
from skipmodel.model.encoders import (
    MISSING,
    OTHER,
    as_text,
    joint_text,
    level_label,
    level_map,
)
from skipmodel.model.prediction import linear_predictor_draws
from skipmodel.model.spec import (
    TERM_KINDS,
    Fixed,
    Interaction,
    Markov,
    ModelSpec,
    Pooled,
    Seasonal,
    Smooth,
)
from skipmodel.model.terms import KINDS, kind_of
from skipmodel.model.terms.base import GradientSums, evaluate_layout
from skipmodel.scale.aggregate import Cells, check_aggregable
from skipmodel.scale.binomial import cells_design
from skipmodel.simulate.plays import toy_plays

PAIR = Interaction(columns=("context_type", "hour_of_day"))
LABEL = "context_type_x_hour_of_day"


@pytest.fixture(scope="module")
def plays() -> pd.DataFrame:
    return toy_plays(40, n_tracks=30, seed=3)


# --- the registry ---------------------------------------------------------------------------


def test_every_spec_kind_has_one_registered_kind() -> None:
    assert set(KINDS) == set(TERM_KINDS)
    for name, kind in KINDS.items():
        assert kind.spec is TERM_KINDS[name]


def test_label_and_rare_level_rules_agree() -> None:
    values = pd.Series([True, False, None, True], dtype=object)
    assert list(as_text(values)) == [level_label(v) for v in [True, False, None, True]]
    assert list(as_text(values)) == ["true", "false", MISSING, "true"]
    lm = level_map("c", {"a": 3, "b": 1, "c": 2}, min_count=2)
    assert lm.levels == ("a", "c", OTHER) and lm.rare == ("b",)


# --- the interaction kind -------------------------------------------------------------------


def test_interaction_design_codes_are_the_observed_pairs(plays) -> None:
    spec = ModelSpec(terms=(PAIR,))
    td = build_design(spec, plays).terms[0]
    lm = build_design(spec, plays).encoders.levels[td.name]
    pairs = [f"{c} × {h}" for c, h in zip(plays.context_type, plays.hour_of_day, strict=True)]
    assert set(lm.levels) == set(pairs)
    assert td.name == f"interaction_{LABEL}"
    np.testing.assert_array_equal(np.asarray(lm.levels, dtype=object)[td.codes["level"]], pairs)
    assert td.coords[LABEL] == lm.levels


def test_interaction_pools_rare_pairs(plays) -> None:
    spec = ModelSpec(terms=(Interaction(columns=("context_type", "hour_of_day"), min_count=15),))
    lm = next(iter(build_design(spec, plays).encoders.levels.values()))
    counts = joint_text(plays, PAIR.columns).value_counts()
    assert set(lm.rare) == set(counts[counts < 15].index)
    assert (OTHER in lm.levels) == bool(lm.rare)


def test_interaction_toml_round_trip_and_validation() -> None:
    spec = ModelSpec(name="pairs", terms=(Pooled(column="context_type"), PAIR))
    assert ModelSpec.from_toml(spec.to_toml()) == spec
    assert 'kind = "interaction"' in spec.to_toml()
    with pytest.raises(SkipmodelError, match="two different columns"):
        Interaction(columns=("context_type",)).validate("t")
    with pytest.raises(SkipmodelError, match="exists"):
        ModelSpec(terms=(PAIR, PAIR))


def test_interaction_builds_with_named_variables(plays) -> None:
    spec = ModelSpec(terms=(Seasonal(position=False), PAIR))
    design = build_design(spec, plays)
    model = build_model(design)
    names = set(model.named_vars)
    assert {f"{LABEL}_sigma", f"{LABEL}_effect"} <= names
    assert model.coords[LABEL] == design.coords[LABEL]
    point = model.initial_point()
    assert np.isfinite(model.compile_dlogp()(point)).all()


def test_predict_draws_unseen_pairs_from_the_pool(plays) -> None:
    spec = ModelSpec(terms=(PAIR,))
    design = build_design(spec, plays)
    n_pairs = len(design.coords[LABEL])
    new = plays.head(6).copy()
    new["context_type"] = ["never_seen"] * 3 + list(plays.context_type[:3])
    later = build_design(spec, new, encoders=design.encoders, require_outcome=False)
    codes = later.terms[0].codes
    assert (codes["level"][:3] == -1).all() and (codes["level"][3:] >= 0).all()
    rng = np.random.default_rng(0)
    draws = {
        "intercept": np.zeros(400),
        f"{LABEL}_sigma": np.full(400, 0.7),
        f"{LABEL}_effect": rng.normal(0, 0.7, (400, n_pairs)),
    }
    eta = linear_predictor_draws(later, draws, rng=rng)
    assert np.isfinite(eta).all()
    assert eta[:, 0].std() == pytest.approx(0.7, rel=0.15)  # a fresh draw from N(0, sigma)
    np.testing.assert_array_equal(eta[:, 3], draws[f"{LABEL}_effect"][:, codes["level"][3]])


def test_interaction_aggregates_into_cells(plays) -> None:
    spec = ModelSpec(terms=(Seasonal(position=False, hour="none"), PAIR))
    check = check_aggregable(spec)
    assert check.aggregable, check.reasons
    keys = list(check.key_columns)
    grouped = (
        plays.assign(trials=1)
        .groupby(keys, as_index=False)
        .agg(trials=("trials", "sum"), skips=("skip_2", "sum"))
    )
    cells = Cells(
        pa.Table.from_pandas(grouped, preserve_index=False), "skip_2", tuple(keys), len(plays)
    )
    design = cells_design(spec, cells)
    assert design.likelihood == "binomial"
    assert (design.terms[1].codes["level"] >= 0).all()
    # the cells' logp is the rows' up to the binomial constant, at any point
    rows_model = build_model(build_design(spec, plays, encoders=design.encoders))
    cells_model = build_model(design)
    point = rows_model.initial_point()
    point = {k: v + 0.1 for k, v in point.items()}
    from skipmodel.scale.binomial import log_binomial_constant

    diff = cells_model.compile_logp()(point) - rows_model.compile_logp()(point)
    assert diff == pytest.approx(log_binomial_constant(cells), abs=1e-6)


def test_a_continuous_input_refuses_cells_with_a_reason() -> None:
    check = check_aggregable(ModelSpec(terms=(Smooth(column="duration"),)))
    assert not check.aggregable
    assert "smooth of a continuous column without binning" in check.reasons[0]


# --- gradient and curvature sums ------------------------------------------------------------

GRADIENT_SPEC = ModelSpec(
    terms=(
        Seasonal(day_of_month=False),
        Markov(features=("danceability",)),
        Smooth(column="duration", log=True),
        Pooled(column="context_type", slopes=("energy",)),
        Fixed(columns=("premium", "hist_user_behavior_reason_start")),
        PAIR,
    )
)


def _loglik(y: np.ndarray, eta: np.ndarray) -> float:
    return float(np.sum(y * eta - np.logaddexp(0.0, eta)))


def test_gradient_and_curvature_match_finite_differences() -> None:
    plays = toy_plays(6, n_tracks=10, seed=1)
    design = build_design(GRADIENT_SPEC, plays)
    y = design.outcome.astype(float)
    rng = np.random.default_rng(0)
    layouts = [kind_of(td.term).layout(td) for td in design.terms]
    params: dict[str, np.ndarray] = {}
    for layout in layouts:
        for g in layout.gathers:
            params[g.table] = rng.normal(0, 0.3, g.n_levels)
        for s in layout.slopes:
            params[s.coef] = rng.normal(0, 0.3, np.shape(s.values)[1])
        for ls in layout.level_slopes:
            params[ls.table] = rng.normal(0, 0.3, (np.shape(ls.values)[1], ls.n_levels))

    def eta(p: dict[str, np.ndarray]) -> np.ndarray:
        return sum(evaluate_layout(layout, p) for layout in layouts) - 0.2

    e = eta(params)
    prob = 1 / (1 + np.exp(-e))
    residual, weight = y - prob, prob * (1 - prob)
    sums = [kind_of(td.term).gradient(td, residual, weight) for td in design.terms]
    total = sums[0]
    for s in sums[1:]:
        total = total + s
    assert set(total.gradient) == set(params)
    h = 1e-5
    for name, value in params.items():
        for idx in list(np.ndindex(value.shape))[:6]:
            up, down = dict(params), dict(params)
            up[name], down[name] = value.copy(), value.copy()
            up[name][idx] += h
            down[name][idx] -= h
            lu, ld, l0 = _loglik(y, eta(up)), _loglik(y, eta(down)), _loglik(y, e)
            assert total.gradient[name][idx] == pytest.approx((lu - ld) / (2 * h), abs=1e-5)
            second = (lu - 2 * l0 + ld) / h**2
            assert total.curvature[name][idx] == pytest.approx(-second, abs=2e-3)


def test_gradient_sums_merge_across_buckets() -> None:
    plays = toy_plays(6, n_tracks=10, seed=2)
    design = build_design(GRADIENT_SPEC, plays)
    head = build_design(GRADIENT_SPEC, plays.iloc[:50], encoders=design.encoders)
    tail = build_design(GRADIENT_SPEC, plays.iloc[50:], encoders=design.encoders)
    rng = np.random.default_rng(1)
    r, w = rng.normal(size=len(plays)), rng.uniform(0, 0.25, len(plays))
    for whole, a, b in zip(design.terms, head.terms, tail.terms, strict=True):
        kind = kind_of(whole.term)
        merged: GradientSums = kind.gradient(a, r[:50], w[:50]) + kind.gradient(b, r[50:], w[50:])
        full = kind.gradient(whole, r, w)
        assert merged.n_rows == full.n_rows == len(plays)
        for name in full.gradient:
            np.testing.assert_allclose(merged.gradient[name], full.gradient[name], atol=1e-9)
            np.testing.assert_allclose(merged.curvature[name], full.curvature[name], atol=1e-9)


def test_only_the_markov_and_session_kinds_keep_group_state() -> None:
    design = build_design(GRADIENT_SPEC, toy_plays(6, n_tracks=10, seed=1))
    draws = {"prev_skip_2_effect": np.array([[0.0, -1.0, 1.0]])}
    for td in design.terms:
        state = kind_of(td.term).group_state(td, draws)
        assert (state is None) == (td.term.kind not in ("markov", "session"))
    markov = design.term("markov")
    state = kind_of(markov.term).group_state(markov, draws)
    assert state is not None
    eta = np.zeros(1)
    assert state.logit(5, eta)[0] == draws["prev_skip_2_effect"][0, markov.codes["prev"][5]]
    state.observe(5, np.array([True]), [6, None])
    assert state.logit(6, eta)[0] == 1.0


def test_effect_drawings_are_recorded_in_the_encoders(plays) -> None:
    design = build_design(GRADIENT_SPEC, toy_plays(6, n_tracks=10, seed=1))
    effects = design.encoders.effects
    assert effects["hour_effect"]["draw"] == "cyclic"
    assert effects["position_effect"] == {
        "variable": "position_effect",
        "dim": "position",
        "draw": "curve",
        "term": "seasonal",
    }
    assert effects["duration_effect"]["dim"] == "duration_grid"
    assert effects[f"{LABEL}_effect"]["term"] == "interaction"
    again = type(design.encoders).from_json(design.encoders.to_json())
    assert again.effects == effects
    legacy = design.encoders.to_json()
    del legacy["effects"]
    assert type(design.encoders).from_json(legacy).effects == {}
    assert asdict(kind_of(PAIR).effects(design.terms[-1])[0])["variable"] == f"{LABEL}_effect"


# --- recovery -------------------------------------------------------------------------------

TRUE_PAIRS = np.array([[1.0, -1.0, 0.0, 0.0], [-1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.8, -0.8]])


def _interaction_plays(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    contexts = np.array(["radio", "charts", "user_collection"])
    hours = np.array([0, 6, 12, 18])
    c, h = rng.integers(0, 3, n), rng.integers(0, 4, n)
    p = 1 / (1 + np.exp(-(-0.3 + TRUE_PAIRS[c, h])))
    return pd.DataFrame(
        {
            "context_type": contexts[c],
            "hour_of_day": hours[h].astype(np.int8),
            "skip_2": rng.random(n) < p,
        }
    )


@pytest.mark.slow  # ADVI on 6,000 plays: about 25 s
def test_a_strong_interaction_is_recovered() -> None:
    plays = _interaction_plays(6000, seed=5)
    spec = ModelSpec(terms=(PAIR,))
    design = build_design(spec, plays)
    with build_model(design):
        approx = pm.fit(4000, method="advi", random_seed=1, progressbar=False)
        tree = approx.sample(300, random_seed=1)
    effect = tree["posterior"][f"{LABEL}_effect"].to_numpy().reshape(-1, 12)
    truth = {
        f"{c} × {h}": TRUE_PAIRS[i, j]
        for i, c in enumerate(["radio", "charts", "user_collection"])
        for j, h in enumerate([0, 6, 12, 18])
    }
    levels = design.coords[LABEL]
    estimate = effect.mean(axis=0)
    want = np.array([truth[lv] for lv in levels])
    strong = np.abs(want) > 0.5
    assert (np.sign(estimate[strong]) == np.sign(want[strong])).all()
    np.testing.assert_allclose(estimate, want, atol=0.3)
