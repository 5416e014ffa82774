"""Model comparison by PSIS-LOO: expected log predictive density per run, Pareto k, a table.

Each run's ``log_likelihood`` group gives one pointwise value per observation. Up to
``FULL_LOO_MAX`` observations PSIS-LOO is exact over all of them; beyond that it is subsampled
(:func:`arviz_stats.loo_subsample`, ``SUBSAMPLE`` observations, "lpd" approximation), which
estimates the same ELPD with an extra subsampling standard error. Runs are only compared when
they were fitted to the same observations (same count of pointwise terms): ELPDs over different
data — or over Binomial cells versus Bernoulli plays — are not comparable.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

__all__ = [
    "FULL_LOO_MAX",
    "NO_LOO_SESSION",
    "LooResult",
    "compare_runs",
    "has_session_term",
    "run_loo",
]

FULL_LOO_MAX = 20_000
SUBSAMPLE = 2_000


@dataclass(frozen=True)
class LooResult:
    """One run's LOO estimate and its Pareto-k summary."""

    name: str
    elpd: object  # arviz_stats ELPDData
    method: str
    n_obs: int
    n_bad_k: int
    k_threshold: float

    @property
    def elpd_loo(self) -> float:
        return float(self.elpd.elpd)  # type: ignore[attr-defined]

    @property
    def se(self) -> float:
        return float(self.elpd.se)  # type: ignore[attr-defined]

    @property
    def p_loo(self) -> float:
        return float(self.elpd.p)  # type: ignore[attr-defined]

    def describe(self) -> str:
        k = (
            f"all Pareto k <= {self.k_threshold:.2f}"
            if self.n_bad_k == 0
            else f"{self.n_bad_k} observation(s) with Pareto k > {self.k_threshold:.2f}: "
            "the estimate is unreliable for them"
        )
        return (
            f"{self.method} on {self.n_obs:,} observations: elpd_loo {self.elpd_loo:.1f} "
            f"(SE {self.se:.1f}), p_loo {self.p_loo:.1f}; {k}"
        )


#: Why a run with a session term is compared by held-out sessions instead of PSIS-LOO.
NO_LOO_SESSION = (
    "no PSIS-LOO: the model has a session term, and leaving one play out of a fitted session "
    "still lets the session's other plays, later ones included, inform its propensity (the "
    "leakage rule). Compare it by the held-out sessions instead (held-out evaluation: each "
    "play predicted from its session's earlier plays only)"
)


def has_session_term(dt: xr.DataTree) -> bool:
    """Whether a run's posterior holds a session term (its ``session_sigma``)."""
    return "posterior" in dt.children and "session_sigma" in dt["posterior"].data_vars


def run_loo(
    dt: xr.DataTree,
    name: str,
    *,
    full_max: int = FULL_LOO_MAX,
    subsample: int = SUBSAMPLE,
    seed: int = 0,
) -> LooResult | None:
    """PSIS-LOO for one run, or None when it stored no log-likelihood."""
    import arviz_stats as azs

    if "log_likelihood" not in dt.children or not dt["log_likelihood"].data_vars:
        return None
    ll = dt["log_likelihood"]
    n_obs = int(
        np.prod([ll.sizes[d] for d in ll.dims if d not in ("chain", "draw")], dtype=np.int64)
    )
    with warnings.catch_warnings():
        # ArviZ warns about high Pareto k; the report states it in words instead
        warnings.simplefilter("ignore", UserWarning)
        if n_obs > full_max:
            elpd = azs.loo_subsample(dt, observations=min(subsample, n_obs), seed=seed)
            method = f"subsampled PSIS-LOO ({min(subsample, n_obs):,} of {n_obs:,})"
        else:
            elpd = azs.loo(dt, pointwise=True)
            method = "PSIS-LOO"
    k = np.asarray(elpd.pareto_k, dtype=float).ravel()
    threshold = float(getattr(elpd, "good_k", 0.7) or 0.7)
    return LooResult(name, elpd, method, n_obs, int(np.nansum(k > threshold)), threshold)


def compare_runs(loos: Mapping[str, LooResult]) -> tuple[pd.DataFrame | None, str]:
    """ArviZ's comparison table (stacking weights), or None with the reason it is not possible."""
    import arviz_stats as azs

    if len(loos) < 2:
        return None, "one run: nothing to compare"
    sizes = {name: r.n_obs for name, r in loos.items()}
    if len(set(sizes.values())) > 1:
        return None, (
            "runs were fitted to different observations "
            f"({', '.join(f'{k}: {v:,}' for k, v in sizes.items())}); their ELPDs are not comparable"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = azs.compare({name: r.elpd for name, r in loos.items()})
    return pd.DataFrame(table), ""
