"""The terms of a spec, as plain data: one frozen dataclass per term kind, and their checks.

Each dataclass holds a kind's settings (the TOML keys of its ``[[terms]]`` table) and validates
them; :class:`TermSpec` gives every kind the few facts the spec needs about it (its stable name,
whether it may appear once only, the columns it reads). What a kind *does* with the data lives in
its own module, :mod:`skipmodel.model.terms.<kind>`. Adding a kind: its dataclass here and a line
in :data:`TERM_KINDS`, its module and a line in :data:`skipmodel.model.terms.KINDS`.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import types
import typing
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal

from skipmodel.errors import SkipmodelError
from skipmodel.store.schema import LAG_PREFIXES, LOG_COLUMNS, SKIP_OUTCOMES, TRACK_COLUMNS
from skipmodel.store.user_columns import USER_TYPES as STORED_TYPES

#: Columns a spec may name: session-log columns, joined track features, the loaders' derived
#: ``weekday`` and their lag columns. Outcome columns are listed (they are real columns) but the
#: design builder refuses them as predictors (the leakage rule).
TRACK_FEATURE_COLUMNS: tuple[str, ...] = tuple(c for c in TRACK_COLUMNS if c != "track_id")
_LAGGED = (*SKIP_OUTCOMES, "hist_user_behavior_reason_end", "track_id_clean")
KNOWN_COLUMNS: tuple[str, ...] = (
    *LOG_COLUMNS,
    *TRACK_FEATURE_COLUMNS,
    "weekday",
    *(f"{LAG_PREFIXES[0]}{c}" for c in (*_LAGGED, *TRACK_FEATURE_COLUMNS)),
    *(f"{LAG_PREFIXES[1]}{c}" for c in SKIP_OUTCOMES),
)

HourKind = Literal["cyclic_rw", "periodic_gp", "none"]
Parametrization = Literal["auto", "centered", "noncentered"]
HOUR_KINDS: tuple[str, ...] = ("cyclic_rw", "periodic_gp", "none")
PARAMETRIZATIONS: tuple[str, ...] = ("auto", "centered", "noncentered")


def _choices(valid: tuple[str, ...] | list[str]) -> str:
    return ", ".join(repr(v) for v in valid)


#: The user columns a spec declares, name -> role, while the spec validates its terms.
_DECLARED: ContextVar[tuple[tuple[str, str], ...]] = ContextVar(
    "skipmodel_declared_columns", default=()
)


@contextlib.contextmanager
def declared_columns(columns: Sequence[UserColumn]) -> Iterator[None]:
    """Within the block, terms may name the declared user ``columns`` (predictor role)."""
    token = _DECLARED.set(tuple((c.name, c.role) for c in columns))
    try:
        yield
    finally:
        _DECLARED.reset(token)


def _check_column(column: str, where: str) -> None:
    if column in KNOWN_COLUMNS:
        return
    role = dict(_DECLARED.get()).get(column)
    if role == "predictor":
        return
    if role == "outcome":
        raise SkipmodelError(
            f"{where}: column {column!r} is declared an outcome-side column and cannot be a "
            "predictor (leakage rule)"
        )
    close = difflib.get_close_matches(column, KNOWN_COLUMNS, n=3)
    hint = f" (did you mean {_choices(close)}?)" if close else ""
    raise SkipmodelError(
        f"{where}: unknown column {column!r}{hint}; valid columns: MSSD's "
        f"({_choices(KNOWN_COLUMNS)}) and the user columns the spec declares "
        f"([[columns]] name = {column!r}, or UserColumn({column!r}) in Python)"
    )


#: The non-numeric spellings of :attr:`Smooth.lengthscale`.
LENGTHSCALES: tuple[str, ...] = ("auto", "free")


def _check_choice(value: object, valid: tuple[str, ...], where: str) -> None:
    if value not in valid:
        raise SkipmodelError(f"{where}: invalid value {value!r}; valid choices: {_choices(valid)}")


def _check_positive(value: object, where: str, *, integer: bool = False) -> None:
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
        what = "a positive integer" if integer else "a positive number"
        raise SkipmodelError(f"{where}: expected {what}, got {value!r}")


def _check_flag(value: object, where: str) -> None:
    if not isinstance(value, bool):
        raise SkipmodelError(f"{where}: expected true or false, got {value!r}")


# ---------------------------------------------------------------------------------------------
# Types before values: every field of a spec's dataclasses has the type its annotation says
# before its value is judged (a TOML ``columns = "danceability"`` is a string, not a list of
# one column; iterating it would find the column 'd').


def _shown(value: object) -> str:
    """``value`` as TOML spells it (``true``, ``["a"]``), for error messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)


def _fits(value: object, hint: Any) -> bool:
    """Whether ``value`` has the type ``hint`` (the annotations used by the spec's fields)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:  # TOML writes 2.0 as 2 as well
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is Literal:  # the type only: which value is the field's own check
        return any(type(value) is type(choice) for choice in args)
    if origin is tuple:
        return isinstance(value, tuple) and all(_fits(v, args[0]) for v in value)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    return True  # a type these checks do not know: left to the field's own check


def _expected(hint: Any) -> str:
    """``hint`` in words, as a TOML user writes it."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    words = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if hint in words:
        return words[hint]
    if origin is Literal:
        return f"one of {_choices([str(a) for a in args])}"
    if origin is tuple:
        return "an array of " + {str: "strings", int: "integers"}.get(args[0], "values")
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_expected(a) for a in args if a is not type(None))
    return str(hint)


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


def check_field_types(obj: Any, where: str) -> None:
    """Raise :class:`SkipmodelError` for the first field of the dataclass ``obj`` whose value
    does not have its annotated type, naming the field, the type expected and the value given.
    """
    for name, hint in _field_types(type(obj)).items():
        value = getattr(obj, name)
        if _fits(value, hint):
            continue
        expected = _expected(hint)
        hint_text = ""
        if typing.get_origin(hint) is tuple and isinstance(value, str):
            hint_text = f" (a list of one is written [{_shown(value)}])"
        raise SkipmodelError(f"{where}.{name}: expected {expected}, got {_shown(value)}{hint_text}")


def tuples_for_lists(obj: Any) -> None:
    """Store each list field of the frozen dataclass ``obj`` as a tuple.

    ``Fixed(columns=["premium"])`` is then equal to its TOML round trip (which reads arrays as
    tuples) and hashable; the types are still checked when the spec is validated.
    """
    for f in fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, list):
            object.__setattr__(obj, f.name, tuple(value))


#: The same words as a store's declared user columns (``skipmodel ingest --column NAME:TYPE``).
USER_TYPES: tuple[str, ...] = STORED_TYPES
USER_ROLES: tuple[str, ...] = ("predictor", "outcome")


@dataclass(frozen=True)
class UserColumn:
    """A column of the user's own, beside MSSD's, that terms may read: a user segment, a
    country, an experiment arm. ``type``: how the terms read it (``number``: slopes and smooths;
    ``boolean``: a centred slope; ``string``: levels). ``role``: ``outcome`` marks a column known
    only after the play (a user's own outcome-side measure), refused as a predictor like MSSD's
    outcomes. Data frames passed to ``fit`` / ``predict`` carry it, or a store whose first ingest
    kept it (``skipmodel ingest --column NAME:TYPE``, with the same type)."""

    name: str = ""
    type: str = "number"
    role: str = "predictor"

    def validate(self, where: str) -> None:
        if not self.name or not self.name.isidentifier():
            raise SkipmodelError(f"{where}.name: expected a column name, got {self.name!r}")
        if self.name in KNOWN_COLUMNS:
            raise SkipmodelError(
                f"{where}.name: {self.name!r} is one of MSSD's columns; declare only your own"
            )
        _check_choice(self.type, USER_TYPES, f"{where}.type")
        _check_choice(self.role, USER_ROLES, f"{where}.role")


class TermSpec:
    """What the spec needs to know of every term kind (defaults; kinds override)."""

    kind: ClassVar[str]
    #: At most one term of this kind in a spec.
    unique: ClassVar[bool] = False

    def __post_init__(self) -> None:
        tuples_for_lists(self)

    def validate(self, where: str) -> None:
        """Raise :class:`SkipmodelError` naming ``where`` for an invalid setting."""

    def predictors(self) -> tuple[str, ...]:
        """The data columns the term reads (checked by the leakage rule)."""
        return ()

    @property
    def label(self) -> str:
        """Prefix of the term's variables and dims (the kind itself for unique kinds)."""
        return self.kind

    @property
    def name(self) -> str:
        """The stable name of the term inside a spec (key of its encoders)."""
        return self.kind if self.unique else f"{self.kind}_{self.label}"

    def linear_columns(self) -> tuple[str, ...]:
        """Columns the term enters with their current value as a slope or smooth."""
        return ()

    def lagged_outcomes(self, outcome: str) -> tuple[str, ...]:
        """Lag columns of the outcome the term reads (``prev_skip_2``...)."""
        return ()

    def check_with(self, linear: Sequence[str]) -> None:
        """Refuse a combination with the other terms (``linear``: their linear columns)."""


# ---------------------------------------------------------------------------------------------
# The kinds


@dataclass(frozen=True)
class Seasonal(TermSpec):
    """Calendar and in-session position effects.

    ``weekday``: zero-sum categorical over Mon..Sun with a fixed prior scale
    (``Priors.effect_sigma``: seven levels cannot inform a scale of their own). ``hour``: a smooth over
    hour of day on a circle (23 h and 0 h are neighbours) — ``cyclic_rw`` (first-order random walk
    on the 24-hour cycle, sum-to-zero) or ``periodic_gp`` (periodic Hilbert-space GP with
    ``hour_harmonics`` cosine/sine pairs). ``position``: random-walk smooth over session position.
    ``day_of_month``: random-walk smooth over the day of the month (needs ``date``).
    ``parametrization`` of the random walks' modes: ``auto`` centres the modes the data inform
    and leaves the others non-centred; ``centered`` / ``noncentered`` force one form.
    """

    kind: ClassVar[str] = "seasonal"
    unique: ClassVar[bool] = True
    weekday: bool = True
    hour: HourKind = "cyclic_rw"
    hour_harmonics: int = 6
    position: bool = True
    day_of_month: bool = False
    parametrization: Parametrization = "auto"

    def validate(self, where: str) -> None:
        for flag in ("weekday", "position", "day_of_month"):
            _check_flag(getattr(self, flag), f"{where}.{flag}")
        _check_choice(self.hour, HOUR_KINDS, f"{where}.hour")
        _check_positive(self.hour_harmonics, f"{where}.hour_harmonics", integer=True)
        _check_choice(self.parametrization, PARAMETRIZATIONS, f"{where}.parametrization")

    def predictors(self) -> tuple[str, ...]:
        cols = []
        if self.weekday:
            cols.append("weekday")
        if self.hour != "none":
            cols.append("hour_of_day")
        if self.position:
            cols.append("session_position")
        if self.day_of_month:
            cols.append("date")
        return tuple(cols)


@dataclass(frozen=True)
class Markov(TermSpec):
    """Memory in chains: what happened on the previous play(s) of the session.

    The previous play's outcome (the spec's outcome, lagged) as a three-level zero-sum effect
    with its own ``no_previous`` level; with ``lag2`` the same for the play before that. When a
    seasonal term models session position, ``no_previous`` (position 1, or a gap) is fixed at 0
    and carried by the position effect, and false / true are a zero-sum pair: otherwise only
    the sum of the two would be identified. For each
    track feature in ``features``: the previous track's value, and optionally the current value
    (``current``), their product (``interactions``) and the absolute change (``changes``).
    """

    kind: ClassVar[str] = "markov"
    unique: ClassVar[bool] = True
    lag2: bool = False
    features: tuple[str, ...] = ()
    current: bool = True
    interactions: bool = True
    changes: bool = True

    def validate(self, where: str) -> None:
        for flag in ("lag2", "current", "interactions", "changes"):
            _check_flag(getattr(self, flag), f"{where}.{flag}")
        for col in self.features:
            if col not in TRACK_FEATURE_COLUMNS or col == "mode":
                valid = tuple(c for c in TRACK_FEATURE_COLUMNS if c != "mode")
                raise SkipmodelError(
                    f"{where}.features: {col!r} is not a numeric track feature; "
                    f"valid choices: {_choices(valid)}"
                )

    def predictors(self) -> tuple[str, ...]:
        return (*self.features, *(f"prev_{c}" for c in self.features))

    def lagged_outcomes(self, outcome: str) -> tuple[str, ...]:
        return (f"prev_{outcome}", f"prev2_{outcome}") if self.lag2 else (f"prev_{outcome}",)

    def check_with(self, linear: Sequence[str]) -> None:
        both = sorted(set(self.features) & set(linear)) if self.current else []
        if both:
            raise SkipmodelError(
                f"markov term: {both} already enter as fixed or smooth effects; "
                "set current = false in the markov term"
            )


@dataclass(frozen=True)
class Smooth(TermSpec):
    """Hilbert-space GP smooth (squared-exponential kernel) of one continuous column.

    ``m`` basis functions on a box of half-width ``c`` times the half-range of the standardised
    data; both default to the Ruitort-Mayol et al. heuristic (as in PyMC's HSGP helper) for the
    lengthscale(s) the smooth can take. ``log`` smooths ``log(x + 1e-10)`` instead of x.

    ``lengthscale`` (standardised units): ``"auto"`` (default) fixes it at the geometric mean of
    the prior range in :class:`Priors` (``sqrt(lengthscale_lower * lengthscale_upper)``), a
    number fixes it there, ``"free"`` gives it the LogNormal prior of :class:`Priors`. With a
    fixed lengthscale only the amplitude is learnt (as a penalised spline learns its smoothing
    parameter) and the basis is rotated so the data inform its modes independently, the
    informed ones centred: that mixes (see :mod:`skipmodel.model.terms`). A free lengthscale is
    the full GP, at the cost of a posterior NUTS crawls through on large data.
    """

    kind: ClassVar[str] = "smooth"
    column: str = ""
    log: bool = False
    m: int | None = None
    c: float | None = None
    lengthscale: float | str = "auto"

    def validate(self, where: str) -> None:
        _check_column(self.column, f"{where}.column")
        _check_flag(self.log, f"{where}.log")
        if isinstance(self.lengthscale, str):
            _check_choice(self.lengthscale, LENGTHSCALES, f"{where}.lengthscale")
        else:
            _check_positive(self.lengthscale, f"{where}.lengthscale")
        if self.m is not None:
            _check_positive(self.m, f"{where}.m", integer=True)
        if self.c is not None:
            _check_positive(self.c, f"{where}.c")
            if self.c < 1.1:
                raise SkipmodelError(f"{where}.c: must be >= 1.1 (box wider than the data)")

    def predictors(self) -> tuple[str, ...]:
        return (self.column,)

    def linear_columns(self) -> tuple[str, ...]:
        return (self.column,)

    @property
    def label(self) -> str:
        return self.column


@dataclass(frozen=True)
class Pooled(TermSpec):
    """Hierarchical (partially pooled) intercepts, optionally slopes, by a grouping column.

    Levels with fewer than ``min_count`` plays in the fitted data share one level ``__other__``.
    At prediction an unseen level's effect is drawn from the population, N(0, sigma), afresh for
    each posterior draw. ``slopes``: continuous columns whose (standardised) slope varies by level.
    ``parametrization``: ``auto`` centres the levels the data inform and leaves thin ones
    non-centred (a pool with both is "mixed"); ``centered`` / ``noncentered`` force one form.
    """

    kind: ClassVar[str] = "pooled"
    column: str = ""
    min_count: int = 1
    slopes: tuple[str, ...] = ()
    parametrization: Parametrization = "auto"

    def validate(self, where: str) -> None:
        _check_column(self.column, f"{where}.column")
        _check_positive(self.min_count, f"{where}.min_count", integer=True)
        for col in self.slopes:
            _check_column(col, f"{where}.slopes")
        _check_choice(self.parametrization, PARAMETRIZATIONS, f"{where}.parametrization")

    def predictors(self) -> tuple[str, ...]:
        return (self.column, *self.slopes)

    @property
    def label(self) -> str:
        return "track" if self.column == "track_id_clean" else self.column


@dataclass(frozen=True)
class Fixed(TermSpec):
    """Plain effects of other pre-play columns.

    Booleans: one centred slope each. Numbers: one slope on the standardised column (``log``
    lists columns to log-transform first). Strings, and columns listed in ``categorical``: a
    zero-sum effect per level; a level unseen in the fitted data gets the average (0).
    """

    kind: ClassVar[str] = "fixed"
    unique: ClassVar[bool] = True
    columns: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    log: tuple[str, ...] = ()

    def validate(self, where: str) -> None:
        for col in self.columns:
            _check_column(col, f"{where}.columns")
        for key in ("categorical", "log"):
            for col in getattr(self, key):
                if col not in self.columns:
                    raise SkipmodelError(
                        f"{where}.{key}: {col!r} is not in columns; valid choices: "
                        f"{_choices(self.columns)}"
                    )

    def predictors(self) -> tuple[str, ...]:
        return self.columns

    def linear_columns(self) -> tuple[str, ...]:
        return self.columns


@dataclass(frozen=True)
class Interaction(TermSpec):
    """A partially pooled effect per observed combination of two categorical columns.

    Like :class:`Pooled` on the pair: combinations with fewer than ``min_count`` plays share
    ``__other__``, the spread of the combinations is learnt, and an unseen combination's effect is
    drawn from N(0, sigma) at prediction. It adds to the columns' own effects (if the spec has
    them): what the pair does beyond them. Variables are named ``<a>_x_<b>_…``.
    """

    kind: ClassVar[str] = "interaction"
    columns: tuple[str, ...] = ()
    min_count: int = 1
    parametrization: Parametrization = "auto"

    def validate(self, where: str) -> None:
        if len(self.columns) != 2 or self.columns[0] == self.columns[1]:
            raise SkipmodelError(f"{where}.columns: expected two different columns")
        for col in self.columns:
            _check_column(col, f"{where}.columns")
        _check_positive(self.min_count, f"{where}.min_count", integer=True)
        _check_choice(self.parametrization, PARAMETRIZATIONS, f"{where}.parametrization")

    def predictors(self) -> tuple[str, ...]:
        return self.columns

    @property
    def label(self) -> str:
        return "_x_".join(self.columns)


@dataclass(frozen=True)
class Session(TermSpec):
    """A partially pooled intercept per listening session: the session's mood.

    Each session has its own logit-scale propensity, N(0, sigma^2) with ``session_sigma``
    learnt. Sessions never recur, so at prediction the propensity of a play's session is learnt
    from the session's earlier plays only (their observed outcomes, the leakage rule): per
    posterior draw, a one-dimensional Bayesian update play by play. The run keeps the fitted
    sessions' effects (``session_z``) for diagnostics; prediction reads only the scale.
    """

    kind: ClassVar[str] = "session"
    unique: ClassVar[bool] = True

    def predictors(self) -> tuple[str, ...]:
        return ("session_id", "session_position")


Term = Seasonal | Markov | Smooth | Pooled | Fixed | Interaction | Session
#: Term kinds by their TOML name.
TERM_KINDS: dict[str, type[TermSpec]] = {
    t.kind: t for t in (Seasonal, Markov, Smooth, Pooled, Fixed, Interaction, Session)
}

__all__ = [
    "HOUR_KINDS",
    "KNOWN_COLUMNS",
    "LENGTHSCALES",
    "PARAMETRIZATIONS",
    "TERM_KINDS",
    "TRACK_FEATURE_COLUMNS",
    "Fixed",
    "Interaction",
    "Markov",
    "Pooled",
    "Seasonal",
    "Session",
    "Smooth",
    "Term",
    "TermSpec",
    "tuples_for_lists",
]
