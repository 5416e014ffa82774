"""How a nested-Laplace fit reached its mode: the passes and the hyperparameters, as tables.

A ``--method laplace`` run has no chains to compare; what can go wrong is the search for the
mode. Its ``diagnostics.json`` records, per streaming pass, the largest step of any effect in
posterior sds (None for a pass whose step was halved and repeated), and, at the end, each
hyperparameter's mode and the sd of its logarithm (the Gaussian approximation on the log scale).
This module turns them into the two small tables of the report's "Mode convergence" section:
steps shrinking towards zero pass after pass are what convergence looks like.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from skipmodel.report.html import Paragraph, Section, Table

__all__ = ["hyper_table", "mode_section", "pass_table"]

#: z of the central 94 % interval, the report's interval everywhere.
Z94 = 1.8807936081512509


def _number(value: object) -> float:
    """A recorded number as a float; NaN for None or anything unreadable."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def pass_table(fit: Mapping[str, Any]) -> pd.DataFrame | None:
    """One row per pass: seconds, largest step (posterior sds), whether its step was halved."""
    steps = fit.get("max_step_sd")
    if not isinstance(steps, list | tuple) or not steps:
        return None
    recorded = fit.get("pass_seconds")
    seconds = [_number(s) for s in recorded][: len(steps)] if isinstance(recorded, list) else []
    seconds += [math.nan] * (len(steps) - len(seconds))
    table = pd.DataFrame(
        {
            "seconds": seconds,
            "max step (posterior sd)": [_number(s) for s in steps],
            "halved": ["yes" if s is None else "" for s in steps],
        },
        index=pd.RangeIndex(1, len(steps) + 1, name="pass"),
    )
    return table


def hyper_table(fit: Mapping[str, Any]) -> pd.DataFrame | None:
    """Per hyperparameter: its mode, the sd of its logarithm and the implied 94 % interval."""
    modes = fit.get("hyper_mode")
    if not isinstance(modes, Mapping) or not modes:
        return None
    sds = fit.get("hyper_log_sd")
    sds = sds if isinstance(sds, Mapping) else {}
    mode = np.array([_number(modes[k]) for k in modes])
    log_sd = np.array([_number(sds.get(k)) for k in modes])
    table = pd.DataFrame(
        {
            "mode": mode,
            "log-scale sd": log_sd,
            "3%": mode * np.exp(-Z94 * log_sd),
            "97%": mode * np.exp(Z94 * log_sd),
        },
        index=pd.Index([str(k) for k in modes], name="hyperparameter"),
    )
    return table


def _sizes(fit: Mapping[str, Any]) -> str:
    """``" (58 dense effects, 386 levels integrated one by one)"``, from what the fit records."""
    parts = []
    if isinstance(fit.get("n_dense"), int):
        parts.append(f"{fit['n_dense']:,} dense effects")
    if isinstance(fit.get("n_levels"), int) and fit["n_levels"]:
        parts.append(f"{fit['n_levels']:,} levels of the largest pool integrated one by one")
    return f" ({', '.join(parts)})" if parts else ""


def mode_section(name: str, fit: Mapping[str, Any]) -> Section | None:
    """The "Mode convergence" subsection of a nested-Laplace run (None without records)."""
    passes, hypers = pass_table(fit), hyper_table(fit)
    if passes is None and hypers is None:
        return None
    state = "converged" if fit.get("converged") is True else "did NOT converge"
    blocks: list[Paragraph | Table] = [
        Paragraph(
            f"{name} is a nested Laplace approximation: it has no chains, and its draws are "
            "independent draws from a Gaussian, so trace and rank plots say nothing about it. "
            f"What can go wrong is the search for the mode, which {state} after "
            f"{fit.get('passes', '?')} passes{_sizes(fit)}."
        )
    ]
    if passes is not None:
        blocks.append(
            Table(
                passes,
                "Per streaming pass: its time and the largest step of any effect, in posterior "
                "sds (the mode is reached when the steps fall below the tolerance); a halved "
                "step lowered the log posterior and was repeated at half length.",
            )
        )
    if hypers is not None:
        blocks.append(
            Table(
                hypers,
                "Hyperparameters at the maximum of their marginal posterior: the mode, the sd of "
                "its logarithm (the approximation is Gaussian on the log scale) and the 94 % "
                "interval it implies.",
            )
        )
    return Section("Mode convergence", tuple(blocks))
