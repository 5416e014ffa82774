"""The log pass's compiled loops (Numba) over plain arrays, each one pass over a bucket's plays.

The accumulators of :mod:`.plays` gather the arrays and fold the counts into their sums; this
module knows none of their classes, so it sits below them and loads (with Numba) only when the
log pass runs.

- :func:`count_plays`: the overview, calendar, previous-outcome and memory-in-chains counts.
  Done view by view in NumPy, each builds its own integer key array (a copy, a shift, a
  multiply, an add) before its ``bincount``: about 110 ns per play for the four. The loop
  increments small dense ``(key, outcome pattern)`` tables (a few kB, in cache) instead, about
  15 ns per play (:func:`skipmodel.explore.plays.update_bucket` folds them into the same
  :class:`~skipmodel.explore.accumulators.GroupSums` under the same keys).
- :func:`count_tracks_and_pairs`: plays per track by track row, and, once the transition
  candidates are fixed (:class:`~skipmodel.explore.transitions.TransitionSpill`), the
  transitions among them, with no per-play hash.
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

from skipmodel.explore.dates import HOURS_PER_DAY, MAX_DAYS_FROM_FILE_DAY

if TYPE_CHECKING:
    from skipmodel.explore.accumulators import TopTracks


@numba.njit(cache=True, nogil=True)
def count_plays(
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
    """Add every play to the count tables (see :func:`skipmodel.explore.plays.update_bucket`
    for the arguments).

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
def count_tracks_and_pairs(
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
