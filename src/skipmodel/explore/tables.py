"""Turn the accumulators into the small tables behind each figure (one row per plotted point).

These tables are what the CSV files hold and what the figures draw; they have at most a few
thousand rows whatever the data size, so pandas is fine here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from skipmodel.explore.accumulators import GroupSums
from skipmodel.explore.dates import HOURS_PER_DAY, core_span, plausible_days
from skipmodel.explore.passes import TransitionCounts
from skipmodel.explore.plays import (
    POSITION_STRIDE,
    PREVIOUS_STATES,
    VALUE_NAMES,
    Calendar,
    Chains,
    PreviousOutcome,
)
from skipmodel.explore.stats import autocorrelation, periodogram, wilson_interval
from skipmodel.explore.trackpass import FeatureScale, TrackPass
from skipmodel.store.schema import WEEKDAYS

#: The daily series, its autocorrelation and periodogram are shown from this many days on.
MIN_DAYS_DAILY = 14
#: The hourly series' autocorrelation and periodogram need at least this many days.
MIN_DAYS_HOURLY = 3
HOURS_PER_WEEK = 7 * HOURS_PER_DAY


def rate_columns(n: np.ndarray, k: np.ndarray) -> dict[str, np.ndarray]:
    """``n``, ``skipped``, ``rate`` and the 95 % Wilson bounds for counts ``k`` of ``n``."""
    lo, hi = wilson_interval(k, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(n > 0, k / np.where(n > 0, n, 1), np.nan)
    return {
        "n": n.astype(np.int64),
        "skipped": k.astype(np.int64),
        "rate": rate,
        "ci_low": lo,
        "ci_high": hi,
    }


def _nk(sums: np.ndarray, skip: str) -> tuple[np.ndarray, np.ndarray]:
    return sums[:, 0], sums[:, VALUE_NAMES.index(skip)]


def weekday_of(days: np.ndarray) -> np.ndarray:
    """Monday = 0 for integer days since 1970-01-01 (a Thursday)."""
    return (np.asarray(days) + 3) % 7


def day_of_month(days: np.ndarray) -> np.ndarray:
    d = np.asarray(days).astype("datetime64[D]")
    return (d - d.astype("datetime64[M]")).astype(np.int64) + 1


@dataclass(frozen=True)
class CalendarTables:
    """Date-based sums after both implausible-date rules, plus the counts they excluded."""

    day_hour: GroupSums
    span: tuple[int, int] | None
    session_strays: int
    span_strays: int
    file_day_strays: int = 0

    @classmethod
    def build(cls, calendar: Calendar) -> CalendarTables:
        dh = calendar.by_day_hour
        days = dh.keys // HOURS_PER_DAY
        per_day = GroupSums(VALUE_NAMES)
        per_day.update(days, dh.sums)
        if calendar.session_rule_rows == 0 and len(per_day.keys):
            # every play was judged against its own file's day: no busy-day guess needed
            span: tuple[int, int] | None = (int(per_day.keys.min()), int(per_day.keys.max()))
            good_days = per_day.keys
        else:
            span = core_span(per_day.keys, per_day.column("n"))
            good_days = per_day.keys[plausible_days(per_day.keys, per_day.column("n"))]
        inside = np.isin(days, good_days)
        kept = GroupSums(VALUE_NAMES)
        kept.update(dh.keys[inside], dh.sums[inside])
        strays = int(dh.column("n")[~inside].sum())
        return cls(kept, span, calendar.session_strays, strays, calendar.file_day_strays)

    @property
    def days(self) -> np.ndarray:
        return self.day_hour.keys // HOURS_PER_DAY

    @property
    def n_days(self) -> int:
        return 0 if self.span is None else self.span[1] - self.span[0] + 1

    def grouped(self, keys: np.ndarray, size: int, offset: int = 0) -> np.ndarray:
        g = GroupSums(VALUE_NAMES)
        g.update(keys, self.day_hour.sums)
        return g.dense(size, offset=offset)


def seasonality_table(calendar: Calendar, cal: CalendarTables, skip: str) -> pd.DataFrame:
    """Long table: panel (weekday, day_of_month, hour, position), level, label and rates."""
    parts = []
    panels = {
        "weekday": (cal.grouped(weekday_of(cal.days), 7), np.arange(7), list(WEEKDAYS)),
        "day_of_month": (cal.grouped(day_of_month(cal.days), 32)[1:], np.arange(1, 32), None),
        "hour": (calendar.by_hour.dense(24), np.arange(24), None),
    }
    max_pos = int(calendar.by_position.keys.max()) if len(calendar.by_position.keys) else 0
    panels["position"] = (
        calendar.by_position.dense(max_pos, offset=1),
        np.arange(1, max_pos + 1),
        None,
    )
    for panel, (sums, levels, labels) in panels.items():
        keep = sums[:, 0] > 0
        frame = pd.DataFrame(
            {
                "panel": panel,
                "level": levels[keep],
                "label": np.array(labels if labels else [str(v) for v in levels])[keep],
                **rate_columns(*_nk(sums[keep], skip)),
            }
        )
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def previous_table(prev: PreviousOutcome, skip: str) -> pd.DataFrame:
    keys = prev.sums.keys
    state, position = keys // POSITION_STRIDE, keys % POSITION_STRIDE
    return pd.DataFrame(
        {
            "previous": np.array(PREVIOUS_STATES)[state],
            "position": position,
            **rate_columns(*_nk(prev.sums.sums, skip)),
        }
    )


def chains_table(chains: Chains, skip: str, *, min_count: int) -> pd.DataFrame:
    b = chains.bins
    sums = chains.sums.dense(b * b)
    prev_bin, cur_bin = np.divmod(np.arange(b * b), b)
    e = chains.edges
    frame = pd.DataFrame(
        {
            "prev_bin": prev_bin,
            "current_bin": cur_bin,
            "prev_low": e[prev_bin],
            "prev_high": e[prev_bin + 1],
            "current_low": e[cur_bin],
            "current_high": e[cur_bin + 1],
            **rate_columns(*_nk(sums, skip)),
        }
    )
    frame["masked"] = frame["n"] < min_count
    return frame


def transitions_tables(tr: TransitionCounts) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The nonzero cells (prev_rank, next_rank, count; ranks from 1) and the ranked tracks."""
    prev, nxt = np.nonzero(tr.counts)
    counts = pd.DataFrame(
        {"prev_rank": prev + 1, "next_rank": nxt + 1, "count": tr.counts[prev, nxt]}
    )
    tracks = pd.DataFrame(
        {
            "rank": np.arange(1, len(tr.plays) + 1),
            "track_id": tr.labels,
            "plays": np.asarray(tr.plays, dtype=np.int64),
            "transitions_out": tr.counts.sum(axis=1),
            "transitions_in": tr.counts.sum(axis=0),
        }
    )
    if tr.order_by:
        tracks[tr.order_by] = tr.order_values
    return counts, tracks


def duration_table(tp: TrackPass) -> pd.DataFrame:
    g = tp.by_duration
    n, s, ss = g.sums[:, 0], g.sums[:, 1], g.sums[:, 2]
    mean = s / n
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.where(n > 1, (ss - n * mean**2) / np.where(n > 1, n - 1, 1), np.nan)
    sd = np.sqrt(np.clip(var, 0, None))
    return pd.DataFrame(
        {
            "duration_s": g.keys * tp.duration_step,
            "tracks": n.astype(np.int64),
            "mean": mean,
            "sd": sd,
            "se": sd / np.sqrt(n),
        }
    )


def histogram_table(tp: TrackPass, scales: dict[str, FeatureScale]) -> pd.DataFrame:
    parts = []
    for f, hist in tp.histograms.items():
        parts.append(
            pd.DataFrame(
                {
                    "feature": f,
                    "bin_left": hist.edges[:-1],
                    "bin_right": hist.edges[1:],
                    "tracks": hist.counts,
                    "log_scale": scales[f].log,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def histogram_outside_table(tp: TrackPass) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "feature": list(tp.histograms),
            "below_range_or_nonpositive": [h.below for h in tp.histograms.values()],
            "above_range": [h.above for h in tp.histograms.values()],
            "missing": [h.missing for h in tp.histograms.values()],
        }
    )


def daily_table(cal: CalendarTables, skip: str) -> pd.DataFrame:
    if cal.span is None:
        return pd.DataFrame(columns=["date", *rate_columns(np.zeros(0), np.zeros(0))])
    lo, n_days = cal.span[0], cal.n_days
    sums = cal.grouped(cal.days, n_days, offset=lo)
    dates = (np.arange(n_days) + lo).astype("datetime64[D]")
    return pd.DataFrame({"date": dates.astype(str), **rate_columns(*_nk(sums, skip))})


def hour_of_week_table(cal: CalendarTables, skip: str) -> pd.DataFrame:
    how = weekday_of(cal.days) * HOURS_PER_DAY + cal.day_hour.keys % HOURS_PER_DAY
    sums = cal.grouped(how, HOURS_PER_WEEK)
    idx = np.arange(HOURS_PER_WEEK)
    return pd.DataFrame(
        {
            "hour_of_week": idx,
            "weekday": np.array(WEEKDAYS)[idx // HOURS_PER_DAY],
            "hour": idx % HOURS_PER_DAY,
            **rate_columns(*_nk(sums, skip)),
        }
    )


def hourly_series(cal: CalendarTables, skip: str) -> np.ndarray:
    """Skip rate per consecutive hour over the core span (NaN where no plays)."""
    if cal.span is None:
        return np.zeros(0)
    size = cal.n_days * HOURS_PER_DAY
    sums = cal.day_hour.dense(size, offset=cal.span[0] * HOURS_PER_DAY)
    n, k = _nk(sums, skip)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, k / np.where(n > 0, n, 1), np.nan)


def spectral_tables(
    rate: np.ndarray, *, max_lag: int, unit: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ACF and periodogram of a rate series; gaps (NaN) are filled with the series mean."""
    x = np.where(np.isnan(rate), np.nanmean(rate) if np.isfinite(rate).any() else 0.0, rate)
    acf = autocorrelation(x, max_lag)
    freq, power = periodogram(x)
    return (
        pd.DataFrame({f"lag_{unit}": np.arange(len(acf)), "acf": acf}),
        pd.DataFrame(
            {f"period_{unit}": 1.0 / freq, "frequency_per_" + unit[:-1]: freq, "power": power}
        ),
    )
