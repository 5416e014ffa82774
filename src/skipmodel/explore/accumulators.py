"""Mergeable accumulators: the only state the exploration passes keep between batches.

Every accumulator here is a small summary that can be updated with one batch's arrays and merged
with another accumulator of the same kind, so ``a.update(x); a.update(y)`` equals
``a.update(x); b.update(y); a.merge(b)``. Their memory depends on the number of *groups*
(hours, positions, days, bins, distinct tracks), never on the number of rows.

Memory bounds, for the record:

- :class:`GroupSums`: ``8 * (1 + n_values)`` bytes per distinct key (days x hours: a few thousand).
- :class:`Histogram`: fixed bin edges decided before the pass, ``8`` bytes per bin.
- :class:`TrackCounter`: ``16`` bytes per distinct track (a 64-bit hash and a count), plus
  a pending buffer compacted whenever it outgrows the table: about 60 MB for the 3.7 million
  tracks of the full MSSD, whatever the number of plays. Hash collisions are ignored (two of
  3.7 million ids share a 64-bit hash with probability ~4e-7).
- :class:`~skipmodel.explore.transitions.TransitionSpill` keeps nothing in memory: the (previous,
  current) track-hash pairs go to a temporary file (16 bytes per transition) replayed in
  fixed-size chunks once the top N is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from skipmodel.load.tracks import id_hash

#: Dense ``bincount`` is used when the key range is at most this many times the row count.
_DENSE_FACTOR = 4


def reduce_by_key(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum the rows of ``values`` (n x m) by integer ``keys``; returns sorted unique keys, sums.

    Uses a dense ``bincount`` over the key range when it is small, else a sort (``np.unique``).
    """
    keys = np.asarray(keys, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64).reshape(len(keys), -1)
    m = values.shape[1]
    if len(keys) == 0:
        return np.empty(0, np.int64), np.empty((0, m))
    lo, hi = int(keys.min()), int(keys.max())
    span = hi - lo + 1
    if span <= max(_DENSE_FACTOR * len(keys), 1024):
        idx = keys - lo
        counts = np.bincount(idx, minlength=span)
        present = np.flatnonzero(counts)
        sums = np.column_stack(
            [np.bincount(idx, weights=values[:, j], minlength=span)[present] for j in range(m)]
        ).reshape(len(present), m)
        return present.astype(np.int64) + lo, sums
    unique, inverse = np.unique(keys, return_inverse=True)
    sums = np.column_stack(
        [np.bincount(inverse, weights=values[:, j], minlength=len(unique)) for j in range(m)]
    ).reshape(len(unique), m)
    return unique, sums


@dataclass
class GroupSums:
    """Per-key sums of ``len(names)`` value columns over integer keys (sparse, mergeable).

    Column 0 is conventionally the row count ``n``; the others sums of 0/1 outcomes or of a
    variable and its square.
    """

    names: tuple[str, ...]
    keys: np.ndarray = field(init=False)
    sums: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.keys = np.empty(0, np.int64)
        self.sums = np.empty((0, len(self.names)))

    def update(self, keys: np.ndarray, values: np.ndarray) -> None:
        """Add rows: ``keys`` (n,) integers and ``values`` (n, len(names))."""
        if len(keys):
            self._add(*reduce_by_key(keys, values))

    def update_flags(self, keys: np.ndarray, flags: np.ndarray) -> None:
        """Add rows given as outcome bit patterns instead of a value matrix.

        For ``names == ("n", o_1, ..., o_k)``: ``flags`` holds, per row, bit ``j`` set when
        outcome ``o_{j+1}`` is true (see :func:`outcome_flags`). One integer ``bincount`` of
        ``(key, pattern)`` pairs replaces ``k + 1`` weighted ones; the sums are the same.
        """
        if not len(keys):
            return
        k = len(self.names) - 1
        patterns = 1 << k
        keys = np.asarray(keys)
        lo = int(keys.min())
        span = int(keys.max()) - lo + 1
        if span > max(_DENSE_FACTOR * len(keys), 1024):
            unique, inverse = np.unique(keys, return_inverse=True)
            lo, span, keys = 0, len(unique), inverse
        else:
            unique = None
        combined = keys.astype(np.int64)  # a copy, worked on in place
        if lo:
            combined -= lo
        combined *= patterns
        combined += flags
        counts = np.bincount(combined, minlength=span * patterns).reshape(span, patterns)
        found = np.arange(span, dtype=np.int64) + lo if unique is None else unique
        self.add_pattern_counts(found, counts)

    def add_pattern_counts(self, keys: np.ndarray, counts: np.ndarray) -> None:
        """Add ``counts[i, pattern]``, the rows of key ``keys[i]`` with each outcome bit
        pattern (as :meth:`update_flags` counts them); keys without rows are left out."""
        present = np.flatnonzero(counts.any(axis=1))
        if not len(present):
            return
        sums = counts[present].astype(np.float64) @ _pattern_matrix(len(self.names) - 1)
        self._add(np.asarray(keys, dtype=np.int64)[present], sums)

    def merge(self, other: GroupSums) -> None:
        if other.names != self.names:
            raise ValueError(f"cannot merge GroupSums{other.names} into GroupSums{self.names}")
        self._add(other.keys, other.sums)

    def _add(self, keys: np.ndarray, sums: np.ndarray) -> None:
        if len(self.keys) == 0 and bool(np.all(keys[1:] > keys[:-1])):
            self.keys, self.sums = keys.copy(), sums.copy()
            return
        if len(keys) and len(self.keys):
            # the common case in a pass: keys seen before (the same hours, positions, days)
            at = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
            if bool(np.all(self.keys[at] == keys)) and bool(np.all(at[1:] > at[:-1])):
                self.sums[at] += sums
                return
        self.keys, self.sums = reduce_by_key(
            np.concatenate([self.keys, keys]), np.concatenate([self.sums, sums])
        )

    def dense(self, size: int, *, offset: int = 0) -> np.ndarray:
        """Sums as a dense ``(size, m)`` array indexed by ``key - offset`` (other keys dropped)."""
        out = np.zeros((size, len(self.names)))
        idx = self.keys - offset
        ok = (idx >= 0) & (idx < size)
        out[idx[ok]] = self.sums[ok]
        return out

    def column(self, name: str) -> np.ndarray:
        return self.sums[:, self.names.index(name)]


@dataclass
class Extent:
    """Running minimum, maximum and smallest positive value of one variable (NaNs ignored)."""

    lo: float = np.inf
    hi: float = -np.inf
    min_positive: float = np.inf
    n: int = 0

    def update(self, x: np.ndarray) -> None:
        x = x[np.isfinite(x)]
        if len(x) == 0:
            return
        self.n += len(x)
        self.lo = min(self.lo, float(x.min()))
        self.hi = max(self.hi, float(x.max()))
        pos = x[x > 0]
        if len(pos):
            self.min_positive = min(self.min_positive, float(pos.min()))

    def merge(self, other: Extent) -> None:
        self.n += other.n
        self.lo = min(self.lo, other.lo)
        self.hi = max(self.hi, other.hi)
        self.min_positive = min(self.min_positive, other.min_positive)


@dataclass
class Histogram:
    """Counts over fixed bin edges (right edge inclusive for the last bin), plus what fell out.

    ``below`` counts finite values under the first edge (e.g. zeros on a log axis), ``above``
    those over the last, ``missing`` nulls/NaNs.
    """

    edges: np.ndarray
    counts: np.ndarray = field(init=False)
    below: int = 0
    above: int = 0
    missing: int = 0

    def __post_init__(self) -> None:
        self.edges = np.asarray(self.edges, dtype=np.float64)
        self.counts = np.zeros(len(self.edges) - 1, dtype=np.int64)
        # Evenly spaced edges (linear or log) are binned by arithmetic, others by search.
        self._spacing = "search"
        steps = np.diff(self.edges)
        if len(steps) and np.allclose(steps, steps[0], rtol=1e-9, atol=0):
            self._spacing = "linear"
        elif self.edges[0] > 0 and np.allclose(
            np.diff(np.log(self.edges)), np.log(self.edges[1] / self.edges[0]), rtol=1e-9, atol=0
        ):
            self._spacing = "log"

    def _bins(self, x: np.ndarray) -> np.ndarray:
        k = len(self.counts)
        if self._spacing == "linear":
            idx = np.floor((x - self.edges[0]) / (self.edges[1] - self.edges[0]))
        elif self._spacing == "log":
            idx = np.floor(np.log(x / self.edges[0]) / np.log(self.edges[1] / self.edges[0]))
        else:
            return np.clip(np.searchsorted(self.edges, x, side="right") - 1, 0, k - 1)
        idx = np.clip(idx, 0, k - 1).astype(np.int64)
        # float rounding at an edge: move to the bin whose half-open interval holds x
        idx -= (idx > 0) & (x < self.edges[idx])
        idx += (idx < k - 1) & (x >= self.edges[np.minimum(idx + 1, k)])
        return idx

    def update(self, x: np.ndarray) -> None:
        finite = np.isfinite(x)
        self.missing += int(len(x) - finite.sum())
        x = x[finite]
        lo, hi = self.edges[0], self.edges[-1]
        self.below += int((x < lo).sum())
        self.above += int((x > hi).sum())
        x = x[(x >= lo) & (x <= hi)]
        self.counts += np.bincount(self._bins(x), minlength=len(self.counts))

    def merge(self, other: Histogram) -> None:
        if not np.array_equal(self.edges, other.edges):
            raise ValueError("cannot merge histograms with different bin edges")
        self.counts += other.counts
        self.below += other.below
        self.above += other.above
        self.missing += other.missing


def bin_index(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each value over ``edges`` (values outside clipped to the end bins; NaN -> -1)."""
    idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
    return np.where(np.isfinite(x), idx, -1)


def hash_ids(ids: pa.Array) -> np.ndarray:
    """64-bit hash of each (non-null) string: :func:`skipmodel.load.tracks.id_hash`, a few
    NumPy passes per 8 bytes. Only compared within one process, never stored."""
    return id_hash(ids)


def hash_tracks(
    track_ids: pa.Array | pa.ChunkedArray,
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Per-row 64-bit hashes (:func:`hash_ids`) of a track-id column, hashing each distinct id once.

    Returns
    -------
    row_hashes : numpy.ndarray
        uint64 per row (meaningless where ``valid`` is False).
    valid : numpy.ndarray
        False for null ids.
    distinct : tuple of numpy.ndarray
        The distinct ids' hashes and their counts in the column, for :class:`TrackCounter`.
    """
    if isinstance(track_ids, pa.ChunkedArray):
        track_ids = track_ids.combine_chunks()
    encoded = pc.dictionary_encode(track_ids)
    dict_hashes = hash_ids(encoded.dictionary)
    indices = encoded.indices
    valid = ~np.asarray(indices.is_null()) if indices.null_count else np.ones(len(indices), bool)
    idx = np.asarray(indices.fill_null(0) if indices.null_count else indices).astype(np.int64)
    counts = np.bincount(idx[valid], minlength=len(dict_hashes)).astype(np.int64)
    return dict_hashes[idx], valid, (dict_hashes, counts)


@dataclass
class TrackCounter:
    """Exact play counts per distinct track id, held as (64-bit hash, count) pairs.

    ``update`` takes one batch's distinct hashes and their counts (see :func:`hash_tracks`);
    they are buffered and compacted into the sorted table whenever the buffer outgrows it, so
    memory stays at ~16 bytes per distinct track.
    """

    hashes: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint64))
    counts: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    _pending: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    _pending_size: int = 0
    #: plays per row of a track table (see :meth:`update_rows`), folded in by ``_compact``
    _row_counts: np.ndarray | None = None
    _row_hashes: np.ndarray | None = None

    def update_rows(self, rows: np.ndarray, row_hashes: np.ndarray) -> None:
        """Count plays by their row in a track table whose ids hash to ``row_hashes``
        (one table per counter): a dense ``bincount``, no per-play hashing or sorting."""
        self.row_counts(row_hashes)[:] += np.bincount(rows, minlength=len(row_hashes))

    def row_counts(self, row_hashes: np.ndarray) -> np.ndarray:
        """The plays-per-row array of :meth:`update_rows` (to add to in place)."""
        if self._row_hashes is None:
            self._row_hashes = row_hashes
            self._row_counts = np.zeros(len(row_hashes), dtype=np.int64)
        elif self._row_hashes is not row_hashes:
            raise ValueError("a TrackCounter counts rows of one track table only")
        assert self._row_counts is not None
        return self._row_counts

    def update(self, hashes: np.ndarray, counts: np.ndarray) -> None:
        keep = counts > 0
        self._pending.append((hashes[keep], counts[keep]))
        self._pending_size += int(keep.sum())
        if self._pending_size > max(len(self.hashes), 1 << 20):
            self._compact()

    def update_ids(self, track_ids: pa.Array | pa.ChunkedArray) -> None:
        """Count a column of track ids (nulls ignored)."""
        self.update(*hash_tracks(track_ids)[2])

    def merge(self, other: TrackCounter) -> None:
        other._compact()
        self._pending.append((other.hashes, other.counts))
        self._pending_size += len(other.hashes)
        self._compact()

    def _compact(self) -> None:
        if self._row_counts is not None and self._row_hashes is not None:
            played = np.flatnonzero(self._row_counts)
            self._pending.append((self._row_hashes[played], self._row_counts[played]))
            self._row_counts = np.zeros_like(self._row_counts)
        if not self._pending:
            return
        h = np.concatenate([self.hashes, *(p[0] for p in self._pending)])
        c = np.concatenate([self.counts, *(p[1] for p in self._pending)])
        self._pending, self._pending_size = [], 0
        self.hashes, inverse = np.unique(h, return_inverse=True)
        self.counts = np.bincount(inverse, weights=c, minlength=len(self.hashes)).astype(np.int64)

    @property
    def n_tracks(self) -> int:
        self._compact()
        return len(self.hashes)

    def top(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Hashes and counts of the ``n`` most played tracks, by count (ties: by hash)."""
        self._compact()
        order = np.lexsort((self.hashes, -self.counts))[:n]
        return self.hashes[order], self.counts[order]


class TopTracks:
    """The top-N track hashes with their popularity ranks ``0..N-1``; maps hashes to ranks."""

    #: Bits of a hash that index the direct lookup table (top N is small: few collisions).
    SLOT_BITS = 16

    def __init__(self, top_hashes: np.ndarray) -> None:
        self.n = len(top_hashes)
        self.hashes = np.asarray(top_hashes, dtype=np.uint64)
        self.order = np.argsort(self.hashes)
        self.sorted_hashes = self.hashes[self.order]
        # slot -> rank, -1 empty, -2 shared by several top hashes (those go by binary search)
        self.mask = np.uint64((1 << self.SLOT_BITS) - 1)
        self.slots = np.full(1 << self.SLOT_BITS, -1, dtype=np.int64)
        for rank, h in enumerate(self.hashes):
            slot = int(h & self.mask)
            self.slots[slot] = rank if self.slots[slot] == -1 else -2

    def ranks(self, hashes: np.ndarray) -> np.ndarray:
        """Rank of each hash, ``-1`` for hashes outside the top N."""
        if self.n == 0:
            return np.full(len(hashes), -1, dtype=np.int64)
        hashes = np.asarray(hashes, dtype=np.uint64)
        slot = self.slots[(hashes & self.mask).astype(np.intp)]
        found = np.where(slot >= 0, slot, 0)
        ranks = np.where((slot >= 0) & (self.hashes[found] == hashes), slot, -1)
        shared = np.flatnonzero(slot == -2)
        if shared.size:
            h = hashes[shared]
            pos = np.clip(np.searchsorted(self.sorted_hashes, h), 0, self.n - 1)
            ranks[shared] = np.where(self.sorted_hashes[pos] == h, self.order[pos], -1)
        return ranks.astype(np.int64)


def _pattern_matrix(k: int) -> np.ndarray:
    """(2**k, 1 + k): for each bit pattern, a one (the count) then its k bits."""
    patterns = np.arange(1 << k)
    bits = (patterns[:, None] >> np.arange(k)[None, :]) & 1
    return np.column_stack([np.ones(1 << k), bits]).astype(np.float64)


def outcome_flags(columns: Sequence[np.ndarray]) -> np.ndarray:
    """Per row (int64), bit ``j`` set when ``columns[j]`` is true (at most 8 columns)."""
    n = len(columns[0]) if columns else 0
    flags = np.zeros(n, dtype=np.uint8)
    for j, c in enumerate(columns):
        flags |= np.asarray(c, dtype=np.uint8) << np.uint8(j)
    return flags.astype(np.int64)


def flag_totals(flags: np.ndarray, k: int) -> np.ndarray:
    """Sum of each of the ``k`` outcome bits over ``flags``."""
    return pattern_totals(np.bincount(flags, minlength=1 << k), k)


def pattern_totals(counts: np.ndarray, k: int) -> np.ndarray:
    """Sum of each of the ``k`` outcome bits, from the rows counted per bit pattern."""
    return counts.astype(np.float64) @ _pattern_matrix(k)[:, 1:]


def stack_flags(columns: Sequence[np.ndarray]) -> np.ndarray:
    """A (n, 1 + k) value matrix: a column of ones (the count) then the given 0/1 columns."""
    n = len(columns[0]) if columns else 0
    return np.column_stack([np.ones(n), *(np.asarray(c, dtype=np.float64) for c in columns)])
