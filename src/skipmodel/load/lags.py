"""Within-session lag columns: what happened at the previous play(s) of the same session.

Works on one table holding whole sessions, sorted by ``(session_id, session_position)``, with
NumPy and Arrow kernels only (no Python loop over rows).

Rules (the store contract, ``DESIGN.md``, "Sampled loaders"):

* the lag-``k`` value of the play at position ``p`` comes from the row of the same session at
  position exactly ``p - k``; it is null at ``p <= k`` and whenever that position is absent from
  the stored session (sessions can have missing positions: a lag never comes from a non-adjacent
  row);
* duplicate ``(session_id, session_position)`` rows: when position ``p - k`` occurs more than once
  in the session, the lag is null (the previous play is ambiguous). The duplicated rows themselves
  are kept and each gets the lags of its own position. This rule depends only on the rows, not on
  their order in the files, so it is the same for every store layout.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from skipmodel.store.schema import SKIP_OUTCOMES

#: The log columns every lag level copies from the earlier play.
LAG_OUTCOMES: tuple[str, ...] = SKIP_OUTCOMES
#: Extra log columns copied only at lag 1.
LAG1_EXTRA: tuple[str, ...] = ("hist_user_behavior_reason_end", "track_id_clean")

# Positions are int8 in the store, so an offset of 256 per session keeps keys of different
# sessions apart.
_POSITION_SPAN = np.int64(512)
_POSITION_SHIFT = np.int64(256)


def lag_prefix(k: int) -> str:
    """``prev_`` for lag 1, ``prev2_`` for lag 2."""
    return "prev_" if k == 1 else f"prev{k}_"


def session_codes(session_ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Dense 0-based code of each row's session, for ids already grouped (sorted)."""
    n = len(session_ids)
    codes = np.zeros(n, dtype=np.int64)
    if n > 1:
        changed = pc.not_equal(session_ids[1:], session_ids[:-1])
        np.cumsum(changed.to_numpy(zero_copy_only=False), out=codes[1:])
    return codes


def session_keys(codes: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """One int64 per row ordering rows by (session code, position): ``code * 512 + position + 256``."""
    return codes.astype(np.int64) * _POSITION_SPAN + positions.astype(np.int64) + _POSITION_SHIFT


def split_keys(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, positions)`` back from :func:`session_keys`."""
    return keys // _POSITION_SPAN, keys % _POSITION_SPAN - _POSITION_SHIFT


def lag_rows(keys: np.ndarray, positions: np.ndarray, k: int) -> np.ndarray:
    """Row index of the play ``k`` positions earlier in the same session, -1 when none.

    ``keys`` from :func:`session_keys`, non-decreasing. A lag exists only when exactly one row
    holds ``(session, position - k)`` and ``position > k``. Linear time: rows of equal key form
    runs, and the target run can only be one of the ``k`` runs just before a row's own run.
    """
    n = keys.size
    if n > 1 and bool(np.all(keys[1:] > keys[:-1])):
        # no duplicated position: position p - k, if stored, is one of the k rows before
        found = np.full(n, -1, dtype=np.int64)
        for j in range(1, k + 1):
            hit = keys[: n - j] == keys[j:] - k
            found[j:][hit] = np.flatnonzero(hit)
        found[positions.astype(np.int64) <= k] = -1
        return found
    index = np.arange(n)
    new_run = np.ones(n, dtype=bool)
    new_run[1:] = keys[1:] != keys[:-1]
    run_start = np.maximum.accumulate(np.where(new_run, index, 0))
    target = keys - k
    found = np.full(n, -1, dtype=np.int64)
    last = run_start - 1  # last row of the run before each row's run
    for _ in range(k):
        live = last >= 0
        at = np.where(live, last, 0)
        key = keys[at]
        hit = live & (key == target) & (found < 0)
        # the run must be one row long: a duplicated previous position gives no lag
        found = np.where(hit & (run_start[at] == at), at, found)
        # step back one more run while still above the target (a closer position exists)
        last = np.where(live & (key > target), run_start[at] - 1, -1)
    found[positions.astype(np.int64) <= k] = -1
    return found


def lag_source(codes: np.ndarray, positions: np.ndarray, k: int) -> pa.Array:
    """Row index of the play ``k`` positions earlier in the same session, null when none.

    Parameters
    ----------
    codes : numpy.ndarray of int64
        Session code per row (non-decreasing).
    positions : numpy.ndarray of int
        ``session_position`` per row, non-decreasing within a session.
    k : int
        The lag (1 or 2).

    Returns
    -------
    pyarrow.Array of int64
        Index of the unique row at ``(session, position - k)``; null when that position is
        absent or duplicated.
    """
    rows = lag_rows(session_keys(codes, positions), positions, k)
    return as_take_indices(rows)


def as_take_indices(rows: np.ndarray) -> pa.Array:
    """Row indices with -1 for "none" as an Arrow int64 array with nulls there (for ``take``)."""
    missing = rows < 0
    return pa.array(np.where(missing, 0, rows), type=pa.int64(), mask=missing)


def append_lags(
    table: pa.Table, sources: Sequence[pa.Array], lag_features: Sequence[str] = ()
) -> pa.Table:
    """Append the lag columns given the lag-``k`` source rows ``sources[k - 1]`` of each row."""
    for k, source in enumerate(sources, start=1):
        names = (*LAG_OUTCOMES, *LAG1_EXTRA, *lag_features) if k == 1 else LAG_OUTCOMES
        for name in names:
            column = table.column(name)
            table = table.append_column(f"{lag_prefix(k)}{name}", column.take(source))
    return table


def add_lags(
    table: pa.Table,
    *,
    lags: int,
    lag_features: Sequence[str] = (),
) -> pa.Table:
    """Append the lag columns to ``table`` (whole sessions, sorted by session and position).

    Parameters
    ----------
    table : pyarrow.Table
        Must hold ``session_id``, ``session_position``, the skip outcomes, and for ``lags >= 1``
        ``hist_user_behavior_reason_end``, ``track_id_clean`` and every column of
        ``lag_features``.
    lags : int
        0, 1 or 2.
    lag_features : sequence of str
        Track-feature columns copied at lag 1 as ``prev_<feature>``.

    Returns
    -------
    pyarrow.Table
        ``table`` with ``prev_skip_1 .. prev_not_skipped, prev_hist_user_behavior_reason_end,
        prev_track_id_clean, prev_<feature>...`` and, for ``lags == 2``, ``prev2_skip_1 ..
        prev2_not_skipped``.
    """
    if lags <= 0:
        return table
    codes = session_codes(table.column("session_id"))
    positions = table.column("session_position").to_numpy()
    sources = [lag_source(codes, positions, k) for k in range(1, lags + 1)]
    return append_lags(table, sources, lag_features)


def lag_column_names(lags: int, lag_features: Sequence[str] = ()) -> list[str]:
    """The names :func:`add_lags` appends, in order."""
    names: list[str] = []
    for k in range(1, lags + 1):
        base = (*LAG_OUTCOMES, *LAG1_EXTRA, *lag_features) if k == 1 else LAG_OUTCOMES
        names += [f"{lag_prefix(k)}{n}" for n in base]
    return names
