"""The pooled kind: hierarchical intercepts (optionally slopes) by a grouping column.

Levels with fewer than ``min_count`` plays share ``__other__``; the levels' spread ``sigma`` is
learnt. ``auto`` centres the levels the data inform and leaves thin ones non-centred (a pool with
both is "mixed", :func:`skipmodel.model.bases.pooled_parametrization`). At prediction a level
unseen in fitting draws its effect from N(0, sigma), afresh per posterior draw. Variables:
``<label>_sigma``; ``<label>_z`` (non-centred) or ``<label>_effect`` (centred) [<label>]; mixed:
``<label>_z`` [<label>_noncentered] and ``<label>_centered_effect`` [<label>_centered];
``<label>_effect`` is also recorded with at most :data:`DETERMINISTIC_MAX_LEVELS` levels; slopes:
``<label>_slope_{mean,sigma}`` [<label>_slope], ``<label>_slope_z`` [<label>_slope, <label>].
``<label>`` is ``track`` for track_id_clean, else the column. The pool machinery here
(:func:`pool_design`, :func:`pool_effect`, :func:`pool_draws`) serves every pooled kind.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from skipmodel.model.bases import pooled_parametrization
from skipmodel.model.encoders import UNSEEN, LevelMap, as_text
from skipmodel.model.latent import (
    LARGE_POOL,
    Block,
    Hyper,
    LatentTerm,
    View,
    refuse,
    scaled_variance,
    zero_sum,
)
from skipmodel.model.spec import Priors
from skipmodel.model.term_specs import Pooled
from skipmodel.model.terms.base import (
    Contribution,
    DesignContext,
    Draws,
    EffectPlot,
    LevelSource,
    TermDesign,
    TermKind,
)

#: Pooled terms with at most this many levels also record ``<label>_effect`` in the posterior;
#: above it (tracks) only ``sigma`` and ``z`` are kept, to keep posterior files small.
DETERMINISTIC_MAX_LEVELS = 500


def pool_design(
    ctx: DesignContext,
    term: Any,
    name: str,
    lm: LevelMap,
    text: pd.Series,
) -> TermDesign:
    """Level codes (``level``; ``unseen`` numbers the distinct unseen levels), the centred /
    non-centred split and coords of a pool over ``lm``'s levels; ``text`` the rows' labels."""
    label = term.label
    codes = {"level": lm.encode(text)}
    if (codes["level"] < 0).any():
        # Number the distinct unseen levels so each gets its own population draw at prediction.
        new = pd.factorize(as_text(text[codes["level"] < 0]))[0]
        codes["unseen"] = np.full(len(text), UNSEEN, dtype=np.int32)
        codes["unseen"][codes["level"] < 0] = new
    coords: dict[str, tuple[Any, ...]] = {label: lm.levels}
    seen = codes["level"][codes["level"] >= 0]
    counts = np.bincount(seen, minlength=len(lm.levels))
    chosen = ctx.settings(
        name,
        lambda: pooled_parametrization(
            term.parametrization,
            counts,
            ctx.outcome_rate(),
            ctx.priors.group_sigma,
            skips=_skips_per_level(ctx, codes["level"], len(lm.levels)),
        ),
    )
    everything = list(range(len(lm.levels))) if chosen["p"] == "centered" else []
    centered = np.asarray(chosen.get("centered", everything), dtype=np.int64)
    rest = np.ones(len(lm.levels), dtype=bool)
    rest[centered] = False  # a mask, not np.setdiff1d: that sorts every level, every batch
    tables = {"centered": centered, "noncentered": np.flatnonzero(rest)}
    if chosen["p"] == "mixed":
        levels = np.asarray(lm.levels, dtype=object)
        coords[f"{label}_centered"] = tuple(levels[tables["centered"]])
        coords[f"{label}_noncentered"] = tuple(levels[tables["noncentered"]])
    return TermDesign(
        term,
        name,
        codes=codes,
        tables=tables,
        coords=coords,
        settings={"parametrization": chosen["p"]},
    )


def _skips_per_level(ctx: DesignContext, level: np.ndarray, n_levels: int) -> np.ndarray | None:
    """Outcomes per level of the fitted rows (None when they carry no outcome)."""
    if ctx.outcome not in ctx.frame.columns or len(ctx.frame) != len(level):
        return None
    y = pd.to_numeric(ctx.frame[ctx.outcome], errors="coerce").to_numpy(dtype=float)
    keep = (level >= 0) & np.isfinite(y)
    return np.bincount(level[keep], weights=y[keep], minlength=n_levels)


def pool_effect(td: TermDesign, priors: Priors) -> Any:
    """The pool's ``sigma`` and level effects (a tensor over ``td.term.label``)."""
    import pymc as pm
    import pytensor.tensor as pt

    label = td.term.label
    n_levels = len(td.coords[label])
    sigma = pm.HalfNormal(f"{label}_sigma", sigma=priors.group_sigma)
    # Zero-sum: the level effects are deviations from the intercept, so the two cannot trade
    # off along a ridge (the naive model's slowest direction).
    parametrization = td.settings["parametrization"]
    if parametrization == "centered":
        return pm.ZeroSumNormal(f"{label}_effect", sigma=sigma, dims=label)
    if parametrization == "mixed":
        # Informative levels centred, thin ones non-centred: a non-centred level with hundreds of
        # plays ties its z to 1 / sigma (a funnel), a centred thin level ties itself to sigma.
        # No sum-to-zero here: mixed pools have many levels, and the intercept ridge it removes
        # is sigma / sqrt(levels) wide.
        z = pm.Normal(f"{label}_z", 0.0, 1.0, dims=f"{label}_noncentered")
        thick = pm.Normal(f"{label}_centered_effect", 0.0, sigma, dims=f"{label}_centered")
        effect = pt.zeros(n_levels)
        effect = pt.set_subtensor(effect[td.tables["noncentered"]], sigma * z)
        effect = pt.set_subtensor(effect[td.tables["centered"]], thick)
    else:
        z = pm.ZeroSumNormal(f"{label}_z", sigma=1.0, dims=label)
        effect = sigma * z
    if n_levels <= DETERMINISTIC_MAX_LEVELS:
        effect = pm.Deterministic(f"{label}_effect", effect, dims=label)
    return effect


def effect_table(td: TermDesign, draws: Draws) -> np.ndarray:
    """Per-draw effect of every level, (n_draws, n_levels), whatever the parametrisation."""
    label = td.term.label
    if f"{label}_effect" in draws:
        return draws[f"{label}_effect"]
    sigma = draws[f"{label}_sigma"][:, None]
    if td.settings["parametrization"] != "mixed":
        return sigma * draws[f"{label}_z"]
    table = np.empty((len(sigma), len(td.coords[label])))
    table[:, td.tables["noncentered"]] = sigma * draws[f"{label}_z"]
    table[:, td.tables["centered"]] = draws[f"{label}_centered_effect"]
    return table


def level_effects(
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


def pool_draws(td: TermDesign, draws: Draws, rng: np.random.Generator) -> np.ndarray:
    """Each row's level effect per draw (unseen levels from the population)."""
    codes = td.codes["level"]
    unseen = td.codes.get("unseen", np.full_like(codes, -1))
    sigma = draws[f"{td.term.label}_sigma"]
    return level_effects(effect_table(td, draws), sigma, codes, unseen, rng)


def pool_latent(td: TermDesign, priors: Priors) -> LatentTerm:
    """The pool as a latent Gaussian: ``<label>_sigma`` ~ HalfNormal(group_sigma) and the level
    effects N(0, sigma^2): independent from :data:`~skipmodel.model.latent.LARGE_POOL` levels up
    (eliminated level by level by the Laplace passes), zero-sum below."""
    label = td.term.label
    n = len(td.coords[label])
    sigma = f"{label}_sigma"
    out = LatentTerm(hypers=[Hyper(sigma, "halfnormal", priors.group_sigma)])
    if n >= LARGE_POOL:
        name = f"{label}_effect"
        out.blocks.append(Block(name, n, scaled_variance(sigma, n), (sigma,), levels=True))
        out.views.append(View(name, name, dims=(label,)))
        return out
    return out.extend(zero_sum(f"{label}_effect", n, sigma, (label,)))


def pool_plot(td: TermDesign) -> EffectPlot:
    """Small pools are drawn level by level, large ones (tracks) by their extremes."""
    label = td.term.label
    small = len(td.coords[label]) <= DETERMINISTIC_MAX_LEVELS
    return EffectPlot(f"{label}_effect", label, "categorical" if small else "levels", td.term.kind)


class PooledKind(TermKind):
    spec = Pooled

    def design(self, ctx: DesignContext, term: Pooled, name: str) -> TermDesign:
        lm = ctx.levels(name, term.column, min_count=term.min_count)
        td = pool_design(ctx, term, name, lm, ctx.column(term.column))
        if not term.slopes:
            return td
        cols = []
        for col in term.slopes:
            x = ctx.floats(col)
            cols.append(np.nan_to_num(ctx.scaler(f"{name}.{col}", x).transform(x)))
        td.values["slopes"] = np.column_stack(cols)
        td.coords[f"{term.label}_slope"] = term.slopes
        return td

    def build(self, td: TermDesign, priors: Priors) -> Contribution:
        import pymc as pm
        import pytensor.tensor as pt

        label = td.term.label
        eta = Contribution().gather(
            pool_effect(td, priors), td.codes["level"], len(td.coords[label])
        )
        if "slopes" in td.values:
            dim = f"{label}_slope"
            mean = pm.Normal(f"{dim}_mean", 0.0, priors.effect_sigma, dims=dim)
            spread = pm.HalfNormal(f"{dim}_sigma", sigma=priors.group_sigma, dims=dim)
            # Deviations sum to zero over levels (last axis), identifying the mean slope.
            zs = pm.ZeroSumNormal(f"{dim}_z", sigma=1.0, dims=(dim, label))
            slope = mean + spread * zs[:, td.codes["level"]].T
            eta.add(pt.sum(td.values["slopes"] * slope, axis=1))
        return eta

    def evaluate(self, td: TermDesign, draws: Draws, rng: np.random.Generator) -> np.ndarray:
        label = td.term.label
        codes = td.codes["level"]
        unseen = td.codes.get("unseen", np.full_like(codes, -1))
        out = pool_draws(td, draws, rng)
        if "slopes" in td.values:
            dim = f"{label}_slope"
            mean, spread, zs = draws[f"{dim}_mean"], draws[f"{dim}_sigma"], draws[f"{dim}_z"]
            for j in range(td.values["slopes"].shape[1]):
                ones = np.ones(len(mean))
                dev = level_effects(zs[:, j, :], ones, codes, unseen, rng) * spread[:, j : j + 1]
                out = out + (mean[:, j : j + 1] + dev) * td.values["slopes"][:, j]
        return out

    def layout(self, td: TermDesign) -> Contribution:
        label = td.term.label
        n_levels = len(td.coords[label])
        out = Contribution().gather(f"{label}_effect", td.codes["level"], n_levels)
        if "slopes" in td.values:
            # per-level slopes, mean + sigma * z [<label>_slope, <label>]
            out.level_slope(
                f"{label}_slope_by_level", td.codes["level"], n_levels, td.values["slopes"]
            )
        return out

    def latent(self, td: TermDesign, priors: Priors) -> LatentTerm:
        if "slopes" in td.values:
            raise refuse("pooled", "slopes that vary by level")
        return pool_latent(td, priors)

    def level_sources(self, term: Pooled) -> tuple[LevelSource, ...]:
        auto = term.parametrization == "auto"
        return (LevelSource(term.name, (term.column,), term.min_count, pooled=auto),)

    def effects(self, td: TermDesign) -> tuple[EffectPlot, ...]:
        return (pool_plot(td),)


KIND = PooledKind()
