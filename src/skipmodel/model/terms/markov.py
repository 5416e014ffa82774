"""The markov kind: memory in chains — the previous play(s)' outcome and track features.

The previous outcome is coded 0 = no previous play, 1 = false, 2 = true, a zero-sum effect
``prev_<o>_effect`` [prev_<o>] (and ``prev2_<o>_effect`` with ``lag2``); per feature the slopes
``markov_{current,prev,interaction,change}_beta`` [markov_feature]. With session position in the
model, ``no_previous`` is fixed at 0 and the free variable is ``prev_<o>_observed_effect``
[prev_<o>_observed] (see :meth:`MarkovKind.design`). Its per-group prediction state is the
previous outcomes of the session (:class:`PreviousOutcomes`), rolled forward by sequential
prediction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from skipmodel.model.latent import Block, LatentTerm, View, fixed_variance, zero_sum, zero_sum_basis
from skipmodel.model.spec import Priors
from skipmodel.model.term_specs import Markov, Seasonal
from skipmodel.model.terms.base import (
    CellPlan,
    Contribution,
    DesignContext,
    Draws,
    EffectPlot,
    TermDesign,
    TermKind,
)

PREV_LEVELS: tuple[str, ...] = ("no_previous", "false", "true")
#: The observed levels of a previous outcome, when ``no_previous`` is fixed at 0.
PREV_OBSERVED: tuple[str, ...] = PREV_LEVELS[1:]
MARKOV_SLOPES = ("current", "prev", "interaction", "change")


def markov_dims(td: TermDesign) -> list[str]:
    """The previous-outcome dims of a Markov term (``prev_<o>``, then ``prev2_<o>``)."""
    return [
        d for d in td.coords if d.startswith(("prev_", "prev2_")) and not d.endswith("_observed")
    ]


def _prev_codes(ctx: DesignContext, column: str) -> np.ndarray:
    flag = ctx.flags(column)
    return np.where(
        flag.isna().to_numpy(), 0, np.where(flag.fillna(False).to_numpy(), 2, 1)
    ).astype(np.int32)


def features_part(td: TermDesign, draws: Draws) -> np.ndarray:
    """The feature slopes (known before the play), without the lagged outcomes."""
    out: Any = 0.0
    for key in MARKOV_SLOPES:
        if key in td.values:
            out = out + draws[f"markov_{key}_beta"] @ td.values[key].T
    return np.asarray(out)


class PreviousOutcomes:
    """The previous outcomes of each row per draw (codes 0 / 1 / 2), updated by simulated ones."""

    def __init__(self, td: TermDesign, draws: Draws) -> None:
        dims = markov_dims(td)
        self.tables = [draws[f"{dim}_effect"] for dim in dims]
        n_draws = self.tables[0].shape[0]
        keys = ("prev", "prev2")[: len(dims)]
        self.codes = [np.repeat(td.codes[k][None, :], n_draws, axis=0) for k in keys]
        self._draw = np.arange(n_draws)

    def reveal(self, rows: np.ndarray, eta: np.ndarray, outcome: np.ndarray) -> None:
        """The first half's outcomes are already in the lag columns' codes."""

    def logit(self, row: int, eta: np.ndarray) -> np.ndarray:
        out = self.tables[0][self._draw, self.codes[0][:, row]]
        for table, codes in zip(self.tables[1:], self.codes[1:], strict=True):
            out = out + table[self._draw, codes[:, row]]
        return out

    def observe(self, row: int, outcome: np.ndarray, later: Sequence[int | None]) -> None:
        code = np.where(outcome, 2, 1)
        for codes, nxt in zip(self.codes, later, strict=False):
            if nxt is not None:
                codes[:, nxt] = code


class MarkovKind(TermKind):
    spec = Markov

    def design(self, ctx: DesignContext, term: Markov, name: str) -> TermDesign:
        """Previous outcome(s) as codes 0 = no previous play, 1 = false, 2 = true; feature slopes.

        With session position in the model, "no previous play" is (up to gaps in a session) the
        same rows as position 1 (and, two plays back, positions 1 and 2): the sum of the two
        effects is all the data identify, a ridge NUTS crawls along (the slowest direction of the
        ``full`` model on rows and on aggregated cells). Then ``no_previous`` is fixed at 0 — the
        position effect carries it — and false / true are a zero-sum pair
        (``settings["no_previous_zero"]``, kept in the encoders; runs fitted before keep the
        three-level effect). A row after a gap in its session then gets 0, the average.
        """
        codes = {"prev": _prev_codes(ctx, f"prev_{ctx.outcome}")}
        coords: dict[str, tuple[Any, ...]] = {f"prev_{ctx.outcome}": PREV_LEVELS}
        if term.lag2:
            codes["prev2"] = _prev_codes(ctx, f"prev2_{ctx.outcome}")
            coords[f"prev2_{ctx.outcome}"] = PREV_LEVELS
        positions = any(isinstance(t, Seasonal) and t.position for t in ctx.spec.terms)
        # runs fitted before this choice keep their three-level effects
        setting = ctx.settings(
            f"{name}.no_previous", lambda: {"zero": positions}, legacy={"zero": False}
        )
        zero = bool(setting["zero"])
        if zero:
            for dim in list(coords):
                coords[f"{dim}_observed"] = PREV_OBSERVED
        values: dict[str, np.ndarray] = {}
        if term.features:
            coords["markov_feature"] = term.features
            cur, prev, inter, change = [], [], [], []
            for feat in term.features:
                x, xp = ctx.floats(feat), ctx.floats(f"prev_{feat}")
                sc = ctx.scaler(f"{name}.{feat}", x)
                z, zp = sc.transform(x), sc.transform(xp)
                # Product and absolute change are centred but not rescaled, so their slopes read
                # per unit of z_before * z_now and of |z_now - z_before|.
                prod = z * zp
                sc_i = ctx.scaler(f"{name}.{feat}.interaction", prod, scale=False)
                delta = np.abs(z - zp)
                sc_c = ctx.scaler(f"{name}.{feat}.change", delta, scale=False)
                cur.append(np.nan_to_num(z))
                prev.append(np.nan_to_num(zp))
                inter.append(np.nan_to_num(sc_i.transform(prod)))
                change.append(np.nan_to_num(sc_c.transform(delta)))
            values["prev"] = np.column_stack(prev)
            if term.current:
                values["current"] = np.column_stack(cur)
            if term.interactions:
                values["interaction"] = np.column_stack(inter)
            if term.changes:
                values["change"] = np.column_stack(change)
        settings = {"no_previous_zero": zero}
        return TermDesign(term, name, codes=codes, values=values, coords=coords, settings=settings)

    def build(self, td: TermDesign, priors: Priors) -> Contribution:
        import pymc as pm
        import pytensor.tensor as pt

        eta = Contribution()
        for key, dim in zip(("prev", "prev2"), markov_dims(td), strict=False):
            if td.settings.get("no_previous_zero", False):
                # "no previous play" is carried by the position effect: fixed at 0 here, and the
                # observed outcomes a zero-sum pair (see MarkovKind.design).
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
                beta = pm.Normal(
                    f"markov_{key}_beta", 0.0, priors.effect_sigma, dims="markov_feature"
                )
                eta.slope(beta, td.values[key])
        return eta

    def evaluate(self, td: TermDesign, draws: Draws, rng: np.random.Generator) -> np.ndarray:
        out: Any = 0.0
        for key, dim in zip(("prev", "prev2"), markov_dims(td), strict=False):
            out = out + draws[f"{dim}_effect"][:, td.codes[key]]
        return np.asarray(out + features_part(td, draws))

    def layout(self, td: TermDesign) -> Contribution:
        out = Contribution()
        for key, dim in zip(("prev", "prev2"), markov_dims(td), strict=False):
            out.gather(f"{dim}_effect", td.codes[key], len(td.coords[dim]))
        for key in MARKOV_SLOPES:
            if key in td.values:
                out.slope(f"markov_{key}_beta", td.values[key])
        return out

    def latent(self, td: TermDesign, priors: Priors) -> LatentTerm:
        out = LatentTerm()
        for dim in markov_dims(td):
            if td.settings.get("no_previous_zero", False):
                # no_previous fixed at 0, the observed pair a zero-sum (see build)
                block = f"{dim}_observed__coef"
                matrix = np.vstack([np.zeros((1, 1)), zero_sum_basis(2)])
                out.extend(
                    LatentTerm(
                        blocks=[Block(block, 1, fixed_variance(priors.effect_sigma, 1))],
                        views=[View(f"{dim}_effect", block, matrix, dims=(dim,))],
                    )
                )
            else:
                out.extend(zero_sum(f"{dim}_effect", len(PREV_LEVELS), priors.effect_sigma, (dim,)))
        for key in MARKOV_SLOPES:
            if key in td.values:
                name, p = f"markov_{key}_beta", td.values[key].shape[1]
                out.blocks.append(Block(name, p, fixed_variance(priors.effect_sigma, p)))
                out.views.append(View(name, name, dims=("markov_feature",)))
        return out

    def known_part(self, td: TermDesign, draws: Draws, rng: np.random.Generator) -> np.ndarray:
        return features_part(td, draws)

    def group_state(self, td: TermDesign, draws: Draws) -> PreviousOutcomes:
        return PreviousOutcomes(td, draws)

    def cells(self, term: Markov) -> CellPlan:
        # the previous outcomes (keys of the cells too) have three states each
        return CellPlan(term.predictors(), extra_levels=3 ** (2 if term.lag2 else 1))

    def effects(self, td: TermDesign) -> tuple[EffectPlot, ...]:
        return tuple(EffectPlot(f"{d}_effect", d, "categorical", "markov") for d in markov_dims(td))


KIND = MarkovKind()
