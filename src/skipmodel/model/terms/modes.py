"""Mode coefficients shared by the random-walk (seasonal) and HSGP (smooth) kinds.

A random walk or fixed-lengthscale smooth is ``basis @ coef`` with ``coef_j ~ N(0, sigma)``;
modes the data inform are centred (``<name>_coef``), the others non-centred (``sigma *
<name>_z``). The choice is made at design time (:func:`mode_tables`, from
:func:`skipmodel.model.bases.walk_parametrization` / ``smooth_modes``) and kept in the encoders.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from skipmodel.model.terms.base import Draws, TermDesign


def lognormal_params(lower: float, upper: float) -> tuple[float, float]:
    """LogNormal (mu, sigma) with 95 % of its mass in [lower, upper]."""
    mu = (np.log(lower) + np.log(upper)) / 2
    return float(mu), float((np.log(upper) - np.log(lower)) / (2 * 1.959964))


def mode_tables(
    key: str,
    centered: list[int],
    n_modes: int,
    tables: dict[str, np.ndarray],
    coords: dict[str, tuple[Any, ...]],
) -> None:
    """``<key>_centered`` / ``<key>_noncentered`` mode indices and their coords (the names
    :func:`mode_coefficients` reads)."""
    tables[f"{key}_centered"] = np.asarray(centered, dtype=np.int64)
    tables[f"{key}_noncentered"] = np.setdiff1d(np.arange(n_modes), tables[f"{key}_centered"])
    for part in ("centered", "noncentered"):
        if tables[f"{key}_{part}"].size:
            coords[f"{key}_mode_{part}"] = tuple(int(j) for j in tables[f"{key}_{part}"])


def _mode_parts(td: TermDesign, name: str, n_modes: int) -> tuple[np.ndarray, np.ndarray]:
    centered = td.tables.get(f"{name}_centered", np.zeros(0, dtype=np.int64))
    noncentered = td.tables.get(f"{name}_noncentered", np.arange(n_modes))
    return centered, noncentered


def mode_coefficients(td: TermDesign, name: str, sigma: Any, n_modes: int) -> Any:
    """Mode coefficients ``N(0, sigma)`` each: ``<name>_coef`` where centred, else
    ``sigma * <name>_z`` (inside a model context)."""
    import pymc as pm
    import pytensor.tensor as pt

    centered, noncentered = _mode_parts(td, name, n_modes)
    coef = pt.zeros(n_modes)
    if noncentered.size:
        z = pm.Normal(f"{name}_z", 0.0, 1.0, dims=f"{name}_mode_noncentered")
        coef = pt.set_subtensor(coef[noncentered], sigma * z)
    if centered.size:
        a = pm.Normal(f"{name}_coef", 0.0, sigma, dims=f"{name}_mode_centered")
        coef = pt.set_subtensor(coef[centered], a)
    return coef


def mode_coefficient_draws(
    td: TermDesign, name: str, sigma: np.ndarray, draws: Draws, n_modes: int
) -> np.ndarray:
    """:func:`mode_coefficients` from posterior draws, (n_draws, n_modes)."""
    centered, noncentered = _mode_parts(td, name, n_modes)
    coef = np.zeros((len(sigma), n_modes))
    if noncentered.size:
        coef[:, noncentered] = sigma[:, None] * draws[f"{name}_z"]
    if centered.size:
        coef[:, centered] = draws[f"{name}_coef"]
    return coef
