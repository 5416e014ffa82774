"""Term kinds: one module per kind, each with everything the kind needs, behind one registry.

:data:`KINDS` maps a kind's name (its spec dataclass's ``kind``, the TOML ``kind``) to its
:class:`~skipmodel.model.terms.base.TermKind`; :func:`kind_of` finds a term's. Every stage that
treats kinds differently — design, model, prediction, aggregation, the streaming encoders, the
report — asks the kind through this registry. A new kind: its module here, its line below, and
its dataclass in :mod:`skipmodel.model.term_specs`.

Variables in the posterior are listed in each kind's module; all ``*_effect`` vectors are on the
logit scale.
"""

from __future__ import annotations

from skipmodel.model.term_specs import TermSpec
from skipmodel.model.terms import fixed, interaction, markov, pooled, seasonal, session, smooth
from skipmodel.model.terms.base import (
    CellPlan,
    Contribution,
    DesignContext,
    Draws,
    EffectPlot,
    GradientSums,
    GroupState,
    LevelSource,
    TermDesign,
    TermKind,
)

KINDS: dict[str, TermKind] = {
    "seasonal": seasonal.KIND,
    "markov": markov.KIND,
    "smooth": smooth.KIND,
    "pooled": pooled.KIND,
    "fixed": fixed.KIND,
    "interaction": interaction.KIND,
    "session": session.KIND,
}


def kind_of(term: TermSpec) -> TermKind:
    """The kind of ``term`` (its spec dataclass's ``kind``)."""
    return KINDS[term.kind]


def term_name(term: TermSpec) -> str:
    """The stable name of a term inside a spec (prefix of its encoder keys)."""
    return term.name


__all__ = [
    "KINDS",
    "CellPlan",
    "Contribution",
    "DesignContext",
    "Draws",
    "EffectPlot",
    "GradientSums",
    "GroupState",
    "LevelSource",
    "TermDesign",
    "TermKind",
    "kind_of",
    "term_name",
]
