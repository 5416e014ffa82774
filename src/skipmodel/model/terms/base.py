"""The interface every term kind implements, and the plain data that passes through it.

A kind (:class:`TermKind`, one module per kind under :mod:`skipmodel.model.terms`) answers, for
the terms of its spec dataclass (:mod:`skipmodel.model.term_specs`):

==========================  ======================================================================
method                      what
==========================  ======================================================================
``design``                  rows -> :class:`TermDesign` (codes, values, tables; encoders learnt)
``build``                   its PyMC piece, a :class:`Contribution` of the logit
``evaluate``                the same in NumPy from posterior draws, for new rows
``layout``                  its effect tables / slopes by variable name, over the rows
``gradient``                gradient and curvature sums of a Bernoulli-logit per parameter
                            (generic from ``layout``; mergeable across buckets by ``+``)
``latent``                  the term as a latent Gaussian model (:mod:`skipmodel.model.latent`),
                            for nested-Laplace inference
``group_state``             per-group prediction state updated by earlier plays (default: none)
``cells``                   whether and how it aggregates into covariate cells (:class:`CellPlan`)
``level_sources``           its categorical level maps (exact counts over cells or a stream)
``effects``                 how the report draws its effects (:class:`EffectPlot`)
==========================  ======================================================================

Kinds import PyMC and PyTensor inside ``build`` only: designing rows (and reading a spec) never
imports PyMC.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, NamedTuple, Protocol

import numpy as np
import pandas as pd

from skipmodel.errors import SkipmodelError
from skipmodel.model.encoders import (
    Encoders,
    LevelMap,
    Scaler,
    as_dates,
    as_flags,
    as_numbers,
    as_text,
    joint_text,
    level_map,
)
from skipmodel.model.latent import LatentTerm, refuse
from skipmodel.model.spec import ModelSpec, Priors
from skipmodel.model.term_specs import TermSpec
from skipmodel.store.schema import OUTCOME_COLUMNS

Draws = dict[str, np.ndarray]  # variable name -> array (n_draws, *dims)


def refuse_outcome(column: str) -> None:
    """The leakage rule: an outcome of the play itself is never a predictor."""
    if column in OUTCOME_COLUMNS:
        raise SkipmodelError(
            f"column {column!r} is an outcome of the play being predicted and cannot be a "
            f"predictor (leakage rule); use the previous play's 'prev_{column}' instead"
        )


# ---------------------------------------------------------------------------------------------
# A term's arrays, and the context its design reads


@dataclass(frozen=True)
class TermDesign:
    """One term's arrays: codes (int32, per play), values (float, per play), small tables,
    the coords it introduces and the choices made from the data (``settings``)."""

    term: Any  # a TermSpec dataclass
    name: str
    codes: dict[str, np.ndarray] = field(default_factory=dict)
    values: dict[str, np.ndarray] = field(default_factory=dict)
    tables: dict[str, np.ndarray] = field(default_factory=dict)
    coords: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    #: Tables computed from these rows' distinct values rather than from the encoders (they
    #: change with the rows, so a model cannot reuse them for other rows, e.g. minibatches).
    data_tables: tuple[str, ...] = ()


@dataclass
class DesignContext:
    """The rows being designed and the encoders: learnt from them when ``fitting``, else read."""

    frame: pd.DataFrame
    enc: Encoders
    fitting: bool
    spec: ModelSpec

    @property
    def priors(self) -> Priors:
        return self.spec.priors

    @property
    def outcome(self) -> str:
        return self.spec.outcome

    def column(self, name: str) -> pd.Series:
        refuse_outcome(name)
        return self.frame[name]

    def floats(self, name: str) -> np.ndarray:
        """Column ``name`` as float64, NaN where missing; a value that is not a number is
        refused in one line (the value rule of :mod:`skipmodel.model.encoders`)."""
        return as_numbers(self.column(name), name)

    def flags(self, name: str) -> pd.Series:
        """Column ``name`` as nullable booleans; a value that is not true / false is refused."""
        return as_flags(self.column(name), name)

    def dates(self, name: str) -> pd.Series:
        """Column ``name`` as datetimes; a value that is not a date is refused."""
        return as_dates(self.column(name), name)

    def levels(
        self, key: str, name: str, *, min_count: int = 1, text: pd.Series | None = None
    ) -> LevelMap:
        """The level map ``key`` of column ``name`` (``text``: its labels, if not the column's)."""
        if self.fitting:
            labels = as_text(self.column(name)) if text is None else text
            self.enc.levels[key] = level_map(name, labels.value_counts(), min_count=min_count)
        return self.enc.levels[key]

    def scaler(self, key: str, x: np.ndarray, *, log: bool = False, scale: bool = True) -> Scaler:
        if self.fitting:
            self.enc.scalers[key] = Scaler.fit(x, log=log, scale=scale)
        return self.enc.scalers[key]

    def outcome_rate(self) -> float:
        """Skip rate of the fitted rows (0.5 if they carry no outcome)."""
        if self.outcome not in self.frame.columns:
            return 0.5
        y = pd.to_numeric(self.frame[self.outcome], errors="coerce").to_numpy(dtype=float)
        y = y[np.isfinite(y)]
        return float(y.mean()) if y.size else 0.5

    def settings(
        self, key: str, compute: Callable[[], Any], *, legacy: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The setting ``key``: computed when fitting, else read from the encoders (``legacy``
        for runs fitted before the setting existed)."""
        if self.fitting:
            self.enc.settings[key] = compute()
        elif legacy is not None and key not in self.enc.settings:
            self.enc.settings[key] = legacy
        return self.enc.settings[key]


# ---------------------------------------------------------------------------------------------
# A term's share of the logit (symbolic in the model, by name in NumPy)


class Gather(NamedTuple):
    """``table[codes]``: an effect over ``n_levels`` levels, each row's level code."""

    table: Any
    codes: Any  # int array (n,) or a symbolic int vector (minibatch)
    n_levels: int


class Slopes(NamedTuple):
    """``values @ coef``: per-row values (n, p) times coefficients (p,)."""

    coef: Any
    values: Any


class LevelSlopes(NamedTuple):
    """``sum_j values[:, j] * table[j, codes]``: slopes that vary by level, (p, n_levels)."""

    table: Any
    codes: Any
    n_levels: int
    values: Any


@dataclass
class Contribution:
    """A term's share of the linear predictor, in pieces the assembler can fuse.

    In the model (``build``) tables and coefficients are PyTensor variables; in a
    :meth:`TermKind.layout` they are the names of the posterior variables holding them.
    """

    gathers: list[Gather] = field(default_factory=list)
    slopes: list[Slopes] = field(default_factory=list)
    other: list[Any] = field(default_factory=list)
    level_slopes: list[LevelSlopes] = field(default_factory=list)

    def gather(self, table: Any, codes: Any, n_levels: int) -> Contribution:
        self.gathers.append(Gather(table, codes, int(n_levels)))
        return self

    def slope(self, coef: Any, values: Any) -> Contribution:
        self.slopes.append(Slopes(coef, values))
        return self

    def add(self, per_row: Any) -> Contribution:
        self.other.append(per_row)
        return self

    def level_slope(self, table: Any, codes: Any, n_levels: int, values: Any) -> Contribution:
        self.level_slopes.append(LevelSlopes(table, codes, int(n_levels), values))
        return self


@dataclass
class GradientSums:
    """Gradient and diagonal curvature of a Bernoulli-logit log-likelihood, per parameter.

    ``gradient[v]``: ``d logL / d v`` for each entry of the effect table or coefficient vector
    ``v``; ``curvature[v]``: ``-d2 logL / d v2`` (the observed information's diagonal). Sums over
    rows, so the sums of two buckets of rows add: ``a + b``.
    """

    gradient: dict[str, np.ndarray] = field(default_factory=dict)
    curvature: dict[str, np.ndarray] = field(default_factory=dict)
    n_rows: int = 0

    def __add__(self, other: GradientSums) -> GradientSums:
        out = GradientSums({}, {}, self.n_rows + other.n_rows)
        for mine, theirs, into in (
            (self.gradient, other.gradient, out.gradient),
            (self.curvature, other.curvature, out.curvature),
        ):
            for name in {**mine, **theirs}:
                if name in mine and name in theirs:
                    into[name] = mine[name] + theirs[name]
                else:
                    into[name] = (mine if name in mine else theirs)[name].copy()
        return out

    def add_piece(self, name: str, gradient: np.ndarray, curvature: np.ndarray) -> None:
        """Add one piece's sums (a variable may be read by several pieces)."""
        if name in self.gradient:
            self.gradient[name] = self.gradient[name] + gradient
            self.curvature[name] = self.curvature[name] + curvature
        else:
            self.gradient[name], self.curvature[name] = gradient, curvature


def layout_gradient(
    layout: Contribution, residual: np.ndarray, weight: np.ndarray, n_rows: int
) -> GradientSums:
    """Gradient / curvature sums of ``layout``'s parameters (see :meth:`TermKind.gradient`).

    With ``eta_i = ... + table[code_i] + values_i @ coef``, ``d logL / d table[l]`` is the sum of
    the residuals ``y - p`` of the rows at level ``l`` and ``-d2 logL / d table[l]2`` the sum of
    their weights ``p (1 - p)``; a slope's are ``sum x r`` and ``sum x^2 w``.
    """
    out = GradientSums(n_rows=n_rows)
    for g in layout.gathers:
        ok = g.codes >= 0  # a level unseen in fitting has no parameter
        grad = np.bincount(g.codes[ok], weights=residual[ok], minlength=g.n_levels)
        out.add_piece(
            g.table, grad, np.bincount(g.codes[ok], weights=weight[ok], minlength=g.n_levels)
        )
    for s in layout.slopes:
        x = np.asarray(s.values, dtype=np.float64)
        out.add_piece(s.coef, x.T @ residual, (x**2).T @ weight)
    for ls in layout.level_slopes:
        x = np.asarray(ls.values, dtype=np.float64)
        ok = ls.codes >= 0
        grad = np.stack(
            [
                np.bincount(ls.codes[ok], x[ok, j] * residual[ok], ls.n_levels)
                for j in range(x.shape[1])
            ]
        )
        curv = np.stack(
            [
                np.bincount(ls.codes[ok], x[ok, j] ** 2 * weight[ok], ls.n_levels)
                for j in range(x.shape[1])
            ]
        )
        out.add_piece(ls.table, grad, curv)
    return out


def evaluate_layout(layout: Contribution, params: dict[str, np.ndarray]) -> np.ndarray:
    """A layout's share of the logit per row at parameter values ``params`` (by name); a level
    unseen in fitting contributes 0 (the average)."""
    n_rows = _layout_rows(layout)
    out = np.zeros(n_rows)
    for g in layout.gathers:
        out += np.where(g.codes >= 0, params[g.table][np.maximum(g.codes, 0)], 0.0)
    for s in layout.slopes:
        out += np.asarray(s.values, dtype=np.float64) @ params[s.coef]
    for ls in layout.level_slopes:
        table = params[ls.table][:, np.maximum(ls.codes, 0)].T  # (n, p)
        out += np.where(ls.codes >= 0, (np.asarray(ls.values) * table).sum(axis=1), 0.0)
    return out


def _layout_rows(layout: Contribution) -> int:
    for g in layout.gathers:
        return len(g.codes)
    for ls in layout.level_slopes:
        return len(ls.codes)
    for s in layout.slopes:
        return len(s.values)
    return 0


# ---------------------------------------------------------------------------------------------
# What the kinds tell the other stages


class GroupState(Protocol):
    """Per-group (session) prediction state of a term, updated by earlier plays' outcomes.

    Sequential prediction (:func:`skipmodel.model.prediction.predict_sequential`) walks the
    predicted rows in session order: it adds ``logit(row)`` to the row's known part, simulates
    the outcome, and passes it to ``observe``.
    """

    def reveal(self, rows: np.ndarray, eta: np.ndarray, outcome: np.ndarray) -> None:
        """Learn from the revealed plays ``rows`` (a session's first half): their logit without
        the state's share, per draw (n_draws, len(rows)), and their observed outcomes (NaN:
        unknown). A state that reads its inputs from lag columns does nothing."""
        ...

    def logit(self, row: int, eta: np.ndarray) -> np.ndarray:
        """The term's outcome-dependent part of the logit of ``row``, per draw (n_draws,),
        given the rest of its logit ``eta`` (n_draws,)."""
        ...

    def observe(self, row: int, outcome: np.ndarray, later: Sequence[int | None]) -> None:
        """Record ``row``'s outcome per draw (simulated, or observed when every earlier outcome
        is revealed); ``later[k]`` is the predicted row k + 1 plays after it in its session
        (None when absent or revealed)."""
        ...


@dataclass(frozen=True)
class CellPlan:
    """Whether and how a term aggregates into covariate cells (:mod:`skipmodel.scale.aggregate`).

    ``columns``: the inputs that key the cells (each discrete, or continuous and then binned);
    ``log_columns``: continuous columns binned on the log scale; ``extra_levels``: a factor on
    the cell count for inputs outside ``columns`` (the previous outcomes' three states);
    ``what``: how a continuous input is described in a refusal; ``refusal``: why the kind never
    aggregates, whatever the binning (None: it does).
    """

    columns: tuple[str, ...]
    log_columns: tuple[str, ...] = ()
    extra_levels: int = 1
    what: str = "continuous input"
    refusal: str | None = None


class LevelSource(NamedTuple):
    """A level map of a term: encoder ``key``, the ``columns`` whose combined labels are its
    levels (:func:`skipmodel.model.encoders.joint_text` for several), and its ``min_count``."""

    key: str
    columns: tuple[str, ...]
    min_count: int = 1
    #: Recompute the parametrisation from exact counts (pooled kinds with ``auto``).
    pooled: bool = False

    def labels(self, frame: pd.DataFrame) -> pd.Series:
        """The level label of each row of ``frame`` (the label rule)."""
        if len(self.columns) == 1:
            return as_text(frame[self.columns[0]])
        return joint_text(frame, self.columns)


Draw = Literal["categorical", "curve", "cyclic", "levels"]


@dataclass(frozen=True)
class EffectPlot:
    """How the report draws one posterior variable: the effect over ``dim`` as a ``categorical``
    forest, a ``curve``, a ``cyclic`` curve (closed), or ``levels`` (too many: extremes only).
    Recorded per variable in the encoders at fit time (``Encoders.effects``)."""

    variable: str
    dim: str
    draw: Draw
    term: str  # the term kind


class TermKind(abc.ABC):
    """One term kind. Subclasses implement the four abstract methods; the rest have defaults."""

    #: The spec dataclass of the kind (its ``kind`` is the registry key).
    spec: ClassVar[type[TermSpec]]
    #: Why the kind cannot be fitted by streaming minibatches (None: it can).
    minibatch_refusal: ClassVar[str | None] = None

    @abc.abstractmethod
    def design(self, ctx: DesignContext, term: Any, name: str) -> TermDesign:
        """Rows -> the term's arrays (learning encoders when ``ctx.fitting``)."""

    @abc.abstractmethod
    def build(self, td: TermDesign, priors: Priors) -> Contribution:
        """The term's PyMC variables and its share of the logit (inside a model context)."""

    @abc.abstractmethod
    def evaluate(self, td: TermDesign, draws: Draws, rng: np.random.Generator) -> np.ndarray:
        """The same share from posterior draws, (n_draws, n_rows), unseen levels included."""

    @abc.abstractmethod
    def layout(self, td: TermDesign) -> Contribution:
        """The term's share as effect tables and slopes named by their posterior variables
        (``*_effect`` tables over levels, ``*_beta`` coefficients), over ``td``'s rows."""

    def gradient(self, td: TermDesign, residual: np.ndarray, weight: np.ndarray) -> GradientSums:
        """Gradient and curvature sums of a Bernoulli-logit log-likelihood with respect to the
        term's effect tables and coefficients (:meth:`layout`), given per-row ``residual =
        y - p`` and ``weight = p (1 - p)``; sums over buckets of rows add (full-data inference)."""
        return layout_gradient(self.layout(td), residual, weight, len(residual))

    def latent(self, td: TermDesign, priors: Priors) -> LatentTerm:
        """The term's hyperparameters, Gaussian coefficient blocks and the tables they make
        (:mod:`skipmodel.model.latent`); default: refused, naming the kind."""
        raise refuse(td.term.kind, f"a {td.term.kind} term")

    def known_part(self, td: TermDesign, draws: Draws, rng: np.random.Generator) -> np.ndarray:
        """The share known before a group's earlier outcomes (default: all of it)."""
        return self.evaluate(td, draws, rng)

    def group_state(self, td: TermDesign, draws: Draws) -> GroupState | None:
        """Per-group state updated by earlier plays' outcomes (default: stateless, None); the
        share :meth:`known_part` leaves out is then ``GroupState.logit``."""
        return None

    def given_earlier(self, td: TermDesign, eta: np.ndarray, draws: Draws) -> np.ndarray | None:
        """The term's share of each row's logit given the rest of it (``eta``, (n_draws,
        n_rows)) and the observed outcomes of the same group's earlier rows among them, for a
        share that is not a sum of per-row effects (a session's propensity learnt play by play);
        default None: :meth:`evaluate` is the share. The rows hold whole groups."""
        return None

    def group_codes(self, td: TermDesign) -> np.ndarray | None:
        """Each row's group, for a kind whose :meth:`given_earlier` reads a group's earlier
        rows: rows of one group are then predicted together (default None: any rows)."""
        return None

    def cells(self, term: Any) -> CellPlan:
        """How the term aggregates into covariate cells (default: keyed by its predictors)."""
        return CellPlan(tuple(term.predictors()))

    def level_sources(self, term: Any) -> tuple[LevelSource, ...]:
        """The term's categorical level maps (default: none)."""
        return ()

    def effects(self, td: TermDesign) -> tuple[EffectPlot, ...]:
        """How the report draws the term's effects (default: nothing drawn)."""
        return ()


__all__ = [
    "CellPlan",
    "Contribution",
    "DesignContext",
    "Draws",
    "EffectPlot",
    "Gather",
    "GradientSums",
    "GroupState",
    "LevelSlopes",
    "LevelSource",
    "Slopes",
    "TermDesign",
    "TermKind",
    "evaluate_layout",
    "layout_gradient",
    "refuse_outcome",
]
