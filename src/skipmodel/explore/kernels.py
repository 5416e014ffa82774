"""The log pass's compiled loops (Numba), each one pass over a whole bucket's plays.

- :func:`update_bucket`: the overview, calendar, previous-outcome and memory-in-chains sums.
  Done view by view in NumPy, each builds its own integer key array (a copy, a shift, a
  multiply, an add) before its ``bincount``: about 110 ns per play for the four. The loop
  increments small dense ``(key, outcome pattern)`` tables (a few kB, in cache) instead, about
  15 ns per play, and folds them into the same
  :class:`~skipmodel.explore.accumulators.GroupSums` under the same keys.
- :func:`count_tracks_and_transitions`: plays per track by track row, and, once the transition
  candidates are fixed (:class:`~skipmodel.explore.plays.TransitionSpill`), the transitions
  among them, with no per-play hash.
- :func:`count_top_pairs`: the replay of the transitions spill, each hash pair ranked by the
  slot table of :class:`~skipmodel.explore.accumulators.TopTracks`.
- :func:`bitmap_flags`: the outcome bit patterns of :func:`.accumulators.outcome_flags`, read
  straight from the Arrow bitmaps.

The numbers are those of the NumPy accumulators exactly (``tests/test_explore_buckets.py``
compares the two paths, ``skipmodel.explore.plays.FUSED`` switches). Numba compiles each loop
on first use and caches the machine code (``NUMBA_CACHE_DIR`` if set, as the Makefile does,
else ``__pycache__`` beside this file).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numba
import numpy as np
import pyarrow as pa

from skipmodel.explore.accumulators import pattern_totals
from skipmodel.explore.dates import MAX_DAYS_FROM_FILE_DAY, session_stray_mask
from skipmodel.explore.plays import HOURS_PER_DAY, POSITION_STRIDE
from skipmodel.store.schema import SKIP_OUTCOMES

if TYPE_CHECKING:
    from skipmodel.explore.accumulators import TopTracks
    from skipmodel.explore.plays import BucketPlays, LogPass

#: Outcome bit patterns (``SKIP_OUTCOMES`` as bits): the second axis of every count table.
PATTERNS = 1 << len(SKIP_OUTCOMES)
#: A bucket whose (day, hour) table would hold more cells than this (dates spread over
#: decades) goes the NumPy way instead.
MAX_DAY_HOUR_CELLS = 1 << 18


@numba.njit(cache=True, nogil=True)
def _count(
    flags: np.ndarray,
    hour: np.ndarray,
    hour_lo: int,
    position: np.ndarray,
    position_lo: int,
    days: np.ndarray,
    day_lo: int,
    ok: np.ndarray,
    sources: np.ndarray,
    source_days: np.ndarray,
    lag: np.ndarray,
    track_rows: np.ndarray,
    codes: np.ndarray,
    n_bins: int,
    skip_bit: int,
    by_hour: np.ndarray,
    by_position: np.ndarray,
    by_day_hour: np.ndarray,
    previous: np.ndarray,
    chains: np.ndarray,
    totals: np.ndarray,
) -> None:
    """Add every play to the count tables (see :func:`update_bucket` for the arguments).

    ``codes``: per track row, the chains bin of its feature, -1 when the feature is missing
    (one small table: a random read per play instead of two). ``totals``: [file-day strays,
    feature missing, chains without previous]. A table of size 0 in its first axis is skipped;
    ``sources`` of size 0 means "use ``ok``" (session rule).
    """
    use_sources = len(sources) > 0
    want_day_hour = by_day_hour.shape[0] > 0
    want_previous = previous.shape[0] > 0
    want_chains = chains.shape[0] > 0
    strays = 0
    without_feature = 0
    without_previous = 0
    for i in range(len(flags)):
        f = flags[i]
        p = position[i]
        h = hour[i]
        by_hour[h - hour_lo, f] += 1
        by_position[p - position_lo, f] += 1
        d = days[i]
        if use_sources:
            good = abs(d - source_days[sources[i]]) <= MAX_DAYS_FROM_FILE_DAY
            if not good:
                strays += 1
        else:
            good = ok[i]
        if want_day_hour and good:
            by_day_hour[(d - day_lo) * HOURS_PER_DAY + h, f] += 1
        j = lag[i]
        current = codes[track_rows[i]]  # row -1 reads the trailing entry: "no features"
        if current < 0:
            without_feature += 1
        if want_previous:
            if p == 1:
                state = 0
            elif j < 0:
                state = 1
            else:
                state = 3 - ((flags[j] >> skip_bit) & 1)
            previous[state, p - position_lo, f] += 1
        if want_chains:
            before = codes[track_rows[j]] if j >= 0 else -1
            if current >= 0 and before >= 0:
                chains[before * n_bins + current, f] += 1
            else:
                without_previous += 1
    totals[0] += strays
    totals[1] += without_feature
    totals[2] += without_previous


def _span(values: np.ndarray) -> tuple[int, int]:
    return int(values.min()), int(values.max()) - int(values.min()) + 1


def update_bucket(log: LogPass, b: BucketPlays) -> bool:
    """Add ``b`` to ``log``'s overview, calendar, previous-outcome and chains accumulators;
    False (nothing added) when the bucket needs the NumPy path (dates spread over decades,
    hours below 0, or a summary feature other than the chains feature)."""
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
    codes = b.features.codes(overview.feature_column, chains)
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
    _count(
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


@numba.njit(cache=True, nogil=True)
def _search(h: np.uint64, sorted_hashes: np.ndarray, order: np.ndarray) -> int:
    """Rank of ``h`` by binary search (for slots shared by several top hashes), -1 if absent."""
    lo, hi = 0, len(sorted_hashes)
    while lo < hi:
        mid = (lo + hi) // 2
        if sorted_hashes[mid] < h:
            lo = mid + 1
        else:
            hi = mid
    if lo < len(sorted_hashes) and sorted_hashes[lo] == h:
        return order[lo]
    return -1


@numba.njit(cache=True, nogil=True)
def _count_pairs(
    previous: np.ndarray,
    following: np.ndarray,
    slots: np.ndarray,
    mask: np.uint64,
    hashes: np.ndarray,
    sorted_hashes: np.ndarray,
    order: np.ndarray,
    counts: np.ndarray,
) -> None:
    n = len(hashes)
    # The slot lookup is written out for both tracks: as a shared @njit helper (inlined or
    # not) the loop ran 3.5x slower (0.18 s against 0.05 s for 4.9 M pairs).
    for i in range(len(previous)):
        h = previous[i]
        a = slots[h & mask]
        if a == -2:
            a = _search(h, sorted_hashes, order)
        elif a >= 0 and hashes[a] != h:
            a = -1
        if a < 0:
            continue
        g = following[i]
        b = slots[g & mask]
        if b == -2:
            b = _search(g, sorted_hashes, order)
        elif b >= 0 and hashes[b] != g:
            b = -1
        if b >= 0:
            counts[a * n + b] += 1


def count_top_pairs(
    previous: np.ndarray, following: np.ndarray, top: TopTracks, counts: np.ndarray
) -> None:
    """Add to ``counts`` (N * N, int64) each pair ``(previous[i], following[i])`` of uint64
    track hashes whose two tracks are both among ``top``, at ``rank(previous) * N +
    rank(following)``."""
    if top.n == 0 or not len(previous):
        return
    _count_pairs(
        previous,
        following,
        top.slots,
        top.mask,
        top.hashes,
        top.sorted_hashes,
        top.order,
        counts,
    )


@numba.njit(cache=True, nogil=True)
def _flags(bitmaps: tuple[np.ndarray, ...], offsets: np.ndarray, out: np.ndarray) -> None:
    for j in range(len(bitmaps)):
        bits, offset = bitmaps[j], offsets[j]
        for i in range(len(out)):
            k = offset + i
            out[i] |= ((bits[k >> 3] >> (k & 7)) & 1) << j


def bitmap_flags(columns: list[pa.Array]) -> np.ndarray | None:
    """Per play (uint8), bit ``j`` set when ``columns[j]`` is true, read straight from the
    Arrow bitmaps; None when a column has nulls (the NumPy path decides those)."""
    if not columns or len(columns) > 8 or any(c.null_count for c in columns):
        return None
    n = len(columns[0])
    out = np.zeros(n, dtype=np.uint8)
    if n:
        bitmaps = tuple(np.frombuffer(c.buffers()[1], dtype=np.uint8) for c in columns)
        _flags(bitmaps, np.array([c.offset for c in columns], dtype=np.int64), out)
    return out


@numba.njit(cache=True, nogil=True)
def _tracks_and_pairs(
    codes: np.ndarray,
    track_rows: np.ndarray,
    lag: np.ndarray,
    row_counts: np.ndarray,
    unknown: np.ndarray,
    row_ranks: np.ndarray,
    entry_ranks: np.ndarray,
    counts: np.ndarray,
) -> int:
    """Plays per track (by track row, else by dictionary entry ``codes[i]``) and, when
    ``row_ranks`` is given, the transitions among the candidates: a play's candidate rank is
    ``row_ranks[track row]``, or ``entry_ranks[code]`` for a track without a row (-1: not a
    candidate). Returns the number of transitions."""
    count_pairs = len(row_ranks) > 0
    n = int(np.sqrt(len(counts))) if count_pairs else 0
    transitions = 0
    previous = -1  # the rank of the play on the row before
    for i in range(len(track_rows)):
        r = track_rows[i]
        if r >= 0:
            row_counts[r] += 1
            rank = row_ranks[r] if count_pairs else -1
        else:
            unknown[codes[i]] += 1
            rank = entry_ranks[codes[i]] if count_pairs else -1
        j = lag[i]
        if j >= 0:
            transitions += 1
            if count_pairs:
                if j == i - 1:
                    a = previous
                elif track_rows[j] >= 0:
                    a = row_ranks[track_rows[j]]
                else:
                    a = entry_ranks[codes[j]]
                if a >= 0 and rank >= 0:
                    counts[a * n + rank] += 1
        previous = rank
    return transitions


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
    transitions = _tracks_and_pairs(
        codes, track_rows, b.lag, row_counts, unknown, row_ranks, entry_ranks, table
    )
    if unknown.any():
        log.tracks.update(b.entry_hashes() if entry_hashes is None else entry_hashes, unknown)
    if spill is not None:
        spill.transitions += transitions
    return True
