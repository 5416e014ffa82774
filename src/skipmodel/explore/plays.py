"""The log pass: one accumulator per view, each updated from the same decoded batch.

A batch follows the loader contract (``skipmodel.loaders.iter_batches``): session-log columns,
joined track features, ``prev_*`` lag columns (null at position 1 and whenever the previous
position is missing from the store), rows sorted by ``(session_id, session_position)``, and no
session split across batches. :class:`PlayBatch` decodes the columns once to NumPy; every
accumulator then reduces them to a few per-key sums (see :mod:`.accumulators`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from skipmodel.explore.accumulators import (
    GroupSums,
    TrackCounter,
    TrackRanker,
    bin_index,
    first_values,
    stack_flags,
)
from skipmodel.explore.dates import session_starts, session_stray_mask
from skipmodel.schema import SKIP_OUTCOMES

#: Value columns of every play aggregate: the count, then one sum per outcome definition.
VALUE_NAMES: tuple[str, ...] = ("n", *SKIP_OUTCOMES)
HOURS_PER_DAY = 24
#: Key stride for (category, position) keys: positions are int8.
POSITION_STRIDE = 256
#: Previous-play categories of the "skip by previous outcome" view, in key order.
PREVIOUS_STATES: tuple[str, ...] = (
    "first in session",
    "previous missing",
    "previous true",
    "previous false",
)


def _numpy(column: pa.Array | pa.ChunkedArray, dtype: type) -> np.ndarray:
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=dtype)


def _float(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Numeric column as float64 with nulls as NaN."""
    if column.null_count:
        column = column.cast(pa.float64()).fill_null(np.nan)
    return _numpy(column, np.float64)


class PlayBatch:
    """One loader batch, with the NumPy views the accumulators share (computed on first use)."""

    def __init__(self, batch: pa.RecordBatch) -> None:
        self.batch = batch
        self.n = batch.num_rows

    def has(self, name: str) -> bool:
        return name in self.batch.schema.names

    def column(self, name: str) -> pa.Array:
        return self.batch.column(name)

    @cached_property
    def values(self) -> np.ndarray:
        """(n, 5): a column of ones then skip_1, skip_2, skip_3, not_skipped as 0/1."""
        return stack_flags([_numpy(self.column(c), np.float64) for c in SKIP_OUTCOMES])

    @cached_property
    def position(self) -> np.ndarray:
        return _numpy(self.column("session_position"), np.int64)

    @cached_property
    def hour(self) -> np.ndarray:
        return _numpy(self.column("hour_of_day"), np.int64)

    @cached_property
    def days(self) -> np.ndarray:
        """Date as integer days since 1970-01-01."""
        return _numpy(self.column("date").cast(pa.int32()), np.int64)

    @cached_property
    def starts(self) -> np.ndarray:
        ids = self.column("session_id")
        if self.n <= 1:
            return np.zeros(min(self.n, 1), dtype=np.int64)
        differ = pc.not_equal(ids.slice(1), ids.slice(0, self.n - 1))
        return session_starts(_numpy(differ, bool))

    def prev_state(self, skip: str) -> np.ndarray:
        """0 first in session, 1 previous position missing, 2 previous ``skip`` true, 3 false."""
        prev = self.column(f"prev_{skip}")
        state = np.where(_numpy(prev.fill_null(False), bool), 2, 3)
        state[_numpy(prev.is_null(), bool)] = 1
        state[self.position == 1] = 0
        return state


@dataclass
class Overview:
    """Totals for the summary: rows, sessions, outcome sums, date range, plays without features."""

    rows: int = 0
    sessions: int = 0
    outcome_sums: np.ndarray = field(default_factory=lambda: np.zeros(len(SKIP_OUTCOMES)))
    first_day: float = np.inf
    last_day: float = -np.inf
    without_features: int = 0
    feature_column: str | None = None

    def update(self, b: PlayBatch) -> None:
        if b.n == 0:
            return
        self.rows += b.n
        self.sessions += len(b.starts)
        self.outcome_sums += b.values[:, 1:].sum(axis=0)
        self.first_day = min(self.first_day, float(b.days.min()))
        self.last_day = max(self.last_day, float(b.days.max()))
        if self.feature_column and b.has(self.feature_column):
            self.without_features += b.column(self.feature_column).null_count

    def merge(self, other: Overview) -> None:
        self.rows += other.rows
        self.sessions += other.sessions
        self.outcome_sums += other.outcome_sums
        self.first_day = min(self.first_day, other.first_day)
        self.last_day = max(self.last_day, other.last_day)
        self.without_features += other.without_features


@dataclass
class Calendar:
    """Seasonality and time structure: sums by hour, by position, and by (day, hour).

    The (day, hour) sums hold only plays that pass the session date rule
    (:func:`~skipmodel.explore.dates.session_stray_mask`); the span rule is applied when the
    tables are built, after the pass.
    """

    by_hour: GroupSums = field(default_factory=lambda: GroupSums(VALUE_NAMES))
    by_position: GroupSums = field(default_factory=lambda: GroupSums(VALUE_NAMES))
    by_day_hour: GroupSums = field(default_factory=lambda: GroupSums(VALUE_NAMES))
    session_strays: int = 0

    def update(self, b: PlayBatch) -> None:
        if b.n == 0:
            return
        self.by_hour.update(b.hour, b.values)
        self.by_position.update(b.position, b.values)
        ok = ~session_stray_mask(b.days, b.starts)
        self.session_strays += int(b.n - ok.sum())
        self.by_day_hour.update(b.days[ok] * HOURS_PER_DAY + b.hour[ok], b.values[ok])

    def merge(self, other: Calendar) -> None:
        self.by_hour.merge(other.by_hour)
        self.by_position.merge(other.by_position)
        self.by_day_hour.merge(other.by_day_hour)
        self.session_strays += other.session_strays


@dataclass
class PreviousOutcome:
    """Sums by (previous play's state for one skip definition, position)."""

    skip: str
    sums: GroupSums = field(default_factory=lambda: GroupSums(VALUE_NAMES))

    def update(self, b: PlayBatch) -> None:
        if b.n:
            self.sums.update(b.prev_state(self.skip) * POSITION_STRIDE + b.position, b.values)

    def merge(self, other: PreviousOutcome) -> None:
        self.sums.merge(other.sums)


@dataclass
class Chains:
    """Sums on the (previous feature bin, current feature bin) grid; plays with both known."""

    feature: str
    edges: np.ndarray
    sums: GroupSums = field(default_factory=lambda: GroupSums(VALUE_NAMES))
    without_previous: int = 0

    @property
    def bins(self) -> int:
        return len(self.edges) - 1

    def update(self, b: PlayBatch) -> None:
        if b.n == 0:
            return
        current = bin_index(_float(b.column(self.feature)), self.edges)
        previous = bin_index(_float(b.column(f"prev_{self.feature}")), self.edges)
        ok = (current >= 0) & (previous >= 0)
        self.without_previous += int(b.n - ok.sum())
        self.sums.update(previous[ok] * self.bins + current[ok], b.values[ok])

    def merge(self, other: Chains) -> None:
        self.sums.merge(other.sums)
        self.without_previous += other.without_previous


@dataclass
class Transitions:
    """Counts of consecutive plays ``p -> p+1`` among the top-N tracks (by popularity rank).

    A transition is a play whose ``prev_track_id_clean`` is not null: the loader leaves it null
    at position 1 and whenever position ``p-1`` is missing, so no transition crosses a session
    or a gap.
    """

    ranker: TrackRanker
    order_by: str | None = None
    counts: np.ndarray = field(init=False)
    order_values: np.ndarray = field(init=False)
    all_transitions: int = 0

    def __post_init__(self) -> None:
        self.counts = np.zeros((self.ranker.n, self.ranker.n), dtype=np.int64)
        self.order_values = np.full(self.ranker.n, np.nan)

    def update(self, b: PlayBatch) -> None:
        if b.n == 0:
            return
        prev_ids = b.column("prev_track_id_clean")
        self.all_transitions += b.n - prev_ids.null_count
        current = self.ranker.ranks(b.column("track_id_clean"))
        previous = self.ranker.ranks(prev_ids)
        ok = (current >= 0) & (previous >= 0)
        n = self.ranker.n
        self.counts += np.bincount(previous[ok] * n + current[ok], minlength=n * n).reshape(n, n)
        if self.order_by:
            first_values(self.order_values, current, _float(b.column(self.order_by)))

    def merge(self, other: Transitions) -> None:
        self.counts += other.counts
        self.all_transitions += other.all_transitions
        fill = np.isnan(self.order_values)
        self.order_values[fill] = other.order_values[fill]
        self.ranker.labels = [
            a or b for a, b in zip(self.ranker.labels, other.ranker.labels, strict=True)
        ]


@dataclass
class LogPass:
    """Everything the main log pass accumulates (``None`` for views not asked for)."""

    overview: Overview
    calendar: Calendar
    previous: PreviousOutcome | None = None
    chains: Chains | None = None
    transitions: Transitions | None = None
    tracks: TrackCounter | None = None

    def update(self, batch: pa.RecordBatch) -> None:
        b = PlayBatch(batch)
        for part in (self.overview, self.calendar, self.previous, self.chains, self.transitions):
            if part is not None:
                part.update(b)
        if self.tracks is not None:
            self.tracks.update(batch.column("track_id_clean"))

    def merge(self, other: LogPass) -> None:
        for name in ("overview", "calendar", "previous", "chains", "transitions", "tracks"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine is not None and theirs is not None:
                mine.merge(theirs)
