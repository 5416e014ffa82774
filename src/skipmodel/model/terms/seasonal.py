"""The seasonal kind: weekday, hour of day (on a circle), session position, day of month.

Weekday is a zero-sum effect with a fixed prior scale; the others are random walks in the
eigenbasis of the walk's precision (independent coefficients, sum-to-zero by construction), each
mode centred when the data inform it (:func:`skipmodel.model.bases.walk_parametrization`), or a
periodic HSGP over the hour. Variables: ``weekday_effect`` [weekday]; per walk ``<w>`` (hour,
position, day): ``<w>_sigma``, ``<w>_z`` / ``<w>_coef``, ``<w>_effect`` [hour | position |
day_of_month]; ``periodic_gp`` hour: ``hour_sigma``, ``hour_lengthscale``, ``hour_z``,
``hour_effect``. It aggregates exactly (every input is discrete).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from skipmodel.errors import SkipmodelError
from skipmodel.model.bases import fourier_basis, random_walk_basis, walk_parametrization
from skipmodel.model.latent import (
    Block,
    Hyper,
    LatentTerm,
    View,
    scaled_variance,
    zero_sum,
)
from skipmodel.model.spec import Priors
from skipmodel.model.term_specs import Seasonal
from skipmodel.model.terms.base import (
    Contribution,
    DesignContext,
    Draws,
    EffectPlot,
    TermDesign,
    TermKind,
)
from skipmodel.model.terms.modes import lognormal_params, mode_coefficients, mode_tables
from skipmodel.store.schema import WEEKDAYS

#: Session positions always covered (MSSD sessions have at most 20 plays).
MIN_POSITIONS = 20
#: (code key, variable prefix, dim, how the report draws it)
_PARTS = (
    ("weekday", "weekday", "weekday", "categorical"),
    ("hour", "hour", "hour", "cyclic"),
    ("position", "position", "position", "curve"),
    ("day", "day", "day_of_month", "curve"),
)


def _walk_modes(
    ctx: DesignContext,
    term: Seasonal,
    key: str,
    setting: str,
    codes: np.ndarray,
    tables: dict[str, np.ndarray],
    coords: dict[str, tuple[Any, ...]],
) -> None:
    """Choose the centred modes of the walk ``key`` (stored in the encoders as ``setting``)."""
    basis = tables[f"{key}_basis"]
    chosen = ctx.settings(
        setting,
        lambda: {
            "centered": walk_parametrization(
                term.parametrization,
                np.bincount(codes, minlength=basis.shape[0]),
                basis,
                ctx.outcome_rate(),
                ctx.priors.smooth_sigma,
            )
        },
        legacy={"centered": []},  # runs fitted before per-mode centring
    )
    mode_tables(key, chosen["centered"], basis.shape[1], tables, coords)


def _random_walk(td: TermDesign, name: str, dim: str, sigma_prior: float) -> Any:
    """``sigma * basis @ z``, with the modes the data inform centred (``<name>_coef``)."""
    import pymc as pm
    import pytensor.tensor as pt

    sigma = pm.HalfNormal(f"{name}_sigma", sigma=sigma_prior)
    basis = td.tables[f"{name}_basis"]
    coef = mode_coefficients(td, name, sigma, basis.shape[1])
    return pm.Deterministic(f"{name}_effect", pt.dot(basis, coef), dims=dim)


def _periodic_latent(basis: np.ndarray, harmonics: int, priors: Priors) -> LatentTerm:
    """The periodic-kernel HSGP of the hour: ``basis @ (amp * q(ls) * z)``, coefficient
    variances ``amp^2 q_j(ls)^2`` with ``q_j^2 = 2 I_j(ls^-2) e^-ls^-2`` (as :meth:`build`)."""
    from scipy.special import ive

    from skipmodel.model.terms.modes import lognormal_params

    k = np.arange(1, harmonics + 1)
    mu, sd = lognormal_params(priors.lengthscale_lower, priors.lengthscale_upper)

    def variance(theta: Any) -> np.ndarray:
        q2 = 2 * ive(k, 1 / theta["hour_lengthscale"] ** 2)
        return theta["hour_sigma"] ** 2 * np.concatenate([q2, q2])

    return LatentTerm(
        hypers=[
            Hyper("hour_sigma", "halfnormal", priors.smooth_sigma),
            Hyper("hour_lengthscale", "lognormal", mu, sd),
        ],
        blocks=[Block("hour__modes", basis.shape[1], variance, ("hour_sigma", "hour_lengthscale"))],
        views=[View("hour_effect", "hour__modes", basis, dims=("hour",))],
    )


class SeasonalKind(TermKind):
    spec = Seasonal

    def design(self, ctx: DesignContext, term: Seasonal, name: str) -> TermDesign:
        codes: dict[str, np.ndarray] = {}
        tables: dict[str, np.ndarray] = {}
        coords: dict[str, tuple[Any, ...]] = {}
        if term.weekday:
            wd = ctx.floats("weekday")
            if np.isnan(wd).any() or ((wd < 0) | (wd > 6)).any():
                raise SkipmodelError("column 'weekday' must hold 0 (Mon) .. 6 (Sun) without nulls")
            codes["weekday"] = wd.astype(np.int32)
            coords["weekday"] = WEEKDAYS
        if term.hour != "none":
            hour = ctx.floats("hour_of_day")
            if np.isnan(hour).any() or ((hour < 0) | (hour > 23)).any():
                raise SkipmodelError("column 'hour_of_day' must hold 0 .. 23 without nulls")
            codes["hour"] = hour.astype(np.int32)
            coords["hour"] = tuple(range(24))
            if term.hour == "cyclic_rw":
                tables["hour_basis"] = random_walk_basis(24, cyclic=True)
                _walk_modes(ctx, term, "hour", f"{name}.hour_modes", codes["hour"], tables, coords)
            else:
                tables["hour_basis"] = fourier_basis(np.arange(24), term.hour_harmonics)
                coords["hour_harmonic"] = tuple(range(1, term.hour_harmonics + 1))
                coords["hour_mode"] = tuple(range(tables["hour_basis"].shape[1]))
        if term.position:
            pos = ctx.floats("session_position")
            n_pos = int(
                ctx.settings(
                    f"{name}.position",
                    lambda: {"n": int(max(MIN_POSITIONS, np.nanmax(pos)))},
                )["n"]
            )
            codes["position"] = (np.clip(np.nan_to_num(pos, nan=1), 1, n_pos) - 1).astype(np.int32)
            coords["position"] = tuple(range(1, n_pos + 1))
            tables["position_basis"] = random_walk_basis(n_pos, cyclic=False)
            _walk_modes(
                ctx, term, "position", f"{name}.position_modes", codes["position"], tables, coords
            )
        if term.day_of_month:
            dates = ctx.dates("date")
            if dates.isna().any():
                raise SkipmodelError("column 'date' must hold a date on every play, without nulls")
            codes["day"] = (dates.dt.day.to_numpy() - 1).astype(np.int32)
            coords["day_of_month"] = tuple(range(1, 32))
            tables["day_basis"] = random_walk_basis(31, cyclic=False)
            _walk_modes(ctx, term, "day", f"{name}.day_modes", codes["day"], tables, coords)
        return TermDesign(term, name, codes=codes, tables=tables, coords=coords)

    def build(self, td: TermDesign, priors: Priors) -> Contribution:
        import pymc as pm
        import pytensor.tensor as pt

        eta = Contribution()
        if "weekday" in td.codes:
            # A fixed prior scale: a hierarchical scale over 7 levels is barely identified and
            # its funnel was the slowest direction of the sampler (min bulk ESS 40 of 1,000 at
            # 10k rows).
            effect = pm.ZeroSumNormal("weekday_effect", sigma=priors.effect_sigma, dims="weekday")
            eta.gather(effect, td.codes["weekday"], len(td.coords["weekday"]))
        if "hour" in td.codes:
            basis = td.tables["hour_basis"]
            if "hour_harmonic" in td.coords:
                lo_mu, lo_sd = lognormal_params(priors.lengthscale_lower, priors.lengthscale_upper)
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

    def evaluate(self, td: TermDesign, draws: Draws, rng: np.random.Generator) -> np.ndarray:
        out: Any = 0.0
        for key, var, _, _ in _PARTS:
            if key in td.codes:
                out = out + draws[f"{var}_effect"][:, td.codes[key]]
        return np.asarray(out)

    def layout(self, td: TermDesign) -> Contribution:
        out = Contribution()
        for key, var, dim, _ in _PARTS:
            if key in td.codes:
                out.gather(f"{var}_effect", td.codes[key], len(td.coords[dim]))
        return out

    def latent(self, td: TermDesign, priors: Priors) -> LatentTerm:
        out = LatentTerm()
        if "weekday" in td.codes:
            out.extend(zero_sum("weekday_effect", 7, priors.effect_sigma, ("weekday",)))
        for key, var, dim, _ in _PARTS[1:]:
            if key not in td.codes:
                continue
            basis = td.tables[f"{var}_basis"]
            block = f"{var}__modes"
            if key == "hour" and "hour_harmonic" in td.coords:
                out.extend(_periodic_latent(basis, len(td.coords["hour_harmonic"]), priors))
                continue
            # a random walk: basis @ coef, coef ~ N(0, sigma^2) per mode
            out.extend(
                LatentTerm(
                    hypers=[Hyper(f"{var}_sigma", "halfnormal", priors.smooth_sigma)],
                    blocks=[
                        Block(
                            block,
                            basis.shape[1],
                            scaled_variance(f"{var}_sigma", basis.shape[1]),
                            (f"{var}_sigma",),
                        )
                    ],
                    views=[View(f"{var}_effect", block, basis, dims=(dim,))],
                )
            )
        return out

    def effects(self, td: TermDesign) -> tuple[EffectPlot, ...]:
        return tuple(
            EffectPlot(f"{var}_effect", dim, draw, "seasonal")  # type: ignore[arg-type]
            for key, var, dim, draw in _PARTS
            if key in td.codes
        )


KIND = SeasonalKind()
