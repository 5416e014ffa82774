"""The interaction kind: a partially pooled effect per observed pair of two categorical columns.

The pair's label is the two labels joined (:func:`skipmodel.model.encoders.joint_text`); pairs
seen fewer than ``min_count`` times share ``__other__``. It is a pool over the pairs (the
machinery of :mod:`skipmodel.model.terms.pooled`): ``<a>_x_<b>_sigma`` and the pair effects
``<a>_x_<b>_effect`` [<a>_x_<b>] (or their ``_z``), an unseen pair drawing from N(0, sigma) at
prediction. It aggregates exactly when both columns are discrete.
"""

from __future__ import annotations

import numpy as np

from skipmodel.model.encoders import joint_text
from skipmodel.model.latent import LatentTerm
from skipmodel.model.spec import Priors
from skipmodel.model.term_specs import Interaction
from skipmodel.model.terms.base import (
    Contribution,
    DesignContext,
    Draws,
    EffectPlot,
    LevelSource,
    TermDesign,
    TermKind,
)
from skipmodel.model.terms.pooled import (
    pool_design,
    pool_draws,
    pool_effect,
    pool_latent,
    pool_plot,
)


class InteractionKind(TermKind):
    spec = Interaction

    def design(self, ctx: DesignContext, term: Interaction, name: str) -> TermDesign:
        frame = ctx.frame[list(term.columns)]
        for col in term.columns:
            ctx.column(col)  # the leakage rule
        text = joint_text(frame, term.columns)
        lm = ctx.levels(name, term.label, min_count=term.min_count, text=text)
        return pool_design(ctx, term, name, lm, text)

    def build(self, td: TermDesign, priors: Priors) -> Contribution:
        n_pairs = len(td.coords[td.term.label])
        return Contribution().gather(pool_effect(td, priors), td.codes["level"], n_pairs)

    def evaluate(self, td: TermDesign, draws: Draws, rng: np.random.Generator) -> np.ndarray:
        return pool_draws(td, draws, rng)

    def layout(self, td: TermDesign) -> Contribution:
        label = td.term.label
        return Contribution().gather(f"{label}_effect", td.codes["level"], len(td.coords[label]))

    def latent(self, td: TermDesign, priors: Priors) -> LatentTerm:
        return pool_latent(td, priors)

    def level_sources(self, term: Interaction) -> tuple[LevelSource, ...]:
        auto = term.parametrization == "auto"
        return (LevelSource(term.name, term.columns, term.min_count, pooled=auto),)

    def effects(self, td: TermDesign) -> tuple[EffectPlot, ...]:
        return (pool_plot(td),)


KIND = InteractionKind()
