"""What a skip model says, as plain data: outcome, terms, priors and inference options.

A :class:`ModelSpec` knows nothing of PyMC. Every field has a TOML spelling, and a TOML file
under ``models/`` and the equivalent Python object are the same spec (``==``), so they build the
same model. The TOML layout is::

    name = "markov"
    outcome = "skip_2"                    # skip_1 | skip_2 | skip_3 | not_skipped

    [[terms]]                             # one table per term, in the order they add up
    kind = "seasonal"                     # seasonal | markov | smooth | pooled | fixed
    hour = "cyclic_rw"

    [priors]                              # optional; overrides of Priors' defaults
    group_sigma = 0.5

    [inference]                           # optional; defaults of Inference
    draws = 1000

Unknown keys, unknown columns and invalid values raise :class:`SkipmodelError` naming the bad
item and the valid choices. Named variants live in :data:`VARIANTS` (``get_variant("full")``).
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

from skipmodel.errors import SkipmodelError
from skipmodel.store.schema import LAG_PREFIXES, LOG_COLUMNS, SKIP_OUTCOMES, TRACK_COLUMNS

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
SAMPLERS: tuple[str, ...] = ("nutpie", "pymc")
METHODS: tuple[str, ...] = ("nuts", "advi", "pathfinder")
ADAPTATIONS: tuple[str, ...] = ("diag", "low_rank")


def _choices(valid: tuple[str, ...] | list[str]) -> str:
    return ", ".join(repr(v) for v in valid)


def _check_column(column: str, where: str) -> None:
    if column not in KNOWN_COLUMNS:
        close = difflib.get_close_matches(column, KNOWN_COLUMNS, n=3)
        hint = f" (did you mean {_choices(close)}?)" if close else ""
        raise SkipmodelError(
            f"{where}: unknown column {column!r}{hint}; valid columns: {_choices(KNOWN_COLUMNS)}"
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
# Terms: plain data. Their design lives in design.py, their PyMC piece in terms.py.


@dataclass(frozen=True)
class Seasonal:
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
class Markov:
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


@dataclass(frozen=True)
class Smooth:
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

    @property
    def label(self) -> str:
        return self.column


@dataclass(frozen=True)
class Pooled:
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
class Fixed:
    """Plain effects of other pre-play columns.

    Booleans: one centred slope each. Numbers: one slope on the standardised column (``log``
    lists columns to log-transform first). Strings, and columns listed in ``categorical``: a
    zero-sum effect per level; a level unseen in the fitted data gets the average (0).
    """

    kind: ClassVar[str] = "fixed"
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


Term = Seasonal | Markov | Smooth | Pooled | Fixed
TERM_KINDS: dict[str, type] = {t.kind: t for t in (Seasonal, Markov, Smooth, Pooled, Fixed)}


@dataclass(frozen=True)
class Priors:
    """Weakly informative priors, on the logit scale with standardised inputs.

    intercept ~ Normal(0, intercept_sigma); slopes and fixed categorical levels ~
    Normal(0, effect_sigma) (a one-sd change moving the log-odds by 1 is already large), as
    are weekday levels; spreads of pooled effects ~ HalfNormal(group_sigma); amplitudes of the random-walk
    and GP smooths ~ HalfNormal(smooth_sigma); GP lengthscales (standardised units) ~ LogNormal
    with 95 % of its mass in [lengthscale_lower, lengthscale_upper].
    """

    intercept_sigma: float = 1.5
    effect_sigma: float = 0.5
    group_sigma: float = 0.5
    smooth_sigma: float = 0.3
    lengthscale_lower: float = 0.5
    lengthscale_upper: float = 4.0

    def validate(self, where: str) -> None:
        for f in fields(self):
            _check_positive(getattr(self, f.name), f"{where}.{f.name}")
        if self.lengthscale_lower >= self.lengthscale_upper:
            raise SkipmodelError(f"{where}: lengthscale_lower must be below lengthscale_upper")


@dataclass(frozen=True)
class Inference:
    """Default sampling options (the fit function and CLI flags override them).

    ``adaptation``: nutpie's mass-matrix adaptation — ``diag`` (a diagonal mass matrix, the usual
    NUTS choice) or ``low_rank`` (diagonal plus a low-rank correction learnt from draws and
    gradients, for posteriors with a few strongly correlated directions; nutpie only).
    """

    sampler: Literal["nutpie", "pymc"] = "nutpie"
    method: Literal["nuts", "advi", "pathfinder"] = "nuts"
    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    target_accept: float = 0.8
    adaptation: Literal["diag", "low_rank"] = "diag"

    def validate(self, where: str) -> None:
        _check_choice(self.sampler, SAMPLERS, f"{where}.sampler")
        _check_choice(self.method, METHODS, f"{where}.method")
        _check_choice(self.adaptation, ADAPTATIONS, f"{where}.adaptation")
        if self.adaptation != "diag" and self.sampler != "nutpie":
            raise SkipmodelError(
                f"{where}.adaptation: {self.adaptation!r} needs sampler 'nutpie' "
                f"(PyMC's sampler adapts a diagonal mass matrix only); valid choices: 'diag'"
            )
        for key in ("draws", "tune", "chains"):
            _check_positive(getattr(self, key), f"{where}.{key}", integer=True)
        if not 0.5 <= self.target_accept < 1:
            raise SkipmodelError(
                f"{where}.target_accept: expected a number in [0.5, 1), got {self.target_accept!r}"
            )


@dataclass(frozen=True)
class ModelSpec:
    """A skip model: outcome + terms (summed on the logit scale) + priors + inference options.

    Examples
    --------
    >>> spec = ModelSpec(name="tiny", terms=(Pooled(column="track_id_clean", min_count=2),))
    >>> spec == ModelSpec.from_toml(spec.to_toml())
    True
    """

    name: str = "custom"
    description: str = ""
    outcome: str = "skip_2"
    terms: tuple[Term, ...] = ()
    priors: Priors = field(default_factory=Priors)
    inference: Inference = field(default_factory=Inference)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        _check_choice(self.outcome, SKIP_OUTCOMES, "outcome")
        labels: dict[str, int] = {}
        once: set[str] = set()
        for i, term in enumerate(self.terms):
            where = f"terms[{i}] ({term.kind})"
            if not isinstance(term, tuple(TERM_KINDS.values())):
                raise SkipmodelError(
                    f"{where}: not a term; valid kinds: {_choices(list(TERM_KINDS))}"
                )
            term.validate(where)
            if term.kind in ("seasonal", "markov", "fixed"):
                if term.kind in once:
                    raise SkipmodelError(f"{where}: only one {term.kind} term is allowed")
                once.add(term.kind)
            if isinstance(term, Smooth | Pooled):
                key = f"{term.kind}:{term.label}"
                if key in labels:
                    raise SkipmodelError(f"{where}: a {term.kind} term on {term.label!r} exists")
                labels[key] = i
        linear = [c for t in self.terms if isinstance(t, Fixed) for c in t.predictors()]
        linear += [t.column for t in self.terms if isinstance(t, Smooth)]
        for t in self.terms:
            if isinstance(t, Markov) and t.current:
                both = sorted(set(t.features) & set(linear))
                if both:
                    raise SkipmodelError(
                        f"markov term: {both} already enter as fixed or smooth effects; "
                        "set current = false in the markov term"
                    )
        self.priors.validate("priors")
        self.inference.validate("inference")

    # -- TOML ----------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "spec") -> ModelSpec:
        """Build and validate a spec from parsed TOML (``source`` names it in errors)."""
        top = {"name", "description", "outcome", "terms", "priors", "inference"}
        _reject_unknown(data, top, source)
        raw_terms = data.get("terms", [])
        if not isinstance(raw_terms, list):
            raise SkipmodelError(f"{source}: 'terms' must be an array of tables ([[terms]])")
        terms = tuple(_term_from_dict(t, f"{source}: terms[{i}]") for i, t in enumerate(raw_terms))
        priors = _dataclass_from_dict(Priors, data.get("priors", {}), f"{source}: [priors]")
        inference = _dataclass_from_dict(
            Inference, data.get("inference", {}), f"{source}: [inference]"
        )
        kwargs = {k: data[k] for k in ("name", "description", "outcome") if k in data}
        try:
            return cls(terms=terms, priors=priors, inference=inference, **kwargs)
        except SkipmodelError as exc:
            raise SkipmodelError(f"{source}: {exc}") from None

    @classmethod
    def from_toml(cls, text: str, *, source: str = "spec") -> ModelSpec:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SkipmodelError(f"{source}: not valid TOML ({exc})") from None
        return cls.from_dict(data, source=source)

    @classmethod
    def load(cls, path: str | Path) -> ModelSpec:
        """Read a TOML spec file."""
        path = Path(path)
        if not path.is_file():
            raise SkipmodelError(f"model file {path} not found")
        return cls.from_toml(path.read_text(), source=str(path))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "outcome": self.outcome,
            "terms": [{"kind": t.kind, **_fields_to_dict(t)} for t in self.terms],
            "priors": _fields_to_dict(self.priors),
            "inference": _fields_to_dict(self.inference),
        }
        return out

    def to_toml(self) -> str:
        """The spec as TOML text that :meth:`from_toml` reads back to an equal spec."""
        d = self.to_dict()
        lines = [f"{k} = {_toml_value(d[k])}" for k in ("name", "description", "outcome")]
        for term in d["terms"]:
            lines += ["", "[[terms]]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in term.items() if v is not None]
        for table in ("priors", "inference"):
            lines += ["", f"[{table}]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in d[table].items()]
        return "\n".join(lines) + "\n"

    def with_inference(self, **changes: Any) -> ModelSpec:
        """A copy with some inference options changed (unknown names raise)."""
        valid = {f.name for f in fields(Inference)}
        _reject_unknown(changes, valid, "inference options")
        return replace(self, inference=replace(self.inference, **changes))

    def predictor_columns(self) -> tuple[str, ...]:
        """Every data column the terms read as predictors (checked by the leakage rule)."""
        cols: list[str] = []
        for term in self.terms:
            cols.extend(c for c in term.predictors() if c not in cols)
        for term in self.terms:
            if isinstance(term, Markov):
                cols.append(f"prev_{self.outcome}")
                if term.lag2:
                    cols.append(f"prev2_{self.outcome}")
        return tuple(cols)


def _toml_name(f: Any) -> str:
    return f.metadata.get("toml", f.name)


def _fields_to_dict(obj: Any) -> dict[str, Any]:
    return {_toml_name(f): _plain(getattr(obj, f.name)) for f in fields(obj)}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def _reject_unknown(data: dict[str, Any], valid: set[str], where: str) -> None:
    unknown = sorted(set(data) - valid)
    if unknown:
        raise SkipmodelError(
            f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {_choices(unknown)}; "
            f"valid keys: {_choices(sorted(valid))}"
        )


def _dataclass_from_dict(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise SkipmodelError(f"{where}: expected a table")
    by_toml = {_toml_name(f): f for f in fields(cls)}
    _reject_unknown(data, set(by_toml), where)
    kwargs = {}
    for key, value in data.items():
        f = by_toml[key]
        kwargs[f.name] = tuple(value) if isinstance(value, list) else value
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise SkipmodelError(f"{where}.{key}: expected a list of column names")
    return cls(**kwargs)


def _term_from_dict(data: Any, where: str) -> Term:
    if not isinstance(data, dict):
        raise SkipmodelError(f"{where}: expected a table")
    kind = data.get("kind")
    if kind not in TERM_KINDS:
        raise SkipmodelError(
            f"{where}: invalid or missing kind {kind!r}; valid kinds: {_choices(list(TERM_KINDS))}"
        )
    body = {k: v for k, v in data.items() if k != "kind"}
    return _dataclass_from_dict(TERM_KINDS[kind], body, f"{where} ({kind})")


# ---------------------------------------------------------------------------------------------
# Named variants. models/<name>.toml spells each one; a test checks they are equal.

_TRACK = Pooled(column="track_id_clean", min_count=2)
_SEASONAL = Seasonal(weekday=True, hour="cyclic_rw", position=True)
_MARKOV = Markov(features=("danceability", "energy"), interactions=True, changes=True)
_SMOOTHS = (
    Smooth(column="duration", log=True),
    Smooth(column="us_popularity_estimate"),
)
_FIXED = Fixed(
    columns=(
        "hist_user_behavior_is_shuffle",
        "premium",
        "context_switch",
        "no_pause_before_play",
        "long_pause_before_play",
    )
)

VARIANTS: dict[str, ModelSpec] = {}


def register_variant(spec: ModelSpec) -> ModelSpec:
    """Make ``spec`` available by its name (``get_variant(spec.name)``)."""
    VARIANTS[spec.name] = spec
    return spec


def get_variant(name: str) -> ModelSpec:
    """The registered variant called ``name``; unknown names fail with the valid ones."""
    if name not in VARIANTS:
        raise SkipmodelError(f"unknown model {name!r}; valid models: {_choices(sorted(VARIANTS))}")
    return VARIANTS[name]


def resolve_model(name_or_path: str | Path) -> ModelSpec:
    """A TOML path (anything ending in .toml or an existing file) or a registered name."""
    text = str(name_or_path)
    if text.endswith(".toml") or Path(text).is_file():
        return ModelSpec.load(text)
    return get_variant(text)


register_variant(
    ModelSpec(
        name="baseline",
        description="intercept + partially pooled track effects",
        terms=(_TRACK,),
    )
)
register_variant(
    ModelSpec(
        name="seasonal",
        description="baseline + weekday, cyclic hour of day and session position",
        terms=(_TRACK, _SEASONAL),
    )
)
register_variant(
    ModelSpec(
        name="markov",
        description="seasonal + previous play's skip and previous-track features",
        terms=(_TRACK, _SEASONAL, _MARKOV),
    )
)
register_variant(
    ModelSpec(
        name="smooth",
        description="markov + HSGP smooths of log duration and popularity",
        terms=(_TRACK, _SEASONAL, _MARKOV, *_SMOOTHS),
    )
)
register_variant(
    ModelSpec(
        name="full",
        description="smooth + pooled context type + fixed context effects + lag-2 skip",
        terms=(
            _TRACK,
            Pooled(column="context_type"),
            _SEASONAL,
            replace(_MARKOV, lag2=True),
            *_SMOOTHS,
            _FIXED,
        ),
    )
)
