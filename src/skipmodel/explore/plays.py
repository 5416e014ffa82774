"""The log pass: one accumulator per view, each updated from the same decoded batch.

A batch follows the loader contract (``skipmodel.loaders.iter_batches``): session-log columns,
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
from skipmodel.ingest_compact import SOURCE_COLUMN
from skipmodel.loaders import BucketRows
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
    """One loader batch, with the NumPy views the accumulators share (computed on first use).

    The accumulators use only the properties and methods below, so :class:`BucketPlays`
    (a whole bucket from :func:`skipmodel.loaders.iter_buckets`) can stand in for a batch.
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


class BucketPlays(PlayBatch):
    """A whole bucket (:class:`skipmodel.loaders.BucketRows`) seen as one big batch.

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
        if SOURCE_COLUMN not in self.bucket.table.column_names or not self._source_days:
            return None
        sources = self.column(SOURCE_COLUMN)
        names = sources.dictionary.to_pylist()
        if any(name not in self._source_days for name in names):
            return None  # a source the manifest does not date: keep the session rule
        day_of_entry = np.array([self._source_days[name] for name in names], dtype=np.int64)
        return day_of_entry[_numpy(sources.indices, np.int64)]

    @cached_property
    def _track_rows(self) -> np.ndarray:
        rows = self.bucket.track_rows
        return np.full(self.n, -1, dtype=np.int64) if rows is None else rows

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

    def track_hashes(self) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        ids = self.column("track_id_clean")
        if not pa.types.is_dictionary(ids.type):
            return super().track_hashes()
        known = self.bucket.track_id_hashes  # the loader's: the same function as hash_ids
        entry_hashes = hash_ids(ids.dictionary) if known is None else known
        codes = _numpy(ids.indices, np.int64)
        counts = np.bincount(codes, minlength=len(entry_hashes)).astype(np.int64)
        return entry_hashes[codes], (entry_hashes, counts)

    def count_tracks(self, counter: TrackCounter) -> np.ndarray:
        ids = self.column("track_id_clean")
        if self.bucket.track_rows is None or not pa.types.is_dictionary(ids.type):
            return super().count_tracks(counter)
        given = self.bucket.track_id_hashes  # the loader's: the same function as hash_ids
        entry_hashes = hash_ids(ids.dictionary) if given is None else given
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
    """Consecutive plays ``p -> p+1``, spilled to disk as (previous, current) track-hash pairs.

    A transition is a play whose ``prev_track_id_clean`` is not null: the loader leaves it null
    at position 1 and whenever position ``p-1`` is missing, so no transition crosses a session
    or a gap. The top N tracks are known only after the pass, so the pairs (16 bytes each) are
    appended to a temporary file and counted by :meth:`count` in fixed-size chunks; memory
    stays flat and the log is read once. Call :meth:`close` (or use ``with``) to delete the file.
    """

    CHUNK_PAIRS = 1 << 20

    def __init__(self, directory: str | None = None) -> None:
        fd, name = tempfile.mkstemp(prefix="skipmodel-transitions-", suffix=".u64", dir=directory)
        self._file = os.fdopen(fd, "w+b")
        self.path = name
        self.transitions = 0

    def update(self, b: PlayBatch, current: np.ndarray) -> None:
        """Append this batch's transitions; ``current`` is the row hash of ``track_id_clean``."""
        previous, following = b.transition_pairs(current)
        if not len(previous):
            return
        pairs = np.empty((len(previous), 2), dtype=np.uint64)
        pairs[:, 0] = previous
        pairs[:, 1] = following
        self._file.write(pairs.tobytes())
        self.transitions += len(pairs)

    def __getstate__(self) -> dict[str, object]:
        """Pickled (from a worker process) as its file's path: the file is flushed and kept."""
        self._file.flush()
        return {"path": self.path, "transitions": self.transitions}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.path = str(state["path"])
        self.transitions = int(state["transitions"])  # type: ignore[call-overload]
        self._file = open(self.path, "r+b")  # noqa: SIM115 - closed by close()
        self._file.seek(0, os.SEEK_END)

    def merge(self, other: TransitionSpill) -> None:
        other._file.flush()
        other._file.seek(0)
        shutil.copyfileobj(other._file, self._file)
        self.transitions += other.transitions
        other.close()

    def count(self, top: TopTracks) -> np.ndarray:
        """(N, N) counts of transitions from rank i to rank j among the top tracks."""
        n = top.n
        counts = np.zeros(n * n, dtype=np.int64)
        self._file.flush()
        self._file.seek(0)
        while True:
            raw = self._file.read(self.CHUNK_PAIRS * 16)
            if not raw:
                break
            pairs = np.frombuffer(raw, dtype=np.uint64).reshape(-1, 2)
            prev = top.ranks(pairs[:, 0])
            from_top = np.flatnonzero(prev >= 0)  # few: rank the current track of those only
            cur = top.ranks(pairs[from_top, 1])
            ok = cur >= 0
            counts += np.bincount(prev[from_top[ok]] * n + cur[ok], minlength=n * n)
        self._file.seek(0, os.SEEK_END)
        return counts.reshape(n, n)

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
        """Add a loader batch, or a :class:`BucketPlays`."""
        b = batch if isinstance(batch, PlayBatch) else PlayBatch(batch)
        for part in (self.overview, self.calendar, self.previous, self.chains):
            if part is not None:
                part.update(b)
        row_hashes = b.count_tracks(self.tracks)
        if self.transitions is not None:
            self.transitions.update(b, row_hashes)

    def merge(self, other: LogPass) -> None:
        for name in ("overview", "calendar", "previous", "chains", "transitions", "tracks"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine is not None and theirs is not None:
                mine.merge(theirs)
