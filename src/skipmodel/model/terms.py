"""Each term's PyMC piece, and the same arithmetic in NumPy for prediction.

For every term kind there is ``build_<kind>(design, priors) -> Contribution`` (its share of the
logit: effect tables gathered by codes, slopes, other per-row terms; called inside the model
context by :mod:`skipmodel.model.build`, fused by :mod:`skipmodel.model.predictor`) and
``evaluate_<kind>(design, draws, rng) -> (n_draws, n_obs) contribution`` that recomputes it
from posterior draws for new rows — including levels never seen in fitting. A test checks the two
agree at a point.

Parametrisation (the naive model mixed terribly; these are the choices that fix it):

* categorical effects are zero-sum (:class:`pm.ZeroSumNormal`), identified against the intercept;
* pooled effects are centred where the data inform a level and non-centred (``sigma * z``) where
  they are thin (``auto``: per level, information ratio >= 4,
  :func:`skipmodel.model.design.pooled_parametrization`). All-centred and all-non-centred pools
  are zero-sum; a pool that mixes the two (50 levels or more, e.g. tracks) is not;
* random-walk smooths (hour on a circle, position, day of month) use the eigenbasis of the walk's
  precision: independent coefficients, sum-to-zero by construction; each mode is centred
  (``N(0, sigma)``) when the data inform it and non-centred (``sigma * z``) otherwise (``auto``,
  the same information ratio, :func:`skipmodel.model.design.walk_parametrization`), the choice
  kept in the encoders so prediction rebuilds the same model;
* HSGP smooths, basis centred on the data: with a fixed lengthscale (the default) the basis is
  rotated so the data inform its modes independently (:func:`skipmodel.model.design.smooth_modes`:
  low-frequency HSGP modes are nearly collinear over the data) and the informed modes are
  centred, like a random walk's; with a free lengthscale, the non-centred linearised form;
* effects enter by gathering with integer codes; continuous inputs are standardised.

Variables in the posterior (dims in brackets; ``<o>`` is the outcome, e.g. ``skip_2``):

==========  ===================================================================================
term        variables
==========  ===================================================================================
(always)    ``intercept``
seasonal    ``weekday_effect`` [weekday] (zero-sum, fixed prior scale ``effect_sigma``);
            random walks ``<w>`` = hour, position, day: ``<w>_sigma``, ``<w>_z``
            [<w>_mode_noncentered] and/or ``<w>_coef`` [<w>_mode_centered] (mode numbers as
            coords), ``<w>_effect`` [hour | position | day_of_month]; ``periodic_gp`` hour:
            ``hour_sigma``, ``hour_lengthscale``, ``hour_z`` [hour_mode], ``hour_effect``
markov      ``prev_<o>_effect`` [prev_<o>: no_previous, false, true]; ``prev2_<o>_effect``;
            with session position modelled, ``no_previous`` is 0 and the free variable is
            ``prev_<o>_observed_effect`` [prev_<o>_observed: false, true] (zero-sum);
            ``markov_{current,prev,interaction,change}_beta`` [markov_feature]
smooth      ``<col>_amplitude``, ``<col>_effect`` [<col>_grid: 50 points in the column's own
            units]; fixed lengthscale: ``<col>_coef`` [<col>_mode_centered] and/or ``<col>_z``
            [<col>_mode_noncentered] (rotated modes, most informed first); free lengthscale:
            ``<col>_lengthscale``, ``<col>_z`` [<col>_basis]
pooled      ``<label>_sigma``; ``<label>_z`` (non-centred) or ``<label>_effect`` (centred)
            [<label>]; mixed: ``<label>_z`` [<label>_noncentered] and
            ``<label>_centered_effect`` [<label>_centered] (level names as coords);
            ``<label>_effect`` also recorded when at most 500 levels; slopes:
            ``<label>_slope_{mean,sigma}`` [<label>_slope], ``<label>_slope_z``
            [<label>_slope, <label>]. ``<label>`` is ``track`` for track_id_clean, else the column
fixed       ``fixed_beta`` [fixed_predictor]; ``<col>_effect`` [<col>] per categorical column
==========  ===================================================================================

All ``*_effect`` vectors are on the logit scale and sum to zero over their levels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from skipmodel.model.design import TermDesign, expquad_sqrt_psd
from skipmodel.model.predictor import Contribution
from skipmodel.model.spec import Pooled, Priors, Smooth

#: Pooled terms with at most this many levels also record ``<label>_effect`` in the posterior;
#: above it (tracks) only ``sigma`` and ``z`` are kept, to keep posterior files small.
DETERMINISTIC_MAX_LEVELS = 500

Draws = dict[str, np.ndarray]  # variable name -> array (n_draws, *dims)


def _label(td: TermDesign) -> str:
    """Name prefix of a smooth or pooled term's variables."""
    assert isinstance(td.term, Smooth | Pooled)
    return td.term.label


def _lognormal_params(lower: float, upper: float) -> tuple[float, float]:
    """LogNormal (mu, sigma) with 95 % of its mass in [lower, upper]."""
    mu = (np.log(lower) + np.log(upper)) / 2
    return float(mu), float((np.log(upper) - np.log(lower)) / (2 * 1.959964))


def _mode_parts(td: TermDesign, name: str, n_modes: int) -> tuple[np.ndarray, np.ndarray]:
    centered = td.tables.get(f"{name}_centered", np.zeros(0, dtype=np.int64))
    noncentered = td.tables.get(f"{name}_noncentered", np.arange(n_modes))
    return centered, noncentered


def _mode_coefficients(td: TermDesign, name: str, sigma: Any, n_modes: int) -> Any:
    """Mode coefficients ``N(0, sigma)`` each: ``<name>_coef`` where centred, else
    ``sigma * <name>_z``."""
    centered, noncentered = _mode_parts(td, name, n_modes)
    coef = pt.zeros(n_modes)
    if noncentered.size:
        z = pm.Normal(f"{name}_z", 0.0, 1.0, dims=f"{name}_mode_noncentered")
        coef = pt.set_subtensor(coef[noncentered], sigma * z)
    if centered.size:
        a = pm.Normal(f"{name}_coef", 0.0, sigma, dims=f"{name}_mode_centered")
        coef = pt.set_subtensor(coef[centered], a)
    return coef


def _mode_coefficient_draws(
    td: TermDesign, name: str, sigma: np.ndarray, draws: Draws, n_modes: int
) -> np.ndarray:
    """:func:`_mode_coefficients` from posterior draws, (n_draws, n_modes)."""
    centered, noncentered = _mode_parts(td, name, n_modes)
    coef = np.zeros((len(sigma), n_modes))
    if noncentered.size:
        coef[:, noncentered] = sigma[:, None] * draws[f"{name}_z"]
    if centered.size:
        coef[:, centered] = draws[f"{name}_coef"]
    return coef


def _random_walk(td: TermDesign, name: str, dim: str, sigma_prior: float) -> Any:
    """``sigma * basis @ z``, with the modes the data inform centred (``<name>_coef``)."""
    sigma = pm.HalfNormal(f"{name}_sigma", sigma=sigma_prior)
    basis = td.tables[f"{name}_basis"]
    coef = _mode_coefficients(td, name, sigma, basis.shape[1])
    return pm.Deterministic(f"{name}_effect", pt.dot(basis, coef), dims=dim)


# --- seasonal ---------------------------------------------------------------------------------


def build_seasonal(td: TermDesign, priors: Priors) -> Contribution:
    eta = Contribution()
    if "weekday" in td.codes:
        # A fixed prior scale: a hierarchical scale over 7 levels is barely identified and its
        # funnel was the slowest direction of the sampler (min bulk ESS 40 of 1,000 at 10k rows).
        effect = pm.ZeroSumNormal("weekday_effect", sigma=priors.effect_sigma, dims="weekday")
        eta.gather(effect, td.codes["weekday"], len(td.coords["weekday"]))
    if "hour" in td.codes:
        basis = td.tables["hour_basis"]
        if "hour_harmonic" in td.coords:
            lo_mu, lo_sd = _lognormal_params(priors.lengthscale_lower, priors.lengthscale_upper)
            ls = pm.LogNormal("hour_lengthscale", mu=lo_mu, sigma=lo_sd)
            amp = pm.HalfNormal("hour_sigma", sigma=priors.smooth_sigma)
            k = np.arange(1, len(td.coords["hour_harmonic"]) + 1)
            # Periodic-kernel HSGP weights (Riutort-Mayol et al.): q_j^2 = 2 I_j(ls^-2) e^-ls^-2
            q = pt.sqrt(2 * pt.ive(k, 1 / pt.square(ls)))
            z = pm.Normal("hour_z", 0.0, 1.0, dims="hour_mode")
            coef = amp * pt.concatenate([q, q]) * z
            effect = pm.Deterministic("hour_effect", pt.dot(basis, coef), dims="hour")
        else:
            effect = _random_walk(td, "hour", "hour", priors.smooth_sigma)
        eta.gather(effect, td.codes["hour"], len(td.coords["hour"]))
    if "position" in td.codes:
        effect = _random_walk(td, "position", "position", priors.smooth_sigma)
        eta.gather(effect, td.codes["position"], len(td.coords["position"]))
    if "day" in td.codes:
        effect = _random_walk(td, "day", "day_of_month", priors.smooth_sigma)
        eta.gather(effect, td.codes["day"], len(td.coords["day_of_month"]))
    return eta


def evaluate_seasonal(td: TermDesign, draws: Draws, rng: np.random.Generator) -> np.ndarray:
    out: Any = 0.0
    for key, var in (
        ("weekday", "weekday"),
        ("hour", "hour"),
        ("position", "position"),
        ("day", "day"),
    ):
        if key in td.codes:
            out = out + draws[f"{var}_effect"][:, td.codes[key]]
    return np.asarray(out)


# --- markov -----------------------------------------------------------------------------------


def markov_dims(td: TermDesign) -> list[str]:
    """The previous-outcome dims of a Markov term (``prev_<o>``, then ``prev2_<o>``)."""
    return [
        d for d in td.coords if d.startswith(("prev_", "prev2_")) and not d.endswith("_observed")
    ]


MARKOV_SLOPES = ("current", "prev", "interaction", "change")


def build_markov(td: TermDesign, priors: Priors) -> Contribution:
    eta = Contribution()
    for key, dim in zip(("prev", "prev2"), markov_dims(td), strict=False):
        if td.settings.get("no_previous_zero", False):
            # "no previous play" is carried by the position effect: fixed at 0 here, and the
            # observed outcomes a zero-sum pair (see skipmodel.model.design._design_markov).
            observed = pm.ZeroSumNormal(
                f"{dim}_observed_effect", sigma=priors.effect_sigma, dims=f"{dim}_observed"
            )
            table = pt.concatenate([pt.zeros(1), observed])
            effect = pm.Deterministic(f"{dim}_effect", table, dims=dim)
        else:
            effect = pm.ZeroSumNormal(f"{dim}_effect", sigma=priors.effect_sigma, dims=dim)
        eta.gather(effect, td.codes[key], len(td.coords[dim]))
    for key in MARKOV_SLOPES:
        if key in td.values:
            beta = pm.Normal(f"markov_{key}_beta", 0.0, priors.effect_sigma, dims="markov_feature")
            eta.slope(beta, td.values[key])
    return eta


def evaluate_markov(td: TermDesign, draws: Draws, rng: np.random.Generator) -> np.ndarray:
    out: Any = 0.0
    for key, dim in zip(("prev", "prev2"), markov_dims(td), strict=False):
        out = out + draws[f"{dim}_effect"][:, td.codes[key]]
    for key in MARKOV_SLOPES:
        if key in td.values:
            out = out + draws[f"markov_{key}_beta"] @ td.values[key].T
    return np.asarray(out)


# --- smooth -----------------------------------------------------------------------------------


def _fixed(td: TermDesign) -> bool:
    """Is this smooth's lengthscale fixed (rotated modes), rather than free?"""
    return f"{_label(td)}_basis" not in td.coords


def build_smooth(td: TermDesign, priors: Priors) -> Contribution:
    label = _label(td)
    basis = td.tables["basis"]
    if _fixed(td):
        # Fixed lengthscale: the basis columns are the rotated, spectrally scaled modes
        # (design.smooth_modes), so only the amplitude scales them, like a random walk's modes.
        amp = pm.HalfNormal(f"{label}_amplitude", sigma=priors.smooth_sigma)
        coef = _mode_coefficients(td, label, amp, basis.shape[1])
    else:
        coef = _free_lengthscale_coefficients(td, priors)
    pm.Deterministic(f"{label}_effect", pt.dot(td.tables["grid_basis"], coef), dims=f"{label}_grid")
    return Contribution().gather(pt.dot(basis, coef), td.codes["value"], basis.shape[0])


def _free_lengthscale_coefficients(td: TermDesign, priors: Priors) -> Any:
    label = _label(td)
    mu, sd = _lognormal_params(priors.lengthscale_lower, priors.lengthscale_upper)
    ls = pm.LogNormal(f"{label}_lengthscale", mu=mu, sigma=sd)
    amp = pm.HalfNormal(f"{label}_amplitude", sigma=priors.smooth_sigma)
    z = pm.Normal(f"{label}_z", 0.0, 1.0, dims=f"{label}_basis")
    return expquad_sqrt_psd(ls, amp, td.tables["sqrt_eigenvalues"], pt) * z


def evaluate_smooth(td: TermDesign, draws: Draws, rng: np.random.Generator) -> np.ndarray:
    label = _label(td)
    basis = td.tables["basis"]
    amp = draws[f"{label}_amplitude"]
    if _fixed(td):
        coef = _mode_coefficient_draws(td, label, amp, draws, basis.shape[1])
    else:
        ls = draws[f"{label}_lengthscale"][:, None]
        sqrt_eig = td.tables["sqrt_eigenvalues"]
        coef = expquad_sqrt_psd(ls, amp[:, None], sqrt_eig, np) * draws[f"{label}_z"]
    return (coef @ basis.T)[:, td.codes["value"]]


# --- pooled -----------------------------------------------------------------------------------


def build_pooled(td: TermDesign, priors: Priors) -> Contribution:
    label = _label(td)
    n_levels = len(td.coords[label])
    sigma = pm.HalfNormal(f"{label}_sigma", sigma=priors.group_sigma)
    # Zero-sum: the level effects are deviations from the intercept, so the two cannot trade
    # off along a ridge (the naive model's slowest direction).
    parametrization = td.settings["parametrization"]
    if parametrization == "centered":
        effect = pm.ZeroSumNormal(f"{label}_effect", sigma=sigma, dims=label)
    elif parametrization == "mixed":
        # Informative levels centred, thin ones non-centred: a non-centred level with hundreds of
        # plays ties its z to 1 / sigma (a funnel), a centred thin level ties itself to sigma.
        # No sum-to-zero here: mixed pools have many levels, and the intercept ridge it removes
        # is sigma / sqrt(levels) wide.
        z = pm.Normal(f"{label}_z", 0.0, 1.0, dims=f"{label}_noncentered")
        thick = pm.Normal(f"{label}_centered_effect", 0.0, sigma, dims=f"{label}_centered")
        effect = pt.zeros(n_levels)
        effect = pt.set_subtensor(effect[td.tables["noncentered"]], sigma * z)
        effect = pt.set_subtensor(effect[td.tables["centered"]], thick)
        if n_levels <= DETERMINISTIC_MAX_LEVELS:
            effect = pm.Deterministic(f"{label}_effect", effect, dims=label)
    else:
        z = pm.ZeroSumNormal(f"{label}_z", sigma=1.0, dims=label)
        effect = sigma * z
        if n_levels <= DETERMINISTIC_MAX_LEVELS:
            effect = pm.Deterministic(f"{label}_effect", effect, dims=label)
    eta = Contribution().gather(effect, td.codes["level"], n_levels)
    if "slopes" in td.values:
        dim = f"{label}_slope"
        mean = pm.Normal(f"{dim}_mean", 0.0, priors.effect_sigma, dims=dim)
        spread = pm.HalfNormal(f"{dim}_sigma", sigma=priors.group_sigma, dims=dim)
        # Deviations sum to zero over levels (last axis), identifying the mean slope.
        zs = pm.ZeroSumNormal(f"{dim}_z", sigma=1.0, dims=(dim, label))
        slope = mean + spread * zs[:, td.codes["level"]].T
        eta.add(pt.sum(td.values["slopes"] * slope, axis=1))
    return eta


def _effect_table(td: TermDesign, draws: Draws) -> np.ndarray:
    """Per-draw effect of every level, (n_draws, n_levels), whatever the parametrisation."""
    label = _label(td)
    if f"{label}_effect" in draws:
        return draws[f"{label}_effect"]
    sigma = draws[f"{label}_sigma"][:, None]
    if td.settings["parametrization"] != "mixed":
        return sigma * draws[f"{label}_z"]
    table = np.empty((len(sigma), len(td.coords[label])))
    table[:, td.tables["noncentered"]] = sigma * draws[f"{label}_z"]
    table[:, td.tables["centered"]] = draws[f"{label}_centered_effect"]
    return table


def _level_effects(
    table: np.ndarray,
    sigma: np.ndarray,
    codes: np.ndarray,
    unseen: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Per-draw effect of each row's level; unseen levels draw from N(0, sigma) per draw."""
    out = table[:, np.where(codes >= 0, codes, 0)]
    if (codes < 0).any():
        n_new = int(unseen.max()) + 1
        fresh = rng.standard_normal((len(sigma), n_new)) * sigma[:, None]
        out[:, codes < 0] = fresh[:, unseen[codes < 0]]
    return out


def evaluate_pooled(td: TermDesign, draws: Draws, rng: np.random.Generator) -> np.ndarray:
    label = _label(td)
    codes, unseen = td.codes["level"], td.codes.get("unseen", np.full_like(td.codes["level"], -1))
    out = _level_effects(_effect_table(td, draws), draws[f"{label}_sigma"], codes, unseen, rng)
    if "slopes" in td.values:
        dim = f"{label}_slope"
        mean, spread, zs = draws[f"{dim}_mean"], draws[f"{dim}_sigma"], draws[f"{dim}_z"]
        for j in range(td.values["slopes"].shape[1]):
            ones = np.ones(len(mean))
            dev = _level_effects(zs[:, j, :], ones, codes, unseen, rng) * spread[:, j : j + 1]
            out = out + (mean[:, j : j + 1] + dev) * td.values["slopes"][:, j]
    return out


# --- fixed ------------------------------------------------------------------------------------


def build_fixed(td: TermDesign, priors: Priors) -> Contribution:
    eta = Contribution()
    if "slopes" in td.values:
        beta = pm.Normal("fixed_beta", 0.0, priors.effect_sigma, dims="fixed_predictor")
        eta.slope(beta, td.values["slopes"])
    for col, codes in td.codes.items():
        effect = pm.ZeroSumNormal(f"{col}_effect", sigma=priors.effect_sigma, dims=col)
        eta.gather(effect, codes, len(td.coords[col]))
    return eta


def evaluate_fixed(td: TermDesign, draws: Draws, rng: np.random.Generator) -> np.ndarray:
    out: Any = 0.0
    if "slopes" in td.values:
        out = out + draws["fixed_beta"] @ td.values["slopes"].T
    for col, codes in td.codes.items():
        # A level unseen in fitting gets the average level's effect, 0 under the zero-sum.
        table = draws[f"{col}_effect"][:, np.where(codes >= 0, codes, 0)]
        out = out + np.where(codes >= 0, table, 0.0)
    return np.asarray(out)


BUILDERS: dict[str, Callable[[TermDesign, Priors], Contribution]] = {
    "seasonal": build_seasonal,
    "markov": build_markov,
    "smooth": build_smooth,
    "pooled": build_pooled,
    "fixed": build_fixed,
}
EVALUATORS: dict[str, Callable[[TermDesign, Draws, np.random.Generator], np.ndarray]] = {
    "seasonal": evaluate_seasonal,
    "markov": evaluate_markov,
    "smooth": evaluate_smooth,
    "pooled": evaluate_pooled,
    "fixed": evaluate_fixed,
}
