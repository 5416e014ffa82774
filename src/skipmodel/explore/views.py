"""Each view as tables + one figure + a one-line caption, built from the pass results."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from skipmodel.explore import figures, tables
from skipmodel.explore.passes import CHAINS_SCALE, Results


@dataclass
class View:
    """One rendered view: ``name.png`` plus ``name[_part].csv`` for each table."""

    name: str
    title: str
    caption: str
    figure: Figure
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


def _rows(n: float) -> str:
    return f"{int(n):,}"


def feature_histograms(r: Results) -> View:
    assert r.tracks is not None
    scales = {f: s for f, s in r.scales.items() if f != CHAINS_SCALE}
    hist = tables.histogram_table(r.tracks, scales)
    outside = tables.histogram_outside_table(r.tracks)
    logs = [f for f, s in scales.items() if s.log]
    caption = (
        f"Histogram of every numeric track feature over the tracks table ({_rows(r.tracks.tracks)} tracks); "
        f"log x axis for the heavy-tailed {', '.join(logs) or 'none'} (values ≤ 0 counted in the _outside table)."
    )
    return View(
        "feature_histograms",
        "Track-feature histograms",
        caption,
        figures.histograms_figure(hist, scales),
        {"": hist, "outside": outside},
    )


def feature_by_duration(r: Results) -> View:
    assert r.tracks is not None
    o = r.options
    t = tables.duration_table(r.tracks)
    caption = (
        f"Mean {o.duration_feature} against duration rounded to {o.duration_step:g} s, point size and colour = tracks per bin, "
        f"band ± 1.96 SE; {_rows(t['tracks'].sum())} tracks with both values."
    )
    return View(
        "feature_by_duration",
        f"{o.duration_feature} by duration",
        caption,
        figures.duration_figure(t, o.duration_feature, o.duration_step),
        {"": t},
    )


def transitions(r: Results) -> View:
    tr = r.transitions
    assert tr is not None
    o = r.options
    counts, ranked = tables.transitions_tables(tr)
    n = len(tr.plays)
    if o.order_by:
        values = np.where(np.isnan(tr.order_values), np.inf, tr.order_values)
        order = np.lexsort((np.arange(n), values))
        axis_label = f"ordered by {o.order_by} (tick = popularity rank)"
        tick_ranks = order + 1
    else:
        order = np.arange(n)
        axis_label = "popularity rank (1 = most played)"
        tick_ranks = None
    title = f"Transitions among the {n} most played tracks"
    fig = figures.transitions_figure(tr.counts, order=order, axis_label=axis_label, title=title)
    if tick_ranks is not None and n:
        for ax in fig.axes[:1]:
            ticks = [int(t) for t in ax.get_xticks() if 1 <= t <= n]
            ax.set_xticks(ticks)
            ax.set_xticklabels([str(tick_ranks[t - 1]) for t in ticks])
            ax.set_yticks(ticks)
            ax.set_yticklabels([str(tick_ranks[t - 1]) for t in ticks])
    inside = int(tr.counts.sum())
    caption = (
        f"Consecutive plays p → p+1 within a session among the top {n} tracks by play count "
        f"({_rows(inside)} of {_rows(tr.total)} transitions), log colour scale; "
        f"ranks map to track ids in transitions_tracks.csv."
    )
    return View(
        "transitions",
        "Transitions between tracks",
        caption,
        fig,
        {"counts": counts, "tracks": ranked},
    )


def _calendar(r: Results) -> tables.CalendarTables:
    return tables.CalendarTables.build(r.log.calendar)


def seasonality(r: Results) -> View:
    cal = _calendar(r)
    o = r.options
    t = tables.seasonality_table(r.log.calendar, cal, o.skip)
    excluded = cal.session_strays + cal.span_strays + cal.file_day_strays
    caption = (
        f"{o.skip} rate by weekday, day of month, hour and position with 95 % Wilson intervals on {_rows(r.log.overview.rows)} plays; "
        f"{_rows(excluded)} plays with implausible dates left out of the weekday and day-of-month panels."
    )
    return View(
        "seasonality",
        "Skip seasonality",
        caption,
        figures.seasonality_figure(t, o.skip, excluded=excluded),
        {"": t},
    )


def memory_in_chains(r: Results) -> View:
    ch = r.log.chains
    assert ch is not None
    o = r.options
    t = tables.chains_table(ch, o.skip, min_count=o.min_count)
    total_n, total_k = t["n"].sum(), t["skipped"].sum()
    centre = float(total_k / total_n) if total_n else 0.5
    scale = r.scales[CHAINS_SCALE]
    fig = figures.chains_figure(
        t, o.feature, edges=ch.edges, log=scale.log, centre=centre, min_count=o.min_count
    )
    caption = (
        f"{o.skip} rate on a {ch.bins} × {ch.bins} grid of previous × current {o.feature} over {_rows(total_n)} plays with both known "
        f"(diverging colours centred on their rate {centre:.3f}; {int(t['masked'].sum())} cells with < {o.min_count} plays greyed)."
    )
    return View("memory_in_chains", "Memory in chains", caption, fig, {"": t})


def time_structure(r: Results) -> View:
    cal = _calendar(r)
    o = r.options
    daily = tables.daily_table(cal, o.skip)
    how = tables.hour_of_week_table(cal, o.skip)
    parts: dict[str, pd.DataFrame] = {"daily": daily, "hour_of_week": how}
    daily_spec = hourly_spec = None
    if cal.n_days >= tables.MIN_DAYS_DAILY:
        daily_spec = tables.spectral_tables(
            daily["rate"].to_numpy(), max_lag=min(cal.n_days - 1, 28), unit="days"
        )
        parts["daily_acf"], parts["daily_periodogram"] = daily_spec
    if cal.n_days >= tables.MIN_DAYS_HOURLY:
        hourly = tables.hourly_series(cal, o.skip)
        hourly_spec = tables.spectral_tables(
            hourly, max_lag=min(len(hourly) - 1, 24 * 8), unit="hours"
        )
        parts["hourly_acf"], parts["hourly_periodogram"] = hourly_spec
    fig = figures.time_figure(
        skip=o.skip,
        daily=daily,
        daily_spectral=daily_spec,
        hour_of_week=how,
        hourly_spectral=hourly_spec,
        n_days=cal.n_days,
        min_days_daily=tables.MIN_DAYS_DAILY,
        min_days_hourly=tables.MIN_DAYS_HOURLY,
    )
    used = int(cal.day_hour.column("n").sum()) if len(cal.day_hour.keys) else 0
    shown = "with" if daily_spec is not None else f"without (needs ≥ {tables.MIN_DAYS_DAILY} days)"
    caption = (
        f"Daily {o.skip} rate over {cal.n_days} days {shown} its autocorrelation and periodogram, and the rate in the 168 hours of the week; "
        f"{_rows(used)} plays with plausible dates."
    )
    return View("time_structure", "Time structure", caption, fig, parts)


def previous_outcome(r: Results) -> View:
    prev = r.log.previous
    assert prev is not None
    o = r.options
    t = tables.previous_table(prev, o.skip)
    caption = (
        f"{o.skip} rate by position, split by the previous play's {o.skip} (or first in session / previous position missing), "
        f"95 % Wilson bands; {_rows(t['n'].sum())} plays."
    )
    return View(
        "previous_outcome",
        "Skip by previous outcome",
        caption,
        figures.previous_figure(t, o.skip),
        {"": t},
    )


RENDERERS: dict[str, Callable[[Results], View]] = {
    "feature_histograms": feature_histograms,
    "feature_by_duration": feature_by_duration,
    "transitions": transitions,
    "seasonality": seasonality,
    "memory_in_chains": memory_in_chains,
    "time_structure": time_structure,
    "previous_outcome": previous_outcome,
}
