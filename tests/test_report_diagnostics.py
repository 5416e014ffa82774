"""The trust banner flags deliberately bad posteriors and passes a good one."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from skipmodel.report.diagnostics import diagnose_run, summary_table

CHAINS, DRAWS = 4, 1000
WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def make_tree(
    *,
    stuck_apart: bool = False,
    sticky_weekday: str | None = None,
    divergences: int = 0,
    energy_random_walk: bool = False,
    seed: int = 0,
) -> xr.DataTree:
    import arviz_base as azb

    rng = np.random.default_rng(seed)
    intercept = rng.normal(-0.2, 0.1, size=(CHAINS, DRAWS))
    if stuck_apart:  # each chain sits in its own mode: R-hat far above 1
        intercept += np.arange(CHAINS)[:, None] * 0.5
    weekday = rng.normal(0, 0.2, size=(CHAINS, DRAWS, len(WEEKDAYS)))
    if sticky_weekday is not None:  # strongly autocorrelated chain: tiny ESS for one level
        k = WEEKDAYS.index(sticky_weekday)
        walk = np.zeros((CHAINS, DRAWS))
        for t in range(1, DRAWS):
            walk[:, t] = 0.995 * walk[:, t - 1] + rng.normal(0, 0.02, CHAINS)
        weekday[:, :, k] = walk
    diverging = np.zeros((CHAINS, DRAWS), dtype=bool)
    diverging[1, rng.choice(DRAWS, size=divergences, replace=False)] = True
    energy = rng.normal(size=(CHAINS, DRAWS))
    if energy_random_walk:  # energy transitions much smaller than its marginal spread: low E-BFMI
        energy = np.cumsum(energy, axis=1)
    p_obs = rng.uniform(size=(CHAINS, DRAWS, 5))  # a per-observation deterministic: not checked
    return azb.from_dict(
        {
            "posterior": {"intercept": intercept, "weekday_effect": weekday, "p": p_obs},
            "sample_stats": {"diverging": diverging, "energy": energy},
            "observed_data": {"y": np.array([0, 1, 1, 0, 1])},
        },
        dims={"weekday_effect": ["weekday"], "p": ["obs"], "y": ["obs"]},
        coords={"weekday": WEEKDAYS},
    )


def status(diag, name: str):  # noqa: ANN001, ANN201 - tiny helper
    return next(c for c in diag.checks if c.name == name)


def test_good_posterior_passes() -> None:
    diag = diagnose_run(make_tree())
    assert diag.ok, [c.describe() for c in diag.checks]
    assert diag.headline.startswith("Diagnostics passed")
    assert diag.n_chains == CHAINS and diag.n_draws == DRAWS


def test_chains_stuck_apart_fail_rhat_naming_the_parameter() -> None:
    diag = diagnose_run(make_tree(stuck_apart=True))
    assert not diag.ok
    rhat = status(diag, "R-hat")
    assert rhat.status == "fail" and rhat.offenders == ("intercept",)
    assert rhat.worst > 1.5
    assert "intercept" in rhat.describe()
    assert diag.headline.startswith("Do not trust this fit")


def test_sticky_level_fails_ess_naming_the_element() -> None:
    diag = diagnose_run(make_tree(sticky_weekday="Sat"))
    bulk = status(diag, "Bulk ESS")
    assert bulk.status == "fail"
    assert bulk.offenders[0] == "weekday_effect[Sat]"
    assert "intercept" not in bulk.offenders


def test_injected_divergences_fail() -> None:
    diag = diagnose_run(make_tree(divergences=3))
    div = status(diag, "Divergences")
    assert div.status == "fail" and div.worst == 3
    assert div.offenders == ("chain 1: 3",)
    assert status(diag, "R-hat").status == "pass"


def test_low_ebfmi_fails() -> None:
    diag = diagnose_run(make_tree(energy_random_walk=True))
    bfmi = status(diag, "E-BFMI")
    assert bfmi.status == "fail" and bfmi.worst < 0.3
    assert len(bfmi.offenders) == CHAINS


def test_summary_table_columns_and_no_observation_level_variables() -> None:
    table = summary_table(make_tree())
    assert {
        "mean",
        "sd",
        "eti94_lb",
        "eti94_ub",
        "mcse_mean",
        "ess_bulk",
        "ess_tail",
        "r_hat",
    } <= set(table.columns)
    assert "weekday_effect[Sun]" in table.index
    assert not any(str(i).startswith("p[") for i in table.index)


def test_constant_parameter_is_not_an_offender() -> None:
    import arviz_base as azb

    rng = np.random.default_rng(1)
    dt = azb.from_dict(
        {"posterior": {"mu": rng.normal(size=(4, 1000)), "pinned": np.zeros((4, 1000))}}
    )
    diag = diagnose_run(dt)
    assert diag.ok
    assert [c.status for c in diag.checks][-2:] == ["n/a", "n/a"]


def test_unknown_variable_is_named() -> None:
    with pytest.raises(KeyError, match="nope"):
        diagnose_run(make_tree(), var_names=["nope"])


def test_approximate_fit_is_never_trusted() -> None:
    diag = diagnose_run(make_tree(), method="advi")
    assert not diag.ok
    assert diag.headline.startswith("Approximate fit (advi")
    assert [c.name for c in diag.checks] == ["Sampler"]
