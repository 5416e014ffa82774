"""Exact aggregation: plays -> covariate cells ``(trials, skips)`` in one streaming pass.

When every term of a spec reads only discrete inputs — categorical columns, the previous-skip
state, small-integer columns, and continuous columns binned at a stated resolution — the
Bernoulli likelihood over plays equals a Binomial likelihood over the distinct covariate cells,
up to the constant ``sum log C(trials, skips)``. :func:`check_aggregable` says whether a spec is
in that class (and precisely why not); :func:`aggregate` computes the cells of a store sample
through :func:`skipmodel.load.iter_batches`, with an Arrow group-by per batch merged into a
running table, so memory is bounded by the number of cells, not rows.

Binning replaces a continuous value by the midpoint of its bin (equal-width bins over the track
table's range, on the log scale when the spec smooths the log). The model fitted on cells is the
model of the *binned* data; :func:`apply_binning` gives the row-level equivalent.

Examples
--------
>>> spec = get_variant("markov")                                              # doctest: +SKIP
>>> check_aggregable(spec).reasons[0]                                         # doctest: +SKIP
"pooled term on 'track_id_clean': one level per track ..."
>>> cells = aggregate("data/store", binned_spec, bins={"danceability": 20, "energy": 20})  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from skipmodel.errors import SkipmodelError
from skipmodel.load.loaders import DEFAULT_BATCH_ROWS, SampleSpec, iter_batches, sample_buckets
from skipmodel.load.tracks import TrackTable
from skipmodel.model.binning import (  # the rule prediction replays, model side
    BinSpec,
    apply_binning,
    bin_plays,
    run_binning,
)
from skipmodel.model.binning import lag_base as _base
from skipmodel.model.spec import ModelSpec
from skipmodel.model.terms import kind_of
from skipmodel.progress import Progress
from skipmodel.store.layout import open_store
from skipmodel.store.schema import LAG_PREFIXES, LOG_SCHEMA, TRACK_SCHEMA

if TYPE_CHECKING:
    from skipmodel.engine import EngineOptions

TRIALS = "trials"
SKIPS = "skips"
#: A categorical input with more levels than this makes cells about as many as plays.
MAX_LEVELS = 1000
#: Stop the pass when the running cell table grows beyond this many cells.
MAX_CELLS = 5_000_000

#: Level counts of the discrete columns (upper bounds used for the cell-count estimate).
_LEVELS: dict[str, int] = {
    "session_position": 20,
    "session_length": 11,
    "hour_of_day": 24,
    "weekday": 7,
    "date": 66,  # MSSD spans 2018-07-15 .. 2018-09-18
    "context_type": 6,
    "hist_user_behavior_reason_start": 9,
    "hist_user_behavior_reason_end": 7,
    "release_year": 100,
    "key": 12,
    "time_signature": 6,
    "mode": 2,
}
_TRACK_COLUMNS = ("track_id_clean",)


def _arrow_type(column: str) -> pa.DataType:
    if column == "weekday":
        return pa.int8()
    for schema in (LOG_SCHEMA, TRACK_SCHEMA):
        if column in schema.names:
            return schema.field(column).type
    raise SkipmodelError(
        f"--aggregate reads MSSD's columns only, not {column!r} (a user column?): fit it "
        "row by row (without --aggregate) or with --minibatch"
    )


def _is_continuous(column: str) -> bool:
    return pa.types.is_floating(_arrow_type(_base(column)[0]))


# ---------------------------------------------------------------------------------------------
# Binning


def _log_columns(spec: ModelSpec) -> set[str]:
    return {c for t in spec.terms for c in kind_of(t).cells(t).log_columns}


def resolve_binning(
    store: str | Path | None,
    bins: Mapping[str, int] | Iterable[BinSpec],
    *,
    spec: ModelSpec | None = None,
) -> tuple[BinSpec, ...]:
    """Turn ``{"danceability": 20}`` into :class:`BinSpec` objects.

    Ranges of track features come from the store's track table (min and max over tracks, one
    row per track id: :class:`~skipmodel.load.tracks.TrackTable`), on the log scale for columns
    the spec smooths on the log scale. BinSpec objects pass through.
    """
    if not isinstance(bins, Mapping):
        return tuple(bins)
    logs = _log_columns(spec) if spec is not None else set()
    out = []
    reader: TrackTable | None = None  # one row per track id, found once for every column
    for column, n in bins.items():
        base = _base(column)[0]
        if base not in TRACK_SCHEMA.names or base == "track_id":
            raise SkipmodelError(
                f"bins: {column!r} is not a numeric track feature; give a BinSpec with lo and hi"
            )
        if store is None:
            raise SkipmodelError("bins: a store is needed to find the range of " + repr(column))
        reader = reader if reader is not None else TrackTable(open_store(store))
        tracks = reader.table([base])
        x = tracks.column(base).to_numpy(zero_copy_only=False).astype(np.float64)
        log = base in logs
        if log:
            x = np.log(np.clip(x, 0, None) + 1e-10)
        x = x[np.isfinite(x)]
        if x.size == 0 or x.min() == x.max():
            raise SkipmodelError(f"bins: {base!r} has no range in the track table")
        out.append(BinSpec(base, int(n), float(x.min()), float(x.max()), log))
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# Detection


@dataclass(frozen=True)
class Aggregability:
    """Whether a spec's likelihood aggregates exactly to covariate cells, and why not.

    ``key_columns``: the cell keys (the spec's predictor columns); ``max_cells``: the product of
    their level counts, an upper bound on the number of cells (``inf`` when unbounded).
    """

    spec_name: str
    aggregable: bool
    reasons: tuple[str, ...]
    key_columns: tuple[str, ...]
    binning: tuple[BinSpec, ...] = ()
    max_cells: float = math.inf

    def require(self) -> None:
        """Raise :class:`SkipmodelError` listing the reasons when not aggregable."""
        if not self.aggregable:
            raise SkipmodelError(
                f"model {self.spec_name!r} cannot be fitted by exact aggregation: "
                + "; ".join(self.reasons)
            )


def check_aggregable(
    spec: ModelSpec,
    *,
    binning: Sequence[BinSpec] = (),
    n_tracks: int | None = None,
    max_levels: int = MAX_LEVELS,
) -> Aggregability:
    """Is ``spec`` exactly aggregable after ``binning``? Lists every reason it is not.

    Parameters
    ----------
    spec : ModelSpec
    binning : sequence of BinSpec
        The stated binning of continuous columns (see :func:`resolve_binning`).
    n_tracks : int, optional
        Size of the track table, quoted in the reason a per-track term does not aggregate.
    max_levels : int
        A categorical input with more levels makes cells about as many as plays.
    """
    reasons: list[str] = []
    keys = spec.predictor_columns()
    binned = {c for c in keys for b in binning if b.applies_to(c)}
    max_cells = 1.0
    told: set[str] = set()
    for term in spec.terms:
        where = f"{term.kind} term" + (f" on {term.column!r}" if hasattr(term, "column") else "")
        plan = kind_of(term).cells(term)  # the kind says what keys its cells
        if plan.refusal is not None:
            reasons.append(f"{where}: {plan.refusal}")
            continue
        max_cells *= plan.extra_levels
        cols = plan.columns
        for column in cols:
            base, lagged = _base(column)
            if column in binned:
                n = next(b.bins for b in binning if b.applies_to(column))
            elif base in _TRACK_COLUMNS:
                count = f"{n_tracks:,} tracks in the store" if n_tracks else "millions in MSSD"
                reasons.append(
                    f"{where}: one level per track ({count}); cells would be "
                    "nearly as many as plays — fit it with the streaming minibatch method or "
                    "drop the term"
                )
                continue
            elif _is_continuous(column):
                if base in told:
                    continue
                told.add(base)
                hint = f"bins={{{base!r}: 20}}"
                reasons.append(
                    f"{where}: {base!r} (and its lags) is a {plan.what} without binning; "
                    f"state {hint}"
                )
                continue
            else:
                n = _LEVELS.get(base, 2)
                if n > max_levels:
                    reasons.append(f"{where}: {column!r} has about {n} levels (> {max_levels})")
                    continue
            nullable = lagged or base in TRACK_SCHEMA.names
            max_cells *= n + (1 if nullable else 0)
    bins = tuple(b for b in binning if any(b.applies_to(c) for c in keys))
    return Aggregability(
        spec.name, not reasons, tuple(reasons), keys, bins, max_cells if not reasons else math.inf
    )


# ---------------------------------------------------------------------------------------------
# The streaming pass


@dataclass(frozen=True)
class Cells:
    """Covariate cells of a store sample: key columns + ``trials`` + ``skips`` (int64)."""

    table: pa.Table
    outcome: str
    key_columns: tuple[str, ...]
    n_rows: int
    binning: tuple[BinSpec, ...] = ()
    sample: SampleSpec | None = None
    seconds: float = float("nan")
    batches: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_cells(self) -> int:
        return self.table.num_rows

    @property
    def trials(self) -> np.ndarray:
        return self.table.column(TRIALS).to_numpy().astype(np.int64)

    @property
    def skips(self) -> np.ndarray:
        return self.table.column(SKIPS).to_numpy().astype(np.int64)

    def keys_frame(self) -> pd.DataFrame:
        """The key columns as pandas (the shape the design builder reads)."""
        return self.table.select(list(self.key_columns)).to_pandas()

    def describe(self) -> str:
        ratio = self.n_rows / max(self.n_cells, 1)
        return (
            f"{self.n_rows:,} rows -> {self.n_cells:,} cells ({ratio:,.0f} rows per cell) "
            f"in {self.seconds:.1f} s"
        )


def sample_for_cells(
    spec: ModelSpec,
    *,
    fraction: float = 1.0,
    seed: int = 0,
    split: str | None = "train",
    test_fraction: float = 0.2,
    batch_rows: int | None = None,
) -> SampleSpec:
    """The loaders' :class:`SampleSpec` reading only what the cells of ``spec`` need."""
    keys = spec.predictor_columns()
    log_cols = [c for c in keys if c in LOG_SCHEMA.names or c == "weekday"]
    log_cols.append(spec.outcome)
    features = sorted({c for c in keys if c in TRACK_SCHEMA.names})
    lag_feats = sorted(
        {_base(c)[0] for c in keys if _base(c)[1] and _base(c)[0] in TRACK_SCHEMA.names}
    )
    lags = (
        max((2 if c.startswith(LAG_PREFIXES[1]) else 1) for c in keys if _base(c)[1])
        if any(_base(c)[1] for c in keys)
        else 0
    )
    return SampleSpec(
        fraction=fraction,
        seed=seed,
        split=split,  # type: ignore[arg-type]
        test_fraction=test_fraction,
        columns=tuple(dict.fromkeys(log_cols)),
        features=tuple(features) if features else False,
        lags=lags,
        lag_features=tuple(lag_feats) if lag_feats else False,
        batch_rows=batch_rows or DEFAULT_BATCH_ROWS,
    )


def _key_arrays(batch: pa.RecordBatch, keys: Sequence[str], binning: Sequence[BinSpec]) -> list:
    out = []
    for column in keys:
        arr = batch.column(column)
        rule = next((b for b in binning if b.applies_to(column)), None)
        if rule is not None:
            values = arr.to_numpy(zero_copy_only=False).astype(np.float64)
            arr = pa.array(rule.apply(values), from_pandas=True)
        elif pa.types.is_dictionary(arr.type):
            arr = arr.cast(pa.string())  # dictionaries differ between batches; strings merge
        out.append(arr)
    return out


def _group(table: pa.Table, keys: Sequence[str]) -> pa.Table:
    out = table.group_by(list(keys), use_threads=False).aggregate([(TRIALS, "sum"), (SKIPS, "sum")])
    names = {f"{TRIALS}_sum": TRIALS, f"{SKIPS}_sum": SKIPS}
    return out.rename_columns([names.get(n, n) for n in out.column_names])


def aggregate(
    store: str | Path,
    spec: ModelSpec,
    *,
    bins: Mapping[str, int] | Sequence[BinSpec] = (),
    sample: SampleSpec | None = None,
    fraction: float = 1.0,
    seed: int = 0,
    split: str | None = "train",
    max_cells: int = MAX_CELLS,
    merge_rows: int = 1_000_000,
    progress: bool | None = None,
    engine: EngineOptions | None = None,
) -> Cells:
    """Covariate cells of ``spec`` over a store sample, in one streaming pass.

    Parameters
    ----------
    store : path
        Store directory (from ``skipmodel ingest``).
    spec : ModelSpec
        Must be exactly aggregable after ``bins`` (:func:`check_aggregable`); raises otherwise.
    bins : mapping or sequence of BinSpec
        Stated binning of continuous columns, e.g. ``{"danceability": 20}``.
    sample : SampleSpec, optional
        Rows to aggregate; by default the train split of a ``fraction`` sample with the columns
        the spec needs (:func:`sample_for_cells`).
    max_cells : int
        Stop with an error when cells grow beyond this (memory is bounded by cells).
    merge_rows : int
        Per-batch partial cells are merged into the running table once they hold more than
        ``max(merge_rows, 2 * cells)`` rows.
    progress : bool, optional
        Show a rows/s line (default: when stderr is a terminal).
    engine : EngineOptions, optional
        Where the pass runs: here, streaming the sample (``local``, the default), or one task
        per bucket (:func:`cells_of_bucket`) on Spark, the buckets' cells merged here in
        bucket order. The cells are sorted by their keys, so every engine gives the same table.

    Returns
    -------
    Cells
    """
    binning = resolve_binning(store, bins, spec=spec)
    layout = open_store(store)
    n_tracks = None
    with contextlib.suppress(KeyError, TypeError, SkipmodelError, OSError):
        n_tracks = int(layout.read_manifest()["totals"]["track_rows_written"])
    check = check_aggregable(spec, binning=binning, n_tracks=n_tracks)
    check.require()
    keys = check.key_columns
    if sample is None:
        sample = sample_for_cells(spec, fraction=fraction, seed=seed, split=split)
    start = time.perf_counter()
    task = CellsTask(str(store), spec.outcome, tuple(keys), binning, sample, max_cells, merge_rows)
    with Progress("aggregate", unit="rows", enabled=progress) as bar:
        if engine is None or engine.name == "local":
            part = _cells_of(iter_batches(store, sample), task, bar)
        else:
            from skipmodel.engine import run_tasks

            tasks = [dataclasses.replace(task, bucket=b) for b in sample_buckets(store, sample)]
            parts = run_tasks(engine, cells_of_bucket, tasks, label="aggregate: cells")
            for p in parts:
                bar.advance(p.n_rows)
            part = CellsPart(
                _merge(None, [p.table for p in parts if p.table is not None], keys, max_cells),
                sum(p.n_rows for p in parts),
                sum(p.batches for p in parts),
            )
    if part.table is None:
        raise SkipmodelError(f"the sample of {store} is empty; raise the fraction")
    return Cells(
        table=_in_key_order(part.table, keys),
        outcome=spec.outcome,
        key_columns=tuple(keys),
        n_rows=part.n_rows,
        binning=binning,
        sample=sample,
        seconds=time.perf_counter() - start,
        batches=part.batches,
    )


@dataclass(frozen=True)
class CellsTask:
    """What the cells pass over some buckets needs (``bucket``: the one a task reads)."""

    store: str
    outcome: str
    keys: tuple[str, ...]
    binning: tuple[BinSpec, ...]
    sample: SampleSpec
    max_cells: int
    merge_rows: int
    bucket: int | None = None


@dataclass(frozen=True)
class CellsPart:
    """The cells of some buckets (None when they hold no rows), their rows and batches."""

    table: pa.Table | None
    n_rows: int
    batches: int


def cells_of_bucket(task: CellsTask) -> CellsPart:
    """Task: the cells of one bucket of the sample (merged by the driver in bucket order)."""
    assert task.bucket is not None
    return _cells_of(iter_batches(task.store, task.sample, buckets=[task.bucket]), task, None)


def _cells_of(
    batches: Iterable[pa.RecordBatch], task: CellsTask, bar: Progress | None
) -> CellsPart:
    """The cells pass over ``batches``: a group-by per batch, merged into a running table."""
    keys = task.keys
    cells: pa.Table | None = None
    pending: list[pa.Table] = []
    pending_rows = n_rows = n_batches = 0
    for batch in batches:
        outcome = pc.cast(batch.column(task.outcome), pa.int64())
        cols = _key_arrays(batch, keys, task.binning)
        ones = pa.array(np.ones(batch.num_rows, dtype=np.int64))
        part = pa.table([*cols, ones, outcome], names=[*keys, TRIALS, SKIPS])
        grouped = _group(part, keys)
        pending.append(grouped)
        pending_rows += grouped.num_rows
        n_rows += batch.num_rows
        n_batches += 1
        if bar is not None:
            bar.advance(batch.num_rows)
        if pending_rows > max(task.merge_rows, 2 * (cells.num_rows if cells is not None else 0)):
            cells = _merge(cells, pending, keys, task.max_cells)
            pending, pending_rows = [], 0
    return CellsPart(_merge(cells, pending, keys, task.max_cells), n_rows, n_batches)


def _in_key_order(cells: pa.Table, keys: Sequence[str]) -> pa.Table:
    """The cells sorted by their keys (nulls last): one order whatever the engine merged."""
    return cells.sort_by([(k, "ascending") for k in keys]) if keys else cells


def _merge(
    cells: pa.Table | None, pending: list[pa.Table], keys: Sequence[str], max_cells: int
) -> pa.Table | None:
    parts = ([cells] if cells is not None else []) + pending
    if not parts:
        return None
    merged = _group(pa.concat_tables(parts, promote_options="permissive"), keys)
    if merged.num_rows > max_cells:
        raise SkipmodelError(
            f"aggregation produced more than {max_cells:,} cells; bin continuous columns more "
            "coarsely, drop a high-cardinality term, or fit with the minibatch method"
        )
    return merged


__all__ = [
    "MAX_CELLS",
    "MAX_LEVELS",
    "SKIPS",
    "TRIALS",
    "Aggregability",
    "BinSpec",
    "Cells",
    "CellsPart",
    "CellsTask",
    "aggregate",
    "apply_binning",
    "cells_of_bucket",
    "bin_plays",
    "check_aggregable",
    "resolve_binning",
    "run_binning",
    "sample_for_cells",
]
