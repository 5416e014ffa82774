"""From a spec and a table of plays to model-ready arrays: the only place data become NumPy.

A :class:`Design` holds, per term, compact integer codes (int32, one per play, ``-1`` for a
level unseen when the encoders were fitted), float arrays of standardised inputs, and small
design-time tables (random-walk bases over the levels; HSGP bases on a fixed grid of
:data:`SMOOTH_GATHER_GRID` points over the fitted range, each row coded by its nearest point). No
one-hot matrices: effects are gathered by code.

Everything learnt from the fitted data — level maps (with rare levels pooled into
``__other__``), centring and scaling, HSGP boxes, the parametrisation chosen — lives in
:class:`Encoders`, which is JSON-serialisable and passed back in to encode new plays the same way
(``build_design(spec, new_rows, encoders=fitted.encoders)``).

Each term's arrays come from its kind (:mod:`skipmodel.model.terms`, one module per kind); the
shared pieces live in :mod:`skipmodel.model.encoders` (level and label rules, encoders) and
:mod:`skipmodel.model.bases` (bases and parametrisation choices), re-exported here.

Leakage rule (DESIGN.md): no column that is an outcome of the play being predicted
(:data:`skipmodel.store.schema.OUTCOME_COLUMNS`) is ever read as a predictor; lag columns are fine.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from skipmodel.errors import SkipmodelError
from skipmodel.load.loaders import as_pandas, output_schema
from skipmodel.model.bases import (
    HSGP_MAX_BASIS,
    INFORMATIVE_RATIO,
    MIXED_MIN_LEVELS,
    SMOOTH_GATHER_GRID,
    SMOOTH_GRID,
    expquad_sqrt_psd,
    fixed_lengthscale,
    fourier_basis,
    hsgp_basis,
    hsgp_box,
    hsgp_sqrt_eigenvalues,
    information_ratio,
    pooled_parametrization,
    random_walk_basis,
    smooth_modes,
    walk_parametrization,
)
from skipmodel.model.encoders import (
    MISSING,
    OTHER,
    UNSEEN,
    Encoders,
    LevelMap,
    Scaler,
    as_flags,
    as_text,
)
from skipmodel.model.spec import ModelSpec
from skipmodel.model.terms import KINDS, kind_of, term_name
from skipmodel.model.terms.base import DesignContext, TermDesign, refuse_outcome
from skipmodel.model.terms.markov import PREV_LEVELS, PREV_OBSERVED
from skipmodel.model.terms.seasonal import MIN_POSITIONS


@dataclass(frozen=True)
class Design:
    """Model-ready arrays for ``n_obs`` rows (plays, or aggregated cells with ``trials``)."""

    spec: ModelSpec
    n_obs: int
    outcome: np.ndarray | None
    terms: tuple[TermDesign, ...]
    encoders: Encoders
    trials: np.ndarray | None = None
    row_ids: pd.DataFrame | None = None

    @property
    def likelihood(self) -> str:
        """``bernoulli`` on rows, ``binomial`` on aggregated cells."""
        return "bernoulli" if self.trials is None else "binomial"

    @property
    def coords(self) -> dict[str, tuple[Any, ...]]:
        out: dict[str, tuple[Any, ...]] = {}
        for t in self.terms:
            out.update(t.coords)
        return out

    def term(self, name: str) -> TermDesign:
        for t in self.terms:
            if t.name == name:
                return t
        raise KeyError(name)


def check_leakage(spec: ModelSpec) -> None:
    """Refuse any outcome column of the play itself as a predictor (lags are fine)."""
    for column in spec.predictor_columns():
        refuse_outcome(column)


@cache
def _loader_integers() -> dict[str, str]:
    """Every integer column the loaders give, with its pandas nullable dtype (``Int16``...)."""
    schema = output_schema(lags=2)
    return {f.name: f"Int{f.type.bit_width}" for f in schema if pa.types.is_integer(f.type)}


def with_loader_integers(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``frame`` with its integer ``columns`` as :func:`~skipmodel.load.loaders.load_pandas`
    gives them, when they came as floats.

    Arrow's own conversion (``table.to_pandas()``) turns an integer column holding a null into
    ``float64``, whose levels would read ``"3.0"`` where a fit on the loaders' frame read
    ``"3"``: every play of a categorical ``key`` would be an unseen level. Floats that are not
    whole numbers are left alone (not the loaders' column).
    """
    integers = _loader_integers()
    changed = {}
    for name in columns:
        if name in integers and name in frame.columns:
            column = frame[name]
            if pd.api.types.is_float_dtype(column.dtype):
                with contextlib.suppress(TypeError, ValueError):
                    changed[name] = column.astype(integers[name])
    return frame.assign(**changed) if changed else frame


def with_user_types(frame: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """``frame`` with the spec's declared user columns in their declared types (numbers as
    float, booleans as pandas ``boolean``, strings as text), or a one-line error naming the
    column and a value that is not of its type."""
    changed = {}
    for column in spec.columns:
        if column.name not in frame.columns:
            continue
        values = frame[column.name]
        if column.type == "number":
            converted = pd.to_numeric(values, errors="coerce")
        elif column.type == "boolean":
            converted = as_flags(values, column.name)
        else:
            converted = values.astype("string")
        bad = converted.isna() & values.notna()
        if bad.any():
            raise SkipmodelError(
                f"user column {column.name!r} is declared {column.type} but holds "
                f"{values[bad].iloc[0]!r}"
            )
        changed[column.name] = converted
    return frame.assign(**changed) if changed else frame


def build_design(
    spec: ModelSpec,
    data: pd.DataFrame | pa.Table,
    *,
    encoders: Encoders | None = None,
    require_outcome: bool = True,
) -> Design:
    """Turn plays into a :class:`Design`.

    Parameters
    ----------
    spec : ModelSpec
    data : pandas.DataFrame or pyarrow.Table
        Rows as the loaders return them (session columns, ``weekday``, track features, lags).
    encoders : Encoders, optional
        Those of a fitted design, to encode new rows identically; fitted from ``data`` if None
        (recording, per posterior variable, its term kind and how the report draws it).
    require_outcome : bool
        Fail when the outcome column is absent (fitting); prediction passes False.
    """
    check_leakage(spec)
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    frame = as_pandas(data) if isinstance(data, pa.Table) else data
    frame = with_loader_integers(frame, spec.predictor_columns())
    needed = set(spec.predictor_columns())
    if require_outcome:
        needed.add(spec.outcome)
    missing = sorted(needed - set(frame.columns))
    if missing:
        own = sorted({c.name for c in spec.columns} & set(missing))
        hint = (
            f" ({', '.join(own)}: declared user columns come with the data frame passed to "
            "fit / predict, or from a store ingested with --column NAME:TYPE)"
            if own
            else ""
        )
        raise SkipmodelError(
            f"data lack column(s) {missing} needed by model {spec.name!r}{hint}; "
            f"available: {sorted(frame.columns)}"
        )
    if len(frame) == 0:
        raise SkipmodelError("no rows to build a design from (empty sample or split)")
    frame = with_user_types(frame, spec)
    fitting = encoders is None
    enc = Encoders() if encoders is None else encoders
    ctx = DesignContext(frame, enc, fitting, spec)
    terms = tuple(kind_of(t).design(ctx, t, t.name) for t in spec.terms)
    if fitting:
        for td in terms:
            for plot in kind_of(td.term).effects(td):
                enc.effects[plot.variable] = asdict(plot)
    outcome = None
    if spec.outcome in frame.columns:
        col = frame[spec.outcome]
        if not col.isna().any():
            outcome = col.to_numpy().astype(np.int8)
        elif require_outcome:
            raise SkipmodelError(f"outcome {spec.outcome!r} has missing values")
        # predicting, some outcomes unknown (a challenge's second halves): none is read
    ids = [c for c in ("session_id", "session_position") if c in frame.columns]
    return Design(
        spec=spec,
        n_obs=len(frame),
        outcome=outcome,
        terms=terms,
        encoders=enc,
        row_ids=frame[ids].reset_index(drop=True) if ids else None,
    )


__all__ = [
    "HSGP_MAX_BASIS",
    "INFORMATIVE_RATIO",
    "KINDS",
    "MIN_POSITIONS",
    "MISSING",
    "MIXED_MIN_LEVELS",
    "OTHER",
    "PREV_LEVELS",
    "PREV_OBSERVED",
    "SMOOTH_GATHER_GRID",
    "SMOOTH_GRID",
    "UNSEEN",
    "Design",
    "Encoders",
    "LevelMap",
    "Scaler",
    "TermDesign",
    "as_text",
    "build_design",
    "check_leakage",
    "expquad_sqrt_psd",
    "fixed_lengthscale",
    "fourier_basis",
    "hsgp_basis",
    "hsgp_box",
    "hsgp_sqrt_eigenvalues",
    "information_ratio",
    "pooled_parametrization",
    "random_walk_basis",
    "smooth_modes",
    "term_name",
    "walk_parametrization",
    "with_loader_integers",
]
