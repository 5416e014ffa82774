"""A row-level fit carries observed_data and a thinned posterior_predictive for ArviZ, and
computes its log-likelihood after the fact."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from skipmodel.model import compute_log_likelihood, fit, load_run, save_run
from skipmodel.model.ppc import PPC_DRAWS
from skipmodel.model.spec import Markov, ModelSpec, Seasonal
from skipmodel.simulate.plays import toy_plays

SPEC = ModelSpec(terms=(Markov(), Seasonal(weekday=True, hour="none", position=False)))


@pytest.fixture(scope="module")
def fitted():
    plays = toy_plays(80, n_tracks=30, seed=2)
    return plays, fit(SPEC, plays, method="advi", draws=100, chains=2)


def test_the_fit_keeps_observed_data_and_a_thinned_posterior_predictive(fitted, tmp_path) -> None:
    plays, result = fitted
    tree = result.posterior
    y = tree["observed_data"]["skip_2"].values
    np.testing.assert_array_equal(y, plays["skip_2"].astype(int).to_numpy())
    rep = tree["posterior_predictive"]["skip_2"]
    assert rep.sizes["chain"] * rep.sizes["draw"] == PPC_DRAWS and rep.sizes["obs"] == len(y)
    assert abs(rep.values.mean() - y.mean()) < 0.05  # replicates look like the data
    save_run(result, tmp_path / "run")
    again = load_run(tmp_path / "run").posterior
    assert "posterior_predictive" in again.children and "observed_data" in again.children


def test_arviz_ppc_plot_and_loo_pit_run_on_it(fitted) -> None:
    import arviz as az
    import matplotlib.pyplot as plt

    plays, result = fitted
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        az.plot_ppc_dist(result.posterior)
    assert any("binary" in str(w.message) for w in caught)  # ArviZ points them to PAVA
    az.plot_ppc_pava(result.posterior)
    plt.close("all")
    compute_log_likelihood(result, plays)
    assert "log_likelihood" in result.posterior.children
    # the predictive is thinned: LOO-PIT on the draws it holds
    kept = result.posterior.sel(draw=result.posterior["posterior_predictive"]["draw"].values)
    pit = az.loo_pit(kept)
    assert np.isfinite(np.asarray(pit["skip_2"].values)).all()
