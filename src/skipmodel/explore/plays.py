"""The log pass: one accumulator per view, each updated from the same decoded batch.

A batch follows the loader contract (``skipmodel.load.iter_batches``): session-log columns,
joined track features, ``prev_*`` lag columns (null at position 1 and whenever the previous
position is missing from the store), rows sorted by ``(session_id, session_position)``, and no
session split across batches. :class:`PlayBatch` decodes the columns once to NumPy; every
accumulator then reduces them to a few per-key sums (see :mod:`.accumulators`).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from types import ModuleType

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from skipmodel.explore.accumulators import (
    GroupSums,
    TopTracks,
    TrackCounter,
    bin_index,
    flag_totals,
    hash_ids,
    hash_tracks,
    outcome_flags,
    stack_flags,
)
from skipmodel.explore.dates import file_day_stray_mask, session_starts, session_stray_mask
from skipmodel.load.loaders import BucketRows
from skipmodel.store.format import SOURCE_COLUMN
from skipmodel.store.schema import SKIP_OUTCOMES

#: Value columns of every play aggregate: the count, then one sum per outcome definition.
VALUE_NAMES: tuple[str, ...] = ("n", *SKIP_OUTCOMES)
HOURS_PER_DAY = 24
#: Key stride for (category, position) keys: positions are int8.
POSITION_STRIDE = 256
#: Reduce whole buckets with the compiled loop of :mod:`.kernels` (False: the NumPy
#: accumulators of each view, the reference it is tested against).
FUSED = True
#: Previous-play categories of the "skip by previous outcome" view, in key order.
PREVIOUS_STATES: tuple[str, ...] = (
    "first in session",
    "previous missing",
    "previous true",
    "previous false",
)


def _kernels() -> ModuleType:
    """:mod:`.kernels`, imported on first use: Numba loads only where the log pass runs (not
    in the worker processes that draw figures)."""
    from skipmodel.explore import kernels

    return kernels


def _numpy(column: pa.Array | pa.ChunkedArray, dtype: type) -> np.ndarray:
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=dtype)


def _float(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Numeric column as float64 with nulls as NaN."""
    if column.null_count:
        column = column.cast(pa.float64()).fill_null(np.nan)
    return _numpy(column, np.float64)


class PlayBatch:
    """One loader batch, with the NumPy views the accumulators share (computed on first use).

    The accumulators use only the properties and methods below, so :class:`BucketPlays`
    (a whole bucket from :func:`skipmodel.load.iter_buckets`) can stand in for a batch.
    """

    def __init__(self, batch: pa.RecordBatch) -> None:
        self.batch = batch
        self.n = batch.num_rows

    def has(self, name: str) -> bool:
        return name in self.batch.schema.names

    def column(self, name: str) -> pa.Array:
        return self.batch.column(name)

    @cached_property
    def flags(self) -> np.ndarray:
        """Per play, bit j set when ``SKIP_OUTCOMES[j]`` is true (see ``GroupSums.update_flags``)."""
        return outcome_flags([_numpy(self.column(c), bool) for c in SKIP_OUTCOMES])

    @cached_property
    def values(self) -> np.ndarray:
        """(n, 5): a column of ones then skip_1, skip_2, skip_3, not_skipped as 0/1."""
        return stack_flags([_numpy(self.column(c), np.float64) for c in SKIP_OUTCOMES])

    @property
    def file_days(self) -> np.ndarray | None:
        """Day (days since 1970-01-01) of the file each play came from, when known (compacted
        stores record each row's source; the manifest each source's day)."""
        return None

    def feature(self, name: str) -> np.ndarray:
        """The play's track feature as float64, NaN when unknown."""
        return _float(self.column(name))

    def prev_feature(self, name: str) -> np.ndarray:
        """The previous play's track feature as float64, NaN when unknown or no previous play."""
        return _float(self.column(f"prev_{name}"))

    def feature_bins(self, name: str, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bin (:func:`bin_index` over ``edges``) of the play's and of the previous play's
        track feature; -1 when unknown."""
        return bin_index(self.feature(name), edges), bin_index(self.prev_feature(name), edges)

    def feature_missing(self, name: str) -> int:
        """Plays whose track has no value for ``name`` (track unknown or feature null)."""
        return self.column(name).null_count if self.has(name) else 0

    def track_hashes(self) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """Stable hash of each play's track id, and the distinct hashes with their counts."""
        row_hashes, _, distinct = hash_tracks(self.column("track_id_clean"))
        return row_hashes, distinct

    def count_tracks(self, counter: TrackCounter) -> np.ndarray:
        """Add the plays per track to ``counter``; returns each play's track hash."""
        row_hashes, distinct = self.track_hashes()
        counter.update(*distinct)
        return row_hashes

    def transition_pairs(self, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(previous, current) track hashes of every play with a previous play."""
        prev_ids = self.column("prev_track_id_clean")
        if self.n == 0 or prev_ids.null_count == self.n:
            empty = np.empty(0, dtype=np.uint64)
            return empty, empty
        has_prev = ~_numpy(prev_ids.is_null(), bool)
        # The previous play is usually the previous row: reuse its hash; hash the rest.
        prev_hash = np.empty(self.n, dtype=np.uint64)
        prev_hash[1:] = current[:-1]
        same = np.zeros(self.n, dtype=bool)
        same[1:] = self.position[1:] == self.position[:-1] + 1
        same[self.starts] = False
        other = has_prev & ~same
        if other.any():
            prev_hash[other] = hash_tracks(prev_ids.filter(pa.array(other)))[0]
        return prev_hash[has_prev], current[has_prev]

    # the calendar columns in their stored types (what the compiled loops read), and as int64
    @cached_property
    def position8(self) -> np.ndarray:
        return _numpy(self.column("session_position"), np.int8)

    @cached_property
    def hour8(self) -> np.ndarray:
        return _numpy(self.column("hour_of_day"), np.int8)

    @cached_property
    def days32(self) -> np.ndarray:
        """Date as integer days since 1970-01-01."""
        return _numpy(self.column("date").cast(pa.int32()), np.int32)

    @cached_property
    def position(self) -> np.ndarray:
        return self.position8.astype(np.int64)

    @cached_property
    def hour(self) -> np.ndarray:
        return self.hour8.astype(np.int64)

    @cached_property
    def days(self) -> np.ndarray:
        return self.days32.astype(np.int64)

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


class BucketPlays(PlayBatch):
    """A whole bucket (:class:`skipmodel.load.BucketRows`) seen as one big batch.

    Nothing is materialised per row beyond what the accumulators ask for: track features are
    gathered from the track table by track row, lags by lag row, and track ids are hashed once
    per distinct id of the bucket (its dictionary), not once per play.
    """

    def __init__(
        self, bucket: BucketRows, features: TrackArrays, source_days: dict[str, int] | None = None
    ) -> None:
        self.bucket = bucket
        self._source_days = source_days or {}
        self.batch = bucket.table  # type: ignore[assignment]
        self.n = bucket.table.num_rows
        self._features = features
        self._lag = bucket.lag_rows[0]
        self._has_prev = self._lag >= 0

    def has(self, name: str) -> bool:
        return name in self.bucket.table.column_names or name in self._features.names

    def column(self, name: str) -> pa.Array:
        column = self.bucket.table.column(name)
        return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()

    @cached_property
    def starts(self) -> np.ndarray:
        return self.bucket.bounds[:-1].astype(np.int64)

    @cached_property
    def file_days(self) -> np.ndarray | None:
        codes, day_of_entry = self.source_codes()
        # None when a source is not dated by the manifest: keep the session rule
        return None if codes is None else day_of_entry[codes]

    @cached_property
    def _track_rows(self) -> np.ndarray:
        rows = self.bucket.track_rows
        return np.full(self.n, -1, dtype=np.int64) if rows is None else rows

    # What the compiled loops of :mod:`.kernels` read besides the calendar columns: the track
    # and lag rows, and the per-row file days as codes.

    @cached_property
    def flags8(self) -> np.ndarray:
        """:attr:`flags` as uint8, read from the Arrow bitmaps (:func:`.kernels.bitmap_flags`)."""
        found = _kernels().bitmap_flags([self.column(c) for c in SKIP_OUTCOMES])
        return self.flags.astype(np.uint8) if found is None else found

    @property
    def track_rows(self) -> np.ndarray:
        """Row of each play's track in the track table, -1 without features (int64)."""
        return np.asarray(self._track_rows, dtype=np.int64)

    @property
    def lag(self) -> np.ndarray:
        """Row of each play's previous play, -1 when there is none (int64)."""
        return np.asarray(self._lag, dtype=np.int64)

    @property
    def features(self) -> TrackArrays:
        return self._features

    def source_codes(self) -> tuple[np.ndarray | None, np.ndarray]:
        """Each play's source as a code (int32) into the day of each source (int64), or
        ``(None, empty)`` when the file days are not known (see :attr:`file_days`)."""
        if SOURCE_COLUMN not in self.bucket.table.column_names or not self._source_days:
            return None, np.empty(0, np.int64)
        sources = self.column(SOURCE_COLUMN)
        names = sources.dictionary.to_pylist()
        if any(name not in self._source_days for name in names):
            return None, np.empty(0, np.int64)
        day_of_entry = np.array([self._source_days[name] for name in names], dtype=np.int64)
        return _numpy(sources.indices, np.int32), day_of_entry

    def feature(self, name: str) -> np.ndarray:
        return self._features.values(name)[self._track_rows]

    def prev_feature(self, name: str) -> np.ndarray:
        current = self.feature(name)
        return np.where(self._has_prev, current[np.maximum(self._lag, 0)], np.nan)

    def feature_missing(self, name: str) -> int:
        return int(np.count_nonzero(self._features.missing(name)[self._track_rows]))

    def feature_bins(self, name: str, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # each track is binned once; plays gather their track's bin
        current = self._features.bins(name, edges)[self._track_rows]
        previous = np.where(self._has_prev, current[np.maximum(self._lag, 0)], -1)
        return current, previous

    def entry_hashes(self) -> np.ndarray:
        """:func:`hash_ids` of each entry of ``track_id_clean``'s dictionary (the loader's
        when its join computed them: the same function)."""
        known = self.bucket.track_id_hashes
        return hash_ids(self.column("track_id_clean").dictionary) if known is None else known

    def track_hashes(self) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        ids = self.column("track_id_clean")
        if not pa.types.is_dictionary(ids.type):
            return super().track_hashes()
        entry_hashes = self.entry_hashes()
        codes = _numpy(ids.indices, np.int64)
        counts = np.bincount(codes, minlength=len(entry_hashes)).astype(np.int64)
        return entry_hashes[codes], (entry_hashes, counts)

    def count_tracks(self, counter: TrackCounter) -> np.ndarray:
        ids = self.column("track_id_clean")
        if self.bucket.track_rows is None or not pa.types.is_dictionary(ids.type):
            return super().count_tracks(counter)
        entry_hashes = self.entry_hashes()
        codes = _numpy(ids.indices, np.int64)
        # plays of tracks in the features table by their row (dense), the others by hash
        rows = self._track_rows
        known = rows >= 0
        counter.update_rows(rows[known], self._features.id_hashes())
        if not known.all():
            unknown = np.bincount(codes[~known], minlength=len(entry_hashes))
            counter.update(entry_hashes, unknown)
        return entry_hashes[codes]

    def transition_pairs(self, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return current[self._lag[self._has_prev]], current[self._has_prev]

    def prev_state(self, skip: str) -> np.ndarray:
        # 3 - (previous outcome bit): 2 when true, 3 when false; 1 when there is no previous
        state = 3 - ((self.flags[np.maximum(self._lag, 0)] >> SKIP_OUTCOMES.index(skip)) & 1)
        state[~self._has_prev] = 1
        state[self.position == 1] = 0
        return state


def session_slices(bucket: BucketRows, rows: int) -> Iterator[BucketRows]:
    """``bucket`` in pieces of about ``rows`` plays cut at session boundaries (a piece is
    larger only when one session is), each a :class:`BucketRows` of its own: lag rows stay
    inside a session, so they are only shifted."""
    n = bucket.table.num_rows
    if n <= rows:
        yield bucket
        return
    bounds = bucket.bounds
    start = 0
    while start < n:
        # the last session start at or before start + rows, but at least one whole session
        stop = int(bounds[np.searchsorted(bounds, start + rows, side="right") - 1])
        if stop <= start:
            stop = int(bounds[np.searchsorted(bounds, start, side="right")])
        first, last = np.searchsorted(bounds, [start, stop])
        yield dataclasses.replace(
            bucket,
            table=bucket.table.slice(start, stop - start),
            bounds=bounds[first : last + 1] - start,
            lag_rows=tuple(
                np.where(r[start:stop] >= 0, r[start:stop] - start, -1) for r in bucket.lag_rows
            ),
            track_rows=None if bucket.track_rows is None else bucket.track_rows[start:stop],
        )
        start = stop


@dataclass
class TrackArrays:
    """Track-table feature columns as float64 arrays indexed by track row, with a trailing
    NaN entry so that row -1 (track without features) reads as missing."""

    tracks: pa.Table | None
    names: tuple[str, ...]
    _values: dict[str, np.ndarray] = field(default_factory=dict)
    _missing: dict[str, np.ndarray] = field(default_factory=dict)
    _bins: dict[tuple[str, bytes], np.ndarray] = field(default_factory=dict)
    _codes: dict[tuple[str | None, bytes | None], np.ndarray] = field(default_factory=dict)
    _id_hashes: np.ndarray | None = None

    def id_hashes(self) -> np.ndarray:
        """:func:`hash_ids` of every track id of the table (as the plays' hashes)."""
        if self._id_hashes is None:
            ids = None if self.tracks is None else self.tracks.column("track_id")
            self._id_hashes = (
                np.empty(0, np.uint64) if ids is None else hash_ids(ids.combine_chunks())
            )
        return self._id_hashes

    def bins(self, name: str, edges: np.ndarray) -> np.ndarray:
        """:func:`bin_index` of every track's ``name`` (and -1 for the trailing entry)."""
        key = (name, np.asarray(edges, dtype=np.float64).tobytes())
        if key not in self._bins:
            self._bins[key] = bin_index(self.values(name), edges)
        return self._bins[key]

    def codes(self, feature: str | None, chains: Chains | None) -> np.ndarray | None:
        """Per track row (and the trailing entry), the bin of ``chains``' feature or 0 without
        chains, and -1 where ``feature`` is missing, as int8 (wider for > 127 bins): the one
        table :mod:`.kernels` reads per play. None when ``feature`` is not the chains feature."""
        if chains is not None and feature is not None and feature != chains.feature:
            return None
        key = (feature, None if chains is None else chains.edges.tobytes())
        if key not in self._codes:
            if chains is not None:
                bins = self.bins(chains.feature, chains.edges)
            elif feature is not None:
                bins = np.where(self.missing(feature), -1, 0)
            else:
                bins = np.zeros(1 if self.tracks is None else self.tracks.num_rows + 1, np.int64)
            top = int(bins.max()) if len(bins) else 0
            small = next(t for t in (np.int8, np.int16, np.int32) if top <= np.iinfo(t).max)
            self._codes[key] = bins.astype(small)
        return self._codes[key]

    def values(self, name: str) -> np.ndarray:
        if name not in self._values:
            if self.tracks is None or name not in self.tracks.column_names:
                self._values[name] = np.full(1, np.nan)
            else:
                self._values[name] = np.append(_float(self.tracks.column(name)), np.nan)
        return self._values[name]

    def missing(self, name: str) -> np.ndarray:
        if name not in self._missing:
            if self.tracks is None or name not in self.tracks.column_names:
                self._missing[name] = np.ones(1, dtype=bool)
            else:
                null = _numpy(self.tracks.column(name).is_null(), bool)
                self._missing[name] = np.append(null, True)
        return self._missing[name]


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


class TransitionSpill:
    """Consecutive plays ``p -> p+1`` among the tracks that will turn out to be the top N.

    A transition is a play whose ``prev_track_id_clean`` is not null: the loader leaves it null
    at position 1 and whenever position ``p-1`` is missing, so no transition crosses a session
    or a gap. The top N tracks are known only after the pass, so:

    1. the first :attr:`CANDIDATE_AFTER` transitions are spilled to a temporary file as
       (previous, current) track-hash pairs (16 bytes each);
    2. then the :attr:`candidates` most played tracks so far (``max(20 N, 1000)``) are fixed,
       and every later transition between two of them is counted in a dense candidates x
       candidates table (8 bytes a cell; transitions touching another track are dropped);
    3. :meth:`count` replays the spill and adds the table's cells of the final top N, provided
       every one of them was a candidate, and returns None otherwise (the caller counts again
       with the top N fixed from the start: :func:`~skipmodel.explore.passes.compute`).

    Counts are exact either way. Memory stays flat (the spill is read in fixed-size chunks; a
    table per merged participant), the log is read once unless the top N was not among the
    candidates, which would take a track played rarely in the first millions of transitions
    and among the N most played over all of them. Call :meth:`close` (or use ``with``) to
    delete the file.
    """

    CHUNK_PAIRS = 1 << 20
    #: Transitions spilled before the candidates are fixed.
    CANDIDATE_AFTER = 1 << 21
    #: Candidates per top track, at least :attr:`MIN_CANDIDATES`; with more than
    #: :attr:`MAX_CANDIDATES` (a top N in the hundreds) everything is spilled instead.
    CANDIDATE_FACTOR = 20
    MIN_CANDIDATES = 1000
    MAX_CANDIDATES = 4096

    def __init__(
        self,
        directory: str | None = None,
        *,
        top_n: int = 50,
        candidates: np.ndarray | None = None,
    ) -> None:
        """``candidates``: count among these track hashes from the first transition on."""
        fd, name = tempfile.mkstemp(prefix="skipmodel-transitions-", suffix=".u64", dir=directory)
        self._file = os.fdopen(fd, "w+b")
        self.path = name
        self.transitions = 0
        self.spilled = 0
        size = max(self.CANDIDATE_FACTOR * top_n, self.MIN_CANDIDATES)
        self.candidates = size if size <= self.MAX_CANDIDATES else 0
        #: (candidate hashes in rank order, their dense count table), one per fixing
        self.tables: list[tuple[np.ndarray, np.ndarray]] = []
        #: the current table's candidates (None until fixed)
        self.lookup: TopTracks | None = None
        self._row_ranks: tuple[np.ndarray, np.ndarray] | None = None
        if candidates is not None:
            self._fix(np.asarray(candidates, dtype=np.uint64))

    def _fix(self, hashes: np.ndarray) -> None:
        self.tables.append((hashes, np.zeros(len(hashes) ** 2, dtype=np.int64)))
        self.lookup = TopTracks(hashes)
        self._row_ranks = None

    def row_ranks(self, row_hashes: np.ndarray) -> np.ndarray:
        """Candidate rank (int32, -1 for others) of each row of a track table whose ids hash
        to ``row_hashes``, for the current table; computed once."""
        assert self.lookup is not None
        if self._row_ranks is None or self._row_ranks[0] is not row_hashes:
            self._row_ranks = (row_hashes, self.lookup.ranks(row_hashes).astype(np.int32))
        return self._row_ranks[1]

    def update(
        self, b: PlayBatch, current: np.ndarray, counter: TrackCounter | None = None
    ) -> None:
        """Add this batch's transitions; ``current`` is the row hash of ``track_id_clean``, and
        ``counter`` the play counts so far (to fix the candidates from)."""
        previous, following = b.transition_pairs(current)
        if not len(previous):
            return
        self.transitions += len(previous)
        if self.lookup is not None:
            _kernels().count_top_pairs(previous, following, self.lookup, self.tables[-1][1])
            return
        pairs = np.empty((len(previous), 2), dtype=np.uint64)
        pairs[:, 0] = previous
        pairs[:, 1] = following
        self._file.write(pairs.tobytes())
        self.spilled += len(pairs)
        if self.candidates and counter is not None and self.spilled >= self.CANDIDATE_AFTER:
            self._fix(counter.top(self.candidates)[0])

    def __getstate__(self) -> dict[str, object]:
        """Pickled (from a worker process) with its file's path: the file is flushed and kept."""
        self._file.flush()
        return {
            k: v for k, v in self.__dict__.items() if k not in ("_file", "lookup", "_row_ranks")
        }

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self.lookup = TopTracks(self.tables[-1][0]) if self.tables else None
        self._row_ranks = None
        self._file = open(self.path, "r+b")  # noqa: SIM115 - closed by close()
        self._file.seek(0, os.SEEK_END)

    def merge(self, other: TransitionSpill) -> None:
        other._file.flush()
        other._file.seek(0)
        shutil.copyfileobj(other._file, self._file)
        self.transitions += other.transitions
        self.spilled += other.spilled
        self.tables = [*other.tables, *self.tables]  # this one's current table stays last
        other.close()

    def count(self, top: TopTracks) -> np.ndarray | None:
        """(N, N) counts of transitions from rank i to rank j among the top tracks; None when
        a top track was not among the candidates of a table (count again, see the class)."""
        n = top.n
        picks = []
        for hashes, _ in self.tables:
            where = TopTracks(hashes).ranks(top.hashes)  # each top track's place in the table
            if (where < 0).any():
                return None
            picks.append(where)
        flat = np.zeros(n * n, dtype=np.int64)
        self._file.flush()
        self._file.seek(0)
        while True:
            raw = self._file.read(self.CHUNK_PAIRS * 16)
            if not raw:
                break
            pairs = np.frombuffer(raw, dtype=np.uint64).reshape(-1, 2)
            _kernels().count_top_pairs(pairs[:, 0], pairs[:, 1], top, flat)
        self._file.seek(0, os.SEEK_END)
        counts = flat.reshape(n, n)
        for (hashes, table), where in zip(self.tables, picks, strict=True):
            counts += table.reshape(len(hashes), len(hashes))[np.ix_(where, where)]
        return counts

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
        if os.path.exists(self.path):
            os.unlink(self.path)

    def __enter__(self) -> TransitionSpill:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
        if not (isinstance(b, BucketPlays) and FUSED and _kernels().update_bucket(self, b)):
            for part in (self.overview, self.calendar, self.previous, self.chains):
                if part is not None:
                    part.update(b)
        if (
            isinstance(b, BucketPlays)
            and FUSED
            and _kernels().count_tracks_and_transitions(self, b)
        ):
            return
        row_hashes = b.count_tracks(self.tracks)
        if self.transitions is not None:
            self.transitions.update(b, row_hashes, self.tracks)

    def merge(self, other: LogPass) -> None:
        for name in ("overview", "calendar", "previous", "chains", "transitions", "tracks"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine is not None and theirs is not None:
                mine.merge(theirs)
