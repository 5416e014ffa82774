"""Which play dates are implausible, by documented rules.

Real MSSD files are one day each, yet some rows carry dates weeks or months earlier (seen: back
to 2018-05-12 in files of mid-July).

0. **File-day rule** (the rule ``skipmodel ingest`` counts as ``dates_far_from_file_day``): a
   play is implausible when its date is more than :data:`MAX_DAYS_FROM_FILE_DAY` (1) day from
   its file's day (the day in the file name, else the file's most common date, as recorded in
   the manifest). A compacted store keeps each row's source, so explore applies this rule
   wherever it can, and then explore and ingest flag the same plays.

Where a row's file is not known (a store written before compaction, or a bucket not yet
compacted), the rules are stated on what the store does know:

1. **Session rule** (applied per batch, a session never spans two batches): a play is
   implausible when its date is more than :data:`MAX_DAYS_FROM_SESSION_MODE` (1) day away from
   the most common date of its session (ties: the later date). A session that crosses midnight
   keeps both days.
2. **Busy-day rule** (applied after the pass, on per-day counts of the plays that passed rule 1;
   skipped when every play was judged by rule 0):
   a day is *busy* when it has at least :data:`BUSY_SHARE` (5 %) of the plays of the busiest
   day; a play is implausible when its date is more than 1 day from every busy day. File days
   are busy (a real file holds millions of plays of its day), stray dates are not (a few per
   day, spread over weeks), and the day after a file's day (sessions crossing midnight) is kept.
   The *core span* is then the first to the last plausible day.

Implausible plays are excluded from the date-based panels (weekday, day of month, the daily
and hourly series, hour of week) and counted in the summary; hour-of-day and position panels
use every play.
"""

from __future__ import annotations

import numpy as np

#: (day, hour) keys are ``day * HOURS_PER_DAY + hour``.
HOURS_PER_DAY = 24
MAX_DAYS_FROM_SESSION_MODE = 1
MAX_DAYS_FROM_FILE_DAY = 1
BUSY_SHARE = 0.05
MAX_DAYS_FROM_BUSY_DAY = 1


def file_day_stray_mask(days: np.ndarray, file_days: np.ndarray) -> np.ndarray:
    """True for plays more than one day from their file's day (rule 0; ingest's rule)."""
    return np.abs(days.astype(np.int64) - file_days.astype(np.int64)) > MAX_DAYS_FROM_FILE_DAY


def session_starts(session_ids_differ: np.ndarray) -> np.ndarray:
    """Row index where each session starts, from ``id[i] != id[i-1]`` for ``i >= 1``."""
    return np.concatenate([[0], np.flatnonzero(session_ids_differ) + 1]).astype(np.int64)


def session_stray_mask(days: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """True for plays more than one day from their session's most common date (rule 1).

    Parameters
    ----------
    days : numpy.ndarray
        Date of each play as integer days since 1970-01-01, rows grouped by session.
    starts : numpy.ndarray
        Start row of each session (see :func:`session_starts`).
    """
    n = len(days)
    stray = np.zeros(n, dtype=bool)
    if n == 0:
        return stray
    days = days.astype(np.int64)
    lo = np.minimum.reduceat(days, starts)
    hi = np.maximum.reduceat(days, starts)
    wide = hi - lo > MAX_DAYS_FROM_SESSION_MODE
    if not wide.any():
        return stray
    session = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, n)))
    rows = wide[session]
    s, d = session[rows], days[rows]
    base, span = int(d.min()), int(d.max() - d.min()) + 1
    keys, counts = np.unique(s * span + (d - base), return_counts=True)
    ks, kd = keys // span, keys % span
    order = np.lexsort((kd, counts, ks))  # by session, then count, then date: last = the mode
    ks, kd = ks[order], kd[order]
    last = np.append(ks[1:] != ks[:-1], True)
    mode_session, mode_day = ks[last], kd[last] + base
    mode_of_row = mode_day[np.searchsorted(mode_session, s)]
    stray[rows] = np.abs(d - mode_of_row) > MAX_DAYS_FROM_SESSION_MODE
    return stray


def plausible_days(days: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Which of the given days pass the busy-day rule (rule 2), from per-day play counts."""
    days = np.asarray(days, dtype=np.int64)
    counts = np.asarray(counts, dtype=np.float64)
    if len(days) == 0 or counts.max() <= 0:
        return np.zeros(len(days), dtype=bool)
    busy = np.sort(days[counts >= BUSY_SHARE * counts.max()])
    pos = np.searchsorted(busy, days)
    left = np.abs(days - busy[np.clip(pos - 1, 0, len(busy) - 1)])
    right = np.abs(busy[np.clip(pos, 0, len(busy) - 1)] - days)
    return np.minimum(left, right) <= MAX_DAYS_FROM_BUSY_DAY


def core_span(days: np.ndarray, counts: np.ndarray) -> tuple[int, int] | None:
    """First and last plausible day under rule 2 (None when there are no plays)."""
    days = np.asarray(days, dtype=np.int64)
    ok = plausible_days(days, counts)
    if not ok.any():
        return None
    return int(days[ok].min()), int(days[ok].max())
