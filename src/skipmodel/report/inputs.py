"""What the report needs from one fitted run, as plain data and two prediction functions.

:class:`RunInputs` is the boundary between the model and the report: a posterior DataTree, the
training and held-out rows, and callables that turn rows into posterior skip probabilities.
:func:`skipmodel.report.runs.load_run_inputs` builds it from a ``RUN/`` directory and a store;
tests build it by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["DrawsFn", "RunInputs", "SecondHalfFn"]

#: rows -> (draws, rows) posterior skip probabilities
DrawsFn = Callable[[pd.DataFrame], np.ndarray]
#: whole test sessions (and what a second half reveals, as ``predict_sequential``'s ``reveal``)
#: -> second-half rows (session_id, session_position, p_skip), predicted from the first half with
#: predicted outcomes rolled forward
SecondHalfFn = Callable[..., pd.DataFrame]


@dataclass(frozen=True)
class RunInputs:
    """One run, ready to report on.

    Attributes
    ----------
    name : str
        Short label (the RUN directory name).
    posterior : xarray.DataTree
        ``posterior`` (+ ``sample_stats``, ``log_likelihood`` when stored).
    outcome : str
        The modelled outcome column (``skip_2``...).
    train : DataFrame, optional
        The rows the model was fitted on (loader columns, with the outcome and its lag).
    test : DataFrame, optional
        Held-out rows (whole sessions of the test split).
    predict_draws : callable, optional
        Posterior draws of P(skip) for rows (used for predictive checks and held-out means).
    predict_second_half : callable, optional
        Sequential WSDM-style predictions for test sessions' second halves.
    description : str
        What the model is (the spec's description).
    facts : tuple of (label, text)
        Extra lines for the run overview (sampler, draws, fraction, seed...).
    method : str
        ``nuts`` for MCMC; ``laplace`` for nested Laplace, checked by the convergence of its mode
        (from ``fit_diagnostics``); ``advi`` / ``pathfinder`` mark an approximate posterior, for
        which the report states that convergence checks do not apply.
    fit_diagnostics : mapping
        The run's ``diagnostics.json`` as recorded by the fit (a Laplace run's passes, steps,
        Hessian condition and hyperparameter mode); empty when unknown.
    approximation : str
        One sentence on the approximation an approximate fit made (the run's data manifest).
    """

    name: str
    posterior: xr.DataTree
    outcome: str = "skip_2"
    train: pd.DataFrame | None = None
    test: pd.DataFrame | None = None
    predict_draws: DrawsFn | None = None
    predict_second_half: SecondHalfFn | None = None
    description: str = ""
    facts: tuple[tuple[str, str], ...] = ()
    method: str = "nuts"
    fit_diagnostics: Mapping[str, Any] = field(default_factory=dict)
    approximation: str = ""
