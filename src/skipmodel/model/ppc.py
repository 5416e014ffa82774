"""The ArviZ groups a row-level fit carries for posterior predictive checks, and the
log-likelihood on request after the fit.

A row-level fit (NUTS or the quick methods on plays) keeps ``observed_data`` (the outcome, dim
``obs``) and a thinned ``posterior_predictive`` (:data:`PPC_DRAWS` draws spread over the chains,
replicated outcomes as int8), so ``az.plot_ppc_pava`` (binary outcomes; ``plot_ppc_dist``
works and says so) run on ``result.posterior``, and LOO-PIT on the draws the predictive holds once
the log-likelihood is there: ``az.loo_pit(tree.sel(draw=tree["posterior_predictive"].draw.values))``. The replicates are drawn from each play's predictive probability as
:func:`~skipmodel.model.prediction.linear_predictor_draws` gives it (a session term: learnt from
the session's earlier plays only). Fits over covariate cells, minibatches or nested Laplace
passes keep neither: their data never sit in memory as plays; predict a sample of plays with
:func:`~skipmodel.model.prediction.predict_draws` instead.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from skipmodel.model.build import OBS_DIM, build_model
from skipmodel.model.design import Design, build_design
from skipmodel.model.prediction import linear_predictor_draws, posterior_draws, row_chunks

#: Posterior predictive draws a row-level fit keeps (spread evenly over chains and draws).
PPC_DRAWS = 100

__all__ = ["PPC_DRAWS", "compute_log_likelihood", "with_predictive"]


def with_predictive(tree: xr.DataTree, design: Design, *, seed: int = 0) -> xr.DataTree:
    """``tree`` with ``observed_data`` and a thinned ``posterior_predictive`` of ``design``'s
    outcome (see the module notes)."""
    if design.outcome is None or "posterior" not in tree.children:
        return tree
    post = tree["posterior"].to_dataset()
    chains, draws = int(post.sizes["chain"]), int(post.sizes["draw"])
    per_chain = min(draws, max(1, math.ceil(PPC_DRAWS / chains)))
    keep = np.unique(np.linspace(0, draws - 1, per_chain).round().astype(int))
    sub = post.isel(draw=keep)
    flat = posterior_draws(sub, max_draws=None, seed=seed)
    rng = np.random.default_rng(seed)
    replicated = np.empty((chains * len(keep), design.n_obs), dtype=np.int8)
    for rows in row_chunks(design, 20_000):
        eta = linear_predictor_draws(design, flat, rng=rng, rows=rows)
        replicated[:, rows] = rng.random(eta.shape) < 1 / (1 + np.exp(-eta))
    name = design.spec.outcome
    obs = np.arange(design.n_obs)
    predictive = xr.Dataset(
        {name: (("chain", "draw", OBS_DIM), replicated.reshape(chains, len(keep), -1))},
        coords={"chain": sub["chain"].values, "draw": sub["draw"].values, OBS_DIM: obs},
    )
    observed = xr.Dataset(
        {name: ((OBS_DIM,), np.asarray(design.outcome).astype(np.int8))}, coords={OBS_DIM: obs}
    )
    groups = {str(k): tree[k].to_dataset() for k in tree.children}
    groups["posterior_predictive"] = predictive
    groups["observed_data"] = observed
    return xr.DataTree.from_dict(groups)


def compute_log_likelihood(result: Any, data: pd.DataFrame | Any) -> Any:
    """Add the pointwise ``log_likelihood`` group to a row-level fit after the fact (as bambi's
    ``compute_log_likelihood``), from the plays it was fitted on (``data``: the same frame).
    ``result`` is a :class:`~skipmodel.model.fitting.FitResult` (not imported: fitting imports
    this module); returns it, its ``posterior`` extended in place."""
    import pymc as pm

    from skipmodel.errors import SkipmodelError

    if result.options.method == "laplace" or result.manifest.get("n_cells"):
        raise SkipmodelError(
            "compute_log_likelihood needs a row-level fit with posterior draws of every "
            f"parameter; this run is {result.options.method or 'cells'}"
        )
    design = build_design(result.spec, data, encoders=result.encoders)
    if design.n_obs != result.manifest.get("n_rows", design.n_obs):
        raise SkipmodelError(
            f"data has {design.n_obs} plays but the run was fitted on "
            f"{result.manifest['n_rows']}; pass the frame it was fitted on"
        )
    model = build_model(design)
    tree = result.posterior
    pm.compute_log_likelihood(tree, model=model, progressbar=False, extend_inferencedata=True)
    return result
