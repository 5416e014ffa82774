"""The log pass: one accumulator per view, each updated from the same decoded batch.

Each accumulator reduces a :class:`~skipmodel.explore.batches.PlayBatch` to a few per-key sums
(see :mod:`.accumulators`). A whole bucket (:class:`~skipmodel.explore.batches.BucketPlays`)
goes through the compiled loops of :mod:`.kernels` instead (:func:`update_bucket`,
:func:`count_tracks_and_transitions`: the same numbers, ``FUSED`` switches); they are imported
on first use, so Numba loads only where the log pass runs (not in the worker processes that
draw figures).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from skipmodel.explore.accumulators import GroupSums, TrackCounter, flag_totals, pattern_totals
from skipmodel.explore.batches import BucketPlays, PlayBatch
from skipmodel.explore.dates import HOURS_PER_DAY, file_day_stray_mask, session_stray_mask
from skipmodel.explore.transitions import TransitionSpill
from skipmodel.store.schema import SKIP_OUTCOMES

#: Value columns of every play aggregate: the count, then one sum per outcome definition.
VALUE_NAMES: tuple[str, ...] = ("n", *SKIP_OUTCOMES)
#: Key stride for (category, position) keys: positions are int8.
POSITION_STRIDE = 256
#: Reduce whole buckets with the compiled loops of :mod:`.kernels` (False: the NumPy
#: accumulators of each view, the reference they are tested against).
FUSED = True
#: Previous-play categories of the "skip by previous outcome" view, in key order.
PREVIOUS_STATES: tuple[str, ...] = (
    "first in session",
    "previous missing",
    "previous true",
    "previous false",
)
#: Outcome bit patterns (``SKIP_OUTCOMES`` as bits): the second axis of every count table.
PATTERNS = 1 << len(SKIP_OUTCOMES)
#: A bucket whose (day, hour) table would hold more cells than this (dates spread over
#: decades) goes the NumPy way instead.
MAX_DAY_HOUR_CELLS = 1 << 18


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
        self.outcome_sums += flag_totals(b.flags, len(SKIP_OUTCOMES))
        self.first_day = min(self.first_day, float(b.days.min()))
        self.last_day = max(self.last_day, float(b.days.max()))
        if self.feature_column:
            self.without_features += b.feature_missing(self.feature_column)

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

    The (day, hour) sums hold only plays with a plausible date: where each play's file day is
    known, the file-day rule of ingest (:func:`~skipmodel.explore.dates.file_day_stray_mask`),
    else the session rule (:func:`~skipmodel.explore.dates.session_stray_mask`), whose span
    rule is applied when the tables are built, after the pass.
    """

    by_hour: GroupSums = field(default_factory=lambda: GroupSums(VALUE_NAMES))
    by_position: GroupSums = field(default_factory=lambda: GroupSums(VALUE_NAMES))
    by_day_hour: GroupSums = field(default_factory=lambda: GroupSums(VALUE_NAMES))
    session_strays: int = 0
    #: plays judged by the session rule (the others by the file-day rule)
    session_rule_rows: int = 0
    file_day_strays: int = 0

    def update(self, b: PlayBatch) -> None:
        if b.n == 0:
            return
        self.by_hour.update_flags(b.hour, b.flags)
        self.by_position.update_flags(b.position, b.flags)
        file_days = b.file_days
        if file_days is not None:
            ok = ~file_day_stray_mask(b.days, file_days)
            self.file_day_strays += int(b.n - ok.sum())
        else:
            ok = ~session_stray_mask(b.days, b.starts)
            self.session_strays += int(b.n - ok.sum())
            self.session_rule_rows += b.n
        if ok.all():  # the common case: no copies
            self.by_day_hour.update_flags(b.days * HOURS_PER_DAY + b.hour, b.flags)
        else:
            self.by_day_hour.update_flags(b.days[ok] * HOURS_PER_DAY + b.hour[ok], b.flags[ok])

    def merge(self, other: Calendar) -> None:
        self.by_hour.merge(other.by_hour)
        self.by_position.merge(other.by_position)
        self.by_day_hour.merge(other.by_day_hour)
        self.session_strays += other.session_strays
        self.session_rule_rows += other.session_rule_rows
        self.file_day_strays += other.file_day_strays


@dataclass
class PreviousOutcome:
    """Sums by (previous play's state for one skip definition, position)."""

    skip: str
    sums: GroupSums = field(default_factory=lambda: GroupSums(VALUE_NAMES))

    def update(self, b: PlayBatch) -> None:
        if b.n:
            self.sums.update_flags(b.prev_state(self.skip) * POSITION_STRIDE + b.position, b.flags)

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
        current, previous = b.feature_bins(self.feature, self.edges)
        ok = (current >= 0) & (previous >= 0)
        self.without_previous += int(b.n - ok.sum())
        self.sums.update_flags(previous[ok] * self.bins + current[ok], b.flags[ok])

    def merge(self, other: Chains) -> None:
        self.sums.merge(other.sums)
        self.without_previous += other.without_previous


@dataclass
class LogPass:
    """Everything the main log pass accumulates (``None`` for views not asked for)."""

    overview: Overview
    calendar: Calendar
    previous: PreviousOutcome | None = None
    chains: Chains | None = None
    transitions: TransitionSpill | None = None
    tracks: TrackCounter = field(default_factory=TrackCounter)

    def update(self, batch: pa.RecordBatch | PlayBatch) -> None:
        """Add a loader batch, or a :class:`BucketPlays` (one compiled loop, :mod:`.kernels`)."""
        b = batch if isinstance(batch, PlayBatch) else PlayBatch(batch)
        if not (isinstance(b, BucketPlays) and FUSED and update_bucket(self, b)):
            for part in (self.overview, self.calendar, self.previous, self.chains):
                if part is not None:
                    part.update(b)
        if isinstance(b, BucketPlays) and FUSED and count_tracks_and_transitions(self, b):
            return
        row_hashes = b.count_tracks(self.tracks)
        if self.transitions is not None:
            self.transitions.update(b, row_hashes, self.tracks)

    def merge(self, other: LogPass) -> None:
        for name in ("overview", "calendar", "previous", "chains", "transitions", "tracks"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine is not None and theirs is not None:
                mine.merge(theirs)


def _span(values: np.ndarray) -> tuple[int, int]:
    return int(values.min()), int(values.max()) - int(values.min()) + 1


def update_bucket(log: LogPass, b: BucketPlays) -> bool:
    """Add ``b`` to ``log``'s overview, calendar, previous-outcome and chains accumulators;
    False (nothing added) when the bucket needs the NumPy path (dates spread over decades,
    hours below 0, or a summary feature other than the chains feature)."""
    from skipmodel.explore import kernels  # Numba loads only where the log pass runs

    if b.n == 0:
        return True
    overview, calendar, previous, chains = log.overview, log.calendar, log.previous, log.chains
    days, hour, position = b.days32, b.hour8, b.position8
    day_lo, day_span = _span(days)
    hour_lo, hour_span = _span(hour)
    position_lo, position_span = _span(position)
    # (day, hour) cells from (first day, hour 0) to (last day, last hour); hours outside
    # 0..23 (never written by ingest) or dates over decades go the NumPy way
    day_hour_cells = (day_span - 1) * HOURS_PER_DAY + hour_lo + hour_span
    if hour_lo < 0 or day_hour_cells > MAX_DAY_HOUR_CELLS:
        return False
    sources, source_days = b.source_codes()
    ok = np.empty(0, dtype=np.bool_)
    if sources is None:
        ok = ~session_stray_mask(days.astype(np.int64), b.starts)
        sources, source_days = np.empty(0, np.int32), np.empty(0, np.int64)
    codes = b.features.codes(
        overview.feature_column, None if chains is None else (chains.feature, chains.edges)
    )
    if codes is None:
        return False
    n_bins = chains.bins if chains is not None else 0
    flags = b.flags8
    by_hour = np.zeros((hour_span, PATTERNS), dtype=np.int64)
    by_position = np.zeros((position_span, PATTERNS), dtype=np.int64)
    by_day_hour = np.zeros((day_hour_cells, PATTERNS), dtype=np.int64)
    prev_counts = np.zeros((4 if previous is not None else 0, position_span, PATTERNS), np.int64)
    chain_counts = np.zeros((n_bins * n_bins, PATTERNS), dtype=np.int64)
    totals = np.zeros(3, dtype=np.int64)
    skip_bit = SKIP_OUTCOMES.index(previous.skip) if previous is not None else 0
    kernels.count_plays(
        flags,
        hour,
        hour_lo,
        position,
        position_lo,
        days,
        day_lo,
        ok,
        sources,
        source_days,
        b.lag,
        b.track_rows,
        codes,
        n_bins,
        skip_bit,
        by_hour,
        by_position,
        by_day_hour,
        prev_counts,
        chain_counts,
        totals,
    )
    strays, without_feature, without_previous = (int(t) for t in totals)

    overview.rows += b.n
    overview.sessions += len(b.starts)
    overview.outcome_sums += pattern_totals(by_hour.sum(axis=0), len(SKIP_OUTCOMES))
    overview.first_day = min(overview.first_day, float(day_lo))
    overview.last_day = max(overview.last_day, float(day_lo + day_span - 1))
    if overview.feature_column:
        overview.without_features += without_feature

    calendar.by_hour.add_pattern_counts(np.arange(hour_span) + hour_lo, by_hour)
    calendar.by_position.add_pattern_counts(np.arange(position_span) + position_lo, by_position)
    calendar.by_day_hour.add_pattern_counts(
        np.arange(day_hour_cells) + day_lo * HOURS_PER_DAY, by_day_hour
    )
    if len(ok):
        calendar.session_strays += int(b.n - np.count_nonzero(ok))
        calendar.session_rule_rows += b.n
    else:
        calendar.file_day_strays += strays
    if previous is not None:
        keys = (
            np.arange(4)[:, None] * POSITION_STRIDE
            + np.arange(position_span)[None, :]
            + position_lo
        )
        previous.sums.add_pattern_counts(keys.ravel(), prev_counts.reshape(-1, PATTERNS))
    if chains is not None:
        chains.sums.add_pattern_counts(np.arange(n_bins * n_bins), chain_counts)
        chains.without_previous += without_previous
    return True


def count_tracks_and_transitions(log: LogPass, b: BucketPlays) -> bool:
    """Add ``b``'s plays per track to ``log.tracks`` and, once the transition candidates are
    fixed, its transitions to ``log.transitions``, in one pass with no per-play hash; False
    (nothing added) when ``b`` needs the NumPy path (no track rows or dictionary-coded ids,
    or candidates not fixed yet: the spill wants hash pairs)."""
    ids = b.column("track_id_clean")
    spill = log.transitions
    if (
        b.bucket.track_rows is None
        or not pa.types.is_dictionary(ids.type)
        or ids.null_count
        or (spill is not None and spill.lookup is None)
    ):
        return False
    track_rows = b.track_rows
    codes = np.asarray(ids.indices.to_numpy(zero_copy_only=False))
    n_entries = len(ids.dictionary)
    unknown = np.zeros(n_entries, dtype=np.int64)
    row_hashes = b.features.id_hashes()
    row_counts = log.tracks.row_counts(row_hashes)
    entry_hashes = None
    no_ranks = np.zeros(0, np.int32)
    row_ranks, entry_ranks, table = no_ranks, no_ranks, np.zeros(0, np.int64)
    if spill is not None and spill.lookup is not None:
        row_ranks = spill.row_ranks(row_hashes)
        table = spill.tables[-1][1]
        if (track_rows < 0).any():  # tracks without a row: ranked by their id's hash
            entry_hashes = b.entry_hashes()
            entry_ranks = spill.lookup.ranks(entry_hashes).astype(np.int32)
    from skipmodel.explore import kernels

    transitions = kernels.count_tracks_and_pairs(
        codes, track_rows, b.lag, row_counts, unknown, row_ranks, entry_ranks, table
    )
    if unknown.any():
        log.tracks.update(b.entry_hashes() if entry_hashes is None else entry_hashes, unknown)
    if spill is not None:
        spill.transitions += transitions
    return True
