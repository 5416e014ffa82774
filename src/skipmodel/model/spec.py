"""What a skip model says, as plain data: outcome, terms, priors and inference options.

A :class:`ModelSpec` knows nothing of PyMC. Every field has a TOML spelling, and a TOML file
under ``models/`` and the equivalent Python object are the same spec (``==``), so they build the
same model. The TOML layout is::

    name = "markov"
    outcome = "skip_2"                    # skip_1 | skip_2 | skip_3 | not_skipped

    [[terms]]                             # one table per term, in the order they add up
    kind = "seasonal"                     # seasonal | markov | smooth | pooled | fixed | interaction
    hour = "cyclic_rw"

    [priors]                              # optional; overrides of Priors' defaults
    group_sigma = 0.5

    [inference]                           # optional; defaults of Inference
    draws = 1000

Unknown keys, unknown columns and invalid values raise :class:`SkipmodelError` naming the bad
item and the valid choices. Named variants live in :data:`VARIANTS` (``get_variant("full")``).
The terms' dataclasses live in :mod:`skipmodel.model.term_specs` (re-exported here).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from skipmodel.errors import SkipmodelError
from skipmodel.model.term_specs import (
    HOUR_KINDS,
    KNOWN_COLUMNS,
    LENGTHSCALES,
    PARAMETRIZATIONS,
    TERM_KINDS,
    TRACK_FEATURE_COLUMNS,
    Fixed,
    HourKind,
    Interaction,
    Markov,
    Parametrization,
    Pooled,
    Seasonal,
    Session,
    Smooth,
    Term,
    TermSpec,
    UserColumn,
    _check_choice,
    _check_positive,
    _choices,
    _shown,
    check_field_types,
    declared_columns,
    tuples_for_lists,
)
from skipmodel.store.schema import SKIP_OUTCOMES

SAMPLERS: tuple[str, ...] = ("nutpie", "pymc")
METHODS: tuple[str, ...] = ("nuts", "advi", "pathfinder", "laplace")
#: The ``[inference]`` options each method reads (a run's spec records only these).
METHOD_OPTIONS: dict[str, frozenset[str]] = {
    "nuts": frozenset({"sampler", "draws", "tune", "chains", "target_accept", "adaptation"}),
    "advi": frozenset({"draws", "chains"}),
    "pathfinder": frozenset({"draws", "chains"}),
    "laplace": frozenset({"draws"}),
}
ADAPTATIONS: tuple[str, ...] = ("diag", "low_rank")


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
    method: Literal["nuts", "advi", "pathfinder", "laplace"] = "nuts"
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
    #: The user's own columns the terms may read (:class:`UserColumn`).
    columns: tuple[UserColumn, ...] = ()

    def __post_init__(self) -> None:
        tuples_for_lists(self)  # terms=[...] as in a notebook: stored as a tuple, hashable
        self.validate()

    def validate(self) -> None:
        # Types before values, for every field: a string where a list belongs is not a list
        # (iterating "danceability" would find a column 'd').
        for key in ("name", "description", "outcome"):
            value = getattr(self, key)
            if not isinstance(value, str):
                raise SkipmodelError(f"{key}: expected a string, got {_shown(value)}")
        for i, term in enumerate(self.terms):
            if not isinstance(term, tuple(TERM_KINDS.values())):
                raise SkipmodelError(
                    f"terms[{i}]: not a term; valid kinds: {_choices(list(TERM_KINDS))}"
                )
            check_field_types(term, f"terms[{i}] ({term.kind})")
        for where, part, kind in (
            ("priors", self.priors, Priors),
            ("inference", self.inference, Inference),
        ):
            if not isinstance(part, kind):
                raise SkipmodelError(f"{where}: expected a {kind.__name__}, got {part!r}")
            check_field_types(part, where)
        _check_choice(self.outcome, SKIP_OUTCOMES, "outcome")
        declared: set[str] = set()
        for i, column in enumerate(self.columns):
            if not isinstance(column, UserColumn):
                raise SkipmodelError(f"columns[{i}]: expected a UserColumn, got {column!r}")
            check_field_types(column, f"columns[{i}]")
            column.validate(f"columns[{i}]")
            if column.name in declared:
                raise SkipmodelError(f"columns[{i}]: {column.name!r} is declared twice")
            declared.add(column.name)
        with declared_columns(self.columns):
            self._validate_terms()
        self.priors.validate("priors")
        self.inference.validate("inference")

    def _validate_terms(self) -> None:
        names: set[str] = set()
        for i, term in enumerate(self.terms):
            where = f"terms[{i}] ({term.kind})"
            term.validate(where)
            if term.name in names:
                if term.unique:
                    raise SkipmodelError(f"{where}: only one {term.kind} term is allowed")
                raise SkipmodelError(f"{where}: a {term.kind} term on {term.label!r} exists")
            names.add(term.name)
        linear = [c for t in self.terms for c in t.linear_columns()]
        for t in self.terms:
            t.check_with(linear)

    # -- TOML ----------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "spec") -> ModelSpec:
        """Build and validate a spec from parsed TOML (``source`` names it in errors)."""
        top = {"name", "description", "outcome", "terms", "priors", "inference", "columns"}
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
        raw_columns = data.get("columns", [])
        if not isinstance(raw_columns, list):
            raise SkipmodelError(f"{source}: 'columns' must be an array of tables ([[columns]])")
        columns = tuple(
            _dataclass_from_dict(UserColumn, c, f"{source}: columns[{i}]")
            for i, c in enumerate(raw_columns)
        )
        try:
            return cls(terms=terms, priors=priors, inference=inference, columns=columns, **kwargs)
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
        if self.columns:
            out["columns"] = [_fields_to_dict(c) for c in self.columns]
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
            lines += [f"{k} = {_toml_value(v)}" for k, v in self._shown(table, d[table]).items()]
        for column in d.get("columns", []):
            lines += ["", "[[columns]]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in column.items()]
        return "\n".join(lines) + "\n"

    def _shown(self, table: str, values: dict[str, Any]) -> dict[str, Any]:
        """A table's entries as TOML shows them: ``[inference]`` leaves out, at their defaults,
        the options its method does not read (a Laplace run's spec shows no chains)."""
        if table != "inference":
            return values
        used = METHOD_OPTIONS.get(self.inference.method, frozenset(values))
        default = _fields_to_dict(Inference())
        return {k: v for k, v in values.items() if k == "method" or k in used or v != default[k]}

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
            cols.extend(term.lagged_outcomes(self.outcome))
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
    # TOML arrays become tuples; the types are checked when the spec is validated
    kwargs = {by_toml[k].name: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
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
register_variant(
    replace(
        VARIANTS["full"],
        name="session",
        description=(
            "full + a pooled propensity per session, learnt from its earlier plays at prediction"
        ),
        terms=(*VARIANTS["full"].terms, Session()),
    )
)


__all__ = [
    "HOUR_KINDS",
    "KNOWN_COLUMNS",
    "LENGTHSCALES",
    "PARAMETRIZATIONS",
    "TERM_KINDS",
    "TRACK_FEATURE_COLUMNS",
    "VARIANTS",
    "Fixed",
    "HourKind",
    "Inference",
    "Interaction",
    "Markov",
    "ModelSpec",
    "Parametrization",
    "Pooled",
    "Priors",
    "Seasonal",
    "Session",
    "Smooth",
    "Term",
    "TermSpec",
    "UserColumn",
    "get_variant",
    "register_variant",
    "resolve_model",
]
