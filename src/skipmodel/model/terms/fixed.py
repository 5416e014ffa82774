"""The fixed kind: plain effects of other pre-play columns.

Booleans: one centred slope each; numbers: one slope on the standardised column (``log`` ones
log-transformed first); both in ``fixed_beta`` [fixed_predictor]. Strings, and columns listed in
``categorical``: a zero-sum ``<col>_effect`` [<col>] per level; a level unseen in the fitted data
gets the average (0).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from skipmodel.model.latent import Block, LatentTerm, View, fixed_variance, zero_sum
from skipmodel.model.spec import Priors
from skipmodel.model.term_specs import Fixed
from skipmodel.model.terms.base import (
    Contribution,
    DesignContext,
    Draws,
    EffectPlot,
    LevelSource,
    TermDesign,
    TermKind,
)
from skipmodel.store.schema import LOG_SCHEMA


def _is_text(column: str) -> bool:
    """Is ``column`` stored as text (a categorical column whatever the spec says)?"""
    if column not in LOG_SCHEMA.names:
        return False
    kind = LOG_SCHEMA.field(column).type
    return pa.types.is_dictionary(kind) or pa.types.is_string(kind)


class FixedKind(TermKind):
    spec = Fixed

    def design(self, ctx: DesignContext, term: Fixed, name: str) -> TermDesign:
        codes: dict[str, np.ndarray] = {}
        coords: dict[str, tuple[Any, ...]] = {}
        slopes: list[np.ndarray] = []
        slope_names: list[str] = []
        for col in term.columns:
            series = ctx.column(col)
            is_bool = pd.api.types.is_bool_dtype(series.dtype) or str(series.dtype) == "boolean"
            is_num = pd.api.types.is_numeric_dtype(series.dtype) and not is_bool
            if ctx.fitting:
                categorical = col in term.categorical or not (is_bool or is_num)
            else:
                # as fitted, whatever the new rows' dtype (a stray text value in a numeric
                # column is then refused by name, not taken for a level)
                categorical = f"{name}.{col}" in ctx.enc.levels
            if categorical:
                lm = ctx.levels(f"{name}.{col}", col)
                codes[col] = lm.encode(series)
                coords[col] = lm.levels
                continue
            x = ctx.floats(col)
            # Booleans are centred only (slope = log-odds change from false to true).
            sc = ctx.scaler(f"{name}.{col}", x, log=col in term.log, scale=not is_bool)
            slopes.append(np.nan_to_num(sc.transform(x)))
            slope_names.append(col)
        values = {"slopes": np.column_stack(slopes)} if slopes else {}
        if slopes:
            coords["fixed_predictor"] = tuple(slope_names)
        return TermDesign(term, name, codes=codes, values=values, coords=coords)

    def build(self, td: TermDesign, priors: Priors) -> Contribution:
        import pymc as pm

        eta = Contribution()
        if "slopes" in td.values:
            beta = pm.Normal("fixed_beta", 0.0, priors.effect_sigma, dims="fixed_predictor")
            eta.slope(beta, td.values["slopes"])
        for col, codes in td.codes.items():
            effect = pm.ZeroSumNormal(f"{col}_effect", sigma=priors.effect_sigma, dims=col)
            eta.gather(effect, codes, len(td.coords[col]))
        return eta

    def evaluate(self, td: TermDesign, draws: Draws, rng: np.random.Generator) -> np.ndarray:
        out: Any = 0.0
        if "slopes" in td.values:
            out = out + draws["fixed_beta"] @ td.values["slopes"].T
        for col, codes in td.codes.items():
            # A level unseen in fitting gets the average level's effect, 0 under the zero-sum.
            table = draws[f"{col}_effect"][:, np.where(codes >= 0, codes, 0)]
            out = out + np.where(codes >= 0, table, 0.0)
        return np.asarray(out)

    def layout(self, td: TermDesign) -> Contribution:
        out = Contribution()
        if "slopes" in td.values:
            out.slope("fixed_beta", td.values["slopes"])
        for col, codes in td.codes.items():
            out.gather(f"{col}_effect", codes, len(td.coords[col]))
        return out

    def latent(self, td: TermDesign, priors: Priors) -> LatentTerm:
        out = LatentTerm()
        if "slopes" in td.values:
            p = td.values["slopes"].shape[1]
            out.blocks.append(Block("fixed_beta", p, fixed_variance(priors.effect_sigma, p)))
            out.views.append(View("fixed_beta", "fixed_beta", dims=("fixed_predictor",)))
        for col in td.codes:
            out.extend(zero_sum(f"{col}_effect", len(td.coords[col]), priors.effect_sigma, (col,)))
        return out

    def level_sources(self, term: Fixed) -> tuple[LevelSource, ...]:
        cols = [c for c in term.columns if c in term.categorical or _is_text(c)]
        return tuple(LevelSource(f"{term.name}.{c}", (c,)) for c in cols)

    def effects(self, td: TermDesign) -> tuple[EffectPlot, ...]:
        return tuple(EffectPlot(f"{c}_effect", c, "categorical", "fixed") for c in td.codes)


KIND = FixedKind()
