"""The fused linear predictor and the logit-scale Bernoulli give the plain formulation's logp.

The plain formulation is what the model was before fusing: one gather per effect, one
matrix-vector product per slope block, and ``pm.Bernoulli``. Both are built here for every model
variant and compared at a random point (logp and gradient), without sampling.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest

from model_points import PY_MODE, logp_and_grad, random_point
from skipmodel.model import build as build_module
from skipmodel.model.build import bernoulli_logit_logp, build_model
from skipmodel.model.design import build_design
from skipmodel.model.predictor import Contribution, Gather, assemble, group_gathers
from skipmodel.model.spec import VARIANTS, ModelSpec, Smooth
from skipmodel.simulate.plays import toy_plays

MODELS = Path(__file__).resolve().parents[1] / "models"


@pytest.fixture(scope="module")
def plays() -> pd.DataFrame:
    return toy_plays(30, n_tracks=40, seed=5)


def plain_assemble(intercept, parts: list[Contribution], n_obs: int):
    """The unfused linear predictor: every gather, slope block and extra term on its own."""
    eta = intercept
    for part in parts:
        for g in part.gathers:
            eta = eta + g.table[g.codes]
        for s in part.slopes:
            eta = eta + pt.dot(s.values, s.coef)
        for other in part.other:
            eta = eta + other
    return eta


def plain_bernoulli(name, logit_p, observed, design, total_size):
    return pm.Bernoulli(name, logit_p=logit_p, observed=observed, dims="obs", total_size=total_size)


@pytest.fixture
def plain_model(monkeypatch):
    """``build_model`` as it was: plain linear predictor and ``pm.Bernoulli``."""

    def build(design, **kwargs):
        with monkeypatch.context() as m:
            m.setattr(build_module, "assemble", plain_assemble)
            m.setitem(build_module.LIKELIHOODS, "bernoulli", plain_bernoulli)
            return build_model(design, **kwargs)

    return build


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_fused_model_has_the_plain_models_logp_and_gradient(plays, plain_model, name) -> None:
    design = build_design(ModelSpec.load(MODELS / f"{name}.toml"), plays)
    fused, plain = build_model(design), plain_model(design)
    assert [v.name for v in fused.free_RVs] == [v.name for v in plain.free_RVs]
    assert [v.name for v in fused.deterministics] == [v.name for v in plain.deterministics]
    assert fused.named_vars_to_dims == plain.named_vars_to_dims
    point = random_point(fused, seed=3)
    lp_fused, g_fused = logp_and_grad(fused, point)
    lp_plain, g_plain = logp_and_grad(plain, point)
    assert np.isfinite(lp_fused) and np.isfinite(g_fused).all()
    assert lp_fused == pytest.approx(lp_plain, rel=1e-10)
    np.testing.assert_allclose(g_fused, g_plain, rtol=1e-8, atol=1e-8)


def test_minibatch_scaling_multiplies_the_likelihood(plays) -> None:
    spec = ModelSpec.load(MODELS / "baseline.toml")
    design = build_design(spec, plays)
    whole, scaled = build_model(design), build_model(design, total_size=10 * design.n_obs)
    point = random_point(whole, seed=2)
    lik = [m.compile_fn(m.observedlogp, mode=PY_MODE)(point) for m in (whole, scaled)]
    assert np.isfinite(lik[0]) and lik[0] < 0
    assert lik[1] == pytest.approx(10 * lik[0], rel=1e-10)


def test_bernoulli_logit_logp_equals_pymcs_at_any_logit() -> None:
    eta = pt.dvector("eta")
    y = np.array([0, 1] * 7, dtype=np.int8)
    logits = np.array([-800, -40, -5, -1, -1e-3, 0, 0, 1e-3, 1, 5, 40, 800, 30, -30.0])
    ours = bernoulli_logit_logp(y, eta)
    theirs = pm.logp(pm.Bernoulli.dist(logit_p=eta), y)
    fn = pytensor.function(
        [eta], [ours, theirs, pt.grad(ours.sum(), eta), pt.grad(theirs.sum(), eta)]
    )
    lp_ours, lp_theirs, g_ours, g_theirs = fn(logits)
    assert np.isfinite(lp_ours).all()
    # log(1 + e) for log1p(e): an absolute error of at most 1.1e-16 per row
    np.testing.assert_allclose(lp_ours, lp_theirs, rtol=1e-12, atol=2.3e-16)
    np.testing.assert_allclose(g_ours, g_theirs, rtol=1e-12, atol=2.3e-16)
    # The observed variable keeps pm.Bernoulli's draws (posterior predictive).
    with pm.Model(coords={"obs": range(4000)}) as model:
        rv = build_module._bernoulli("y", pt.as_tensor(np.full(4000, 1.0)), None, None, None)
    draws = pm.draw(rv, draws=3, random_seed=1)
    assert draws.dtype == np.int8 and draws.shape == (3, 4000)
    assert set(np.unique(draws)) == {0, 1} and abs(draws.mean() - 0.731) < 0.02
    assert model.named_vars_to_dims["y"] == ("obs",)


def test_gathers_group_under_the_cap_and_keep_invalid_codes_apart() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    sizes = [3, 3, 7, 20, 24, 500]
    gathers = [Gather(rng.normal(size=k), rng.integers(0, k, n), k) for k in sizes]
    unseen = rng.integers(0, 5, n)
    unseen[7] = -1
    gathers.append(Gather(rng.normal(size=5), unseen, 5))
    groups = group_gathers(gathers, n_obs=n)
    cap = n // 4
    for group in groups:
        if len(group) > 1:
            assert np.prod([g.n_levels for g in group]) <= cap
    assert [g.n_levels for g in next(gr for gr in groups if unseen is gr[0].codes)] == [5]
    assert sorted(g.n_levels for gr in groups for g in gr) == sorted([*sizes, 5])
    assert len(groups) < len(gathers)
    tables = [pt.as_tensor(g.table) for g in gathers]
    parts = [
        Contribution().gather(t, g.codes, g.n_levels) for t, g in zip(tables, gathers, strict=True)
    ]
    fused = assemble(0.0, parts, n).eval()
    expected = sum(g.table[g.codes] for g in gathers)
    np.testing.assert_allclose(fused, expected, rtol=1e-12, atol=1e-14)


def test_smooth_rows_gather_a_fixed_grid_and_old_encoders_keep_distinct_values(plays) -> None:
    spec = ModelSpec(terms=(Smooth(column="duration", log=True),))
    design = build_design(spec, plays)
    td = design.terms[0]
    grid = td.settings["gather_grid"]
    assert td.tables["basis"].shape[0] == grid and td.data_tables == ()
    codes = td.codes["value"]
    assert codes.min() == 0 and codes.max() == grid - 1  # the fitted range spans the grid
    # Encoders stored before gather grids existed: the basis on the rows' distinct values.
    old = design.encoders
    old.settings = {
        k: {kk: vv for kk, vv in v.items() if kk != "gather_grid"} for k, v in old.settings.items()
    }
    legacy = build_design(spec, plays, encoders=old).terms[0]
    assert legacy.data_tables == ("basis",)
    assert legacy.tables["basis"].shape[0] == len(np.unique(plays["duration"]))
    # The two codings differ by at most half a grid step in the basis functions' argument.
    new_rows = td.tables["basis"][codes]
    old_rows = legacy.tables["basis"][legacy.codes["value"]]
    step = (td.settings["hi"] - td.settings["lo"]) / (grid - 1)
    slope = np.abs(np.diff(td.tables["basis"], axis=0)).max() / step
    assert np.abs(new_rows - old_rows).max() <= slope * step / 2 + 1e-12
