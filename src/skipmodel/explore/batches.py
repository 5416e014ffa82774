"""A batch of plays as NumPy views, decoded once and shared by every accumulator of the log pass.

A batch follows the loader contract (``skipmodel.load.iter_batches``): session-log columns,
joined track features, ``prev_*`` lag columns (null at position 1 and whenever the previous
position is missing from the store), rows sorted by ``(session_id, session_position)``, and no
session split across batches. :class:`PlayBatch` decodes the columns once to NumPy;
:class:`BucketPlays` stands in for a whole bucket (:func:`skipmodel.load.iter_buckets`), its
track features gathered from :class:`TrackArrays` by track row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from skipmodel.explore.accumulators import (
    TrackCounter,
    bin_index,
    hash_ids,
    hash_tracks,
    outcome_flags,
    stack_flags,
)
from skipmodel.explore.dates import session_starts
from skipmodel.load.loaders import BucketRows
from skipmodel.store.format import SOURCE_COLUMN
from skipmodel.store.schema import SKIP_OUTCOMES


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
        from skipmodel.explore import kernels  # Numba loads only where the log pass runs

        found = kernels.bitmap_flags([self.column(c) for c in SKIP_OUTCOMES])
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

    def codes(
        self, feature: str | None, chains: tuple[str, np.ndarray] | None
    ) -> np.ndarray | None:
        """Per track row (and the trailing entry), the bin of the ``chains`` feature over its
        edges (``(feature, edges)``) or 0 without chains, and -1 where ``feature`` is missing,
        as int8 (wider for > 127 bins): the one table :mod:`.kernels` reads per play. None
        when ``feature`` is not the chains feature."""
        if chains is not None and feature is not None and feature != chains[0]:
            return None
        key = (feature, None if chains is None else chains[1].tobytes())
        if key not in self._codes:
            if chains is not None:
                bins = self.bins(*chains)
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
