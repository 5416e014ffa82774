"""The one place a :class:`ModelSpec` becomes a ``pm.Model``.

``logit p = intercept + sum of the terms' contributions`` (each from
:mod:`skipmodel.model.terms`), observed through a swappable likelihood: Bernoulli on rows, or
Binomial on aggregated cells (identical posterior when every term is discrete or binned).

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

from skipmodel.model.design import Design, Encoders, build_design
from skipmodel.model.spec import ModelSpec
from skipmodel.model.terms import BUILDERS

OBS_DIM = "obs"


def _bernoulli(name: str, logit_p: Any, design: Design) -> Any:
    return pm.Bernoulli(name, logit_p=logit_p, observed=design.outcome, dims=OBS_DIM)


def _binomial(name: str, logit_p: Any, design: Design) -> Any:
    return pm.Binomial(
        name, n=design.trials, logit_p=logit_p, observed=design.outcome, dims=OBS_DIM
    )


#: Likelihoods by name (:attr:`Design.likelihood`): swap the piece, not the model.
LIKELIHOODS: dict[str, Callable[[str, Any, Design], Any]] = {
    "bernoulli": _bernoulli,
    "binomial": _binomial,
}


def linear_predictor(design: Design) -> Any:
    """The logit of the skip probability; call inside a model context."""
    priors = design.spec.priors
    eta: Any = pm.Normal("intercept", 0.0, priors.intercept_sigma)
    for td in design.terms:
        eta = eta + BUILDERS[td.term.kind](td, priors)
    return eta


def build_model(design: Design, *, record_logit: bool = False) -> pm.Model:
    """A ``pm.Model`` for ``design`` with named coords; the observed variable is the outcome.

    ``record_logit`` also keeps the per-row logit as ``logit_p`` (tests; large for big data).
    """
    if design.outcome is None:
        raise ValueError("the design has no outcome column; build it from rows with outcomes")
    coords = {OBS_DIM: np.arange(design.n_obs), **design.coords}
    with pm.Model(coords=coords) as model:
        eta = linear_predictor(design)
        if record_logit:
            eta = pm.Deterministic("logit_p", eta, dims=OBS_DIM)
        LIKELIHOODS[design.likelihood](design.spec.outcome, eta, design)
    return model


def build(
    spec: ModelSpec, data: pd.DataFrame | pa.Table, *, encoders: Encoders | None = None
) -> tuple[pm.Model, Design]:
    """Spec + rows -> (model, design). The design carries the fitted encoders."""
    design = build_design(spec, data, encoders=encoders)
    return build_model(design), design
