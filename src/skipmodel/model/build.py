"""The one place a :class:`ModelSpec` becomes a ``pm.Model``.

``logit p = intercept + sum of the terms' contributions`` (each from its
kind's ``build``, :mod:`skipmodel.model.terms`, fused by :mod:`skipmodel.model.predictor`), observed through a
swappable likelihood: Bernoulli on rows, or Binomial on aggregated cells (identical posterior
when every term is discrete or binned).

The Bernoulli likelihood is ``pm.Bernoulli``'s distribution with its log-probability written on
the logit scale, ``y * eta - softplus(eta)`` with one ``exp`` and one ``log1p`` per row (PyMC's
own form costs about 1.7x as much per row), and int8 outcomes. The observed variable keeps the
name (the outcome, e.g. ``skip_2``) and dims (``obs``), so posteriors and log-likelihood groups
are as with ``pm.Bernoulli``; draws from it (posterior predictive) are Bernoulli draws.

Examples
--------
>>> design = build_design(get_variant("seasonal"), frame)          # doctest: +SKIP
>>> model = build_model(design)                                      # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pymc as pm
import pytensor.tensor as pt

from skipmodel.model.design import Design, Encoders, build_design
from skipmodel.model.predictor import assemble
from skipmodel.model.spec import ModelSpec
from skipmodel.model.terms import kind_of

OBS_DIM = "obs"


def bernoulli_logit_logp(value: Any, logit_p: Any) -> Any:
    """``log P(value | logit_p)`` of a Bernoulli, stable for any logit, one ``exp`` and one ``log``
    per row.

    ``y * eta - softplus(eta)`` with ``softplus(eta) = (eta + |eta|) / 2 + log(1 + exp(-|eta|))``;
    the gradient reuses the same ``exp``. Choices, each measured or needed:

    * ``|eta| / 2`` rather than ``max(eta, 0)``, so the gradient is right at ``eta = 0`` too
      (``sign(0) = 0``), where every model starts;
    * ``log(1 + e)`` rather than ``log1p(e)``: with ``0 < e <= 1`` its absolute error is at most
      1.1e-16 per row (below the rounding of ``y * eta``), and Numba runs ``log`` in 3 ns but
      ``log1p`` in 15 ns per row. It is written ``log(max(1 + e, 1))`` (the same number, as
      ``e >= 0``) because PyTensor would rewrite ``log(1 + e)`` into ``log1p(e)``;
    * the outcome enters only as ``y * eta``: any function of ``y`` alone would be folded into a
      float array at compile time, read at 8 bytes per row instead of the outcome's 1.
    """
    magnitude = pt.abs(logit_p)
    one_plus_e = pt.maximum(1.0 + pt.exp(-magnitude), 1.0)
    softplus = 0.5 * (logit_p + magnitude) + pt.log(one_plus_e)
    return pt.cast(value, "int8") * logit_p - softplus


def _bernoulli_dist(logit_p: Any, size: Any) -> Any:
    # int8 like the design's outcome: pm.Bernoulli's int64 would read 8 bytes per row.
    return pt.cast(pm.Bernoulli.dist(logit_p=logit_p, size=size), "int8")


def _bernoulli(name: str, logit_p: Any, observed: Any, design: Design, total_size: Any) -> Any:
    return pm.CustomDist(
        name,
        logit_p,
        dist=_bernoulli_dist,
        logp=bernoulli_logit_logp,
        class_name="BernoulliLogit",
        observed=observed,
        dims=OBS_DIM,
        total_size=total_size,
    )


def _binomial(name: str, logit_p: Any, observed: Any, design: Design, total_size: Any) -> Any:
    return pm.Binomial(
        name,
        n=design.trials,
        logit_p=logit_p,
        observed=observed,
        dims=OBS_DIM,
        total_size=total_size,
    )


#: Likelihoods by name (:attr:`Design.likelihood`): swap the piece, not the model.
LIKELIHOODS: dict[str, Callable[[str, Any, Any, Design, Any], Any]] = {
    "bernoulli": _bernoulli,
    "binomial": _binomial,
}


def linear_predictor(design: Design) -> Any:
    """The logit of the skip probability; call inside a model context."""
    priors = design.spec.priors
    intercept = pm.Normal("intercept", 0.0, priors.intercept_sigma)
    parts = [kind_of(td.term).build(td, priors) for td in design.terms]
    return assemble(intercept, parts, design.n_obs)


def build_model(
    design: Design,
    *,
    record_logit: bool = False,
    observed: Any = None,
    total_size: int | None = None,
) -> pm.Model:
    """A ``pm.Model`` for ``design`` with named coords; the observed variable is the outcome.

    Parameters
    ----------
    design : Design
    record_logit : bool
        Also keep the per-row logit as ``logit_p`` (tests; large for big data).
    observed : array or shared variable, optional
        The outcome (default ``design.outcome``); minibatch fits pass a shared variable.
    total_size : int, optional
        Rows the design's rows stand for: the likelihood is scaled by ``total_size / n_obs``
        (PyMC's minibatch scaling).
    """
    if observed is None:
        observed = design.outcome
    if observed is None:
        raise ValueError("the design has no outcome column; build it from rows with outcomes")
    coords = {OBS_DIM: np.arange(design.n_obs), **design.coords}
    with pm.Model(coords=coords) as model:
        eta = linear_predictor(design)
        if record_logit:
            eta = pm.Deterministic("logit_p", eta, dims=OBS_DIM)
        LIKELIHOODS[design.likelihood](design.spec.outcome, eta, observed, design, total_size)
    return model


def build(
    spec: ModelSpec, data: pd.DataFrame | pa.Table, *, encoders: Encoders | None = None
) -> tuple[pm.Model, Design]:
    """Spec + rows -> (model, design). The design carries the fitted encoders."""
    design = build_design(spec, data, encoders=encoders)
    return build_model(design), design
