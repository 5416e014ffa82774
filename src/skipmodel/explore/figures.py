"""Matplotlib figures for the views; each function takes the view's table and returns a Figure.

Figures are drawn with the object API (no pyplot state) so they can be built in any thread or
process and are freed with their last reference; :func:`save` writes them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm, TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter, NullLocator

from skipmodel.explore.trackpass import FeatureScale, is_integer_feature
from skipmodel.store.schema import WEEKDAYS

#: Units of the track features, for axis labels (scores without units say so).
FEATURE_UNITS: dict[str, str] = {
    "duration": "s",
    "release_year": "year",
    "us_popularity_estimate": "percentile",
    "loudness": "dB",
    "tempo": "BPM",
    "dyn_range_mean": "dB",
    "key": "pitch class 0-11",
    "time_signature": "beats per bar",
}
SKIP_WORDS: dict[str, str] = {
    "skip_1": "P(skip_1: played very briefly)",
    "skip_2": "P(skip_2: played briefly)",
    "skip_3": "P(skip_3: most of the track played)",
    "not_skipped": "P(not_skipped: played to the end)",
}
GREY = "#bbbbbb"
DPI = 110
#: PNG options: zlib level 1 instead of 6 encodes ~4x faster for ~12 % larger files (these are
#: flat-colour plots); encoding was ~15 % of drawing the seven views.
PNG_OPTIONS = {"compress_level": 1}


def feature_label(feature: str) -> str:
    unit = FEATURE_UNITS.get(feature, "score")
    return f"{feature} ({unit})"


def save(fig: Figure, path: Path | BinaryIO) -> None:
    """Write ``fig`` as PNG (``path``: a file name or a binary file object)."""
    fig.savefig(path, dpi=DPI, format="png", pil_kwargs=dict(PNG_OPTIONS))


_PLAIN = FuncFormatter(lambda v, _pos: f"{v:g}")


def _count_label(v: float, _pos: object = None) -> str:
    """Compact counts for tick labels: 950, 1.5k, 2M (no offset text to collide with titles)."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:g}{suffix}"
    return f"{v:g}"


_COUNTS = FuncFormatter(_count_label)


def _plain_log_x(  # noqa: ANN001
    ax, lo: float | None = None, hi: float | None = None, *, minor: bool = True
) -> None:
    """Log x axis with plain labels: 1-2-5 ticks over <= 2 decades, at most ~6 decades else;
    unlabelled minor ticks, or none (``minor=False``: a grid of small panels, where each minor
    tick is a Tick object to build and the labelled majors already read the axis)."""
    ax.set_xscale("log")
    if lo and hi and lo > 0 and np.log10(hi / lo) <= 2:
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    else:
        ax.xaxis.set_major_locator(LogLocator(base=10, numticks=6))
    ax.xaxis.set_major_formatter(_PLAIN)
    if minor:
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        ax.xaxis.set_minor_locator(NullLocator())


def _fill_levels(t: pd.DataFrame, column: str) -> pd.DataFrame:
    """Reindex integer levels to a full range so lines break (NaN) where a level has no plays."""
    levels = t[column].to_numpy()
    full = pd.DataFrame({column: np.arange(levels.min(), levels.max() + 1)})
    return full.merge(t, on=column, how="left")


def _note(ax, text: str) -> None:  # noqa: ANN001 - a matplotlib Axes
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def histograms_figure(table: pd.DataFrame, scales: dict[str, FeatureScale]) -> Figure:
    features = list(dict.fromkeys(table["feature"]))
    ncols = 5
    nrows = max(1, math.ceil(len(features) / ncols))
    # A fixed grid: constrained layout is slow on ~30 axes and gains nothing here.
    fig = Figure(figsize=(4.0 * ncols, 2.9 * nrows))
    fig.subplots_adjust(
        left=0.04, right=0.99, bottom=0.04, top=1 - 1.0 / (2.9 * nrows), hspace=0.6, wspace=0.3
    )
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, f in zip(axes, features, strict=False):
        t = table[table["feature"] == f]
        edges = np.append(t["bin_left"].to_numpy(), t["bin_right"].to_numpy()[-1:])
        ax.stairs(t["tracks"].to_numpy(), edges, fill=True, color="#4C72B0")
        if scales[f].log:
            _plain_log_x(ax, edges[0], edges[-1], minor=False)
            ax.set_title(f"{f} (log x)", fontsize=10)
        else:
            ax.set_title(f, fontsize=10)
        ax.set_xlabel(feature_label(f), fontsize=8)
        ax.set_ylabel("tracks", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.yaxis.set_major_formatter(_COUNTS)
        # four or five count ticks read a small panel (the default ~9 crowd it; each costs a Tick)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
        if not scales[f].log:
            ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=is_integer_feature(f)))
    for ax in axes[len(features) :]:
        ax.set_axis_off()
    fig.suptitle(
        "Track-feature distributions over the tracks table", fontsize=14, y=1 - 0.3 / (2.9 * nrows)
    )
    return fig


def duration_figure(table: pd.DataFrame, feature: str, step: float) -> Figure:
    fig = Figure(figsize=(10, 5.5), layout="constrained")
    ax = fig.subplots()
    t = table[table["tracks"] > 0]
    half = 1.96 * t["se"].fillna(0.0)
    ax.fill_between(
        t["duration_s"],
        t["mean"] - half,
        t["mean"] + half,
        color=GREY,
        alpha=0.6,
        lw=0,
        label="mean ± 1.96 standard errors",
    )
    sizes = 8 + 120 * np.sqrt(t["tracks"] / max(t["tracks"].max(), 1))
    points = ax.scatter(
        t["duration_s"],
        t["mean"],
        s=sizes,
        c=t["tracks"],
        cmap="viridis",
        norm=LogNorm(vmin=1, vmax=max(t["tracks"].max(), 2)),
        edgecolor="none",
        zorder=3,
    )
    bar = fig.colorbar(points, ax=ax, label="tracks in bin (log scale; also point size)")
    bar.ax.yaxis.set_major_formatter(_PLAIN)
    bar.ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(f"duration, rounded to {step:g} s (s)")
    ax.set_ylabel(f"mean {feature_label(feature)}")
    ax.set_title(f"Mean {feature} by track duration")
    ax.legend(loc="best", fontsize=9)
    return fig


def transitions_figure(
    matrix: np.ndarray, *, order: np.ndarray, axis_label: str, title: str
) -> Figure:
    m = matrix[np.ix_(order, order)].astype(float)
    # fixed axes (constrained layout doubled the drawing time; the labels here have one shape)
    fig = Figure(figsize=(9, 8))
    ax = fig.add_axes((0.085, 0.075, 0.74, 0.87))
    n = len(order)
    if n == 0 or m.max() <= 0:
        _note(ax, "no transitions among the most played tracks")
        return fig
    shown = np.ma.masked_less_equal(m, 0)
    image = ax.imshow(
        shown,
        cmap="magma_r",
        norm=LogNorm(vmin=1, vmax=max(m.max(), 2)),
        origin="upper",
        interpolation="nearest",
        extent=(0.5, n + 0.5, n + 0.5, 0.5),
    )
    cax = fig.add_axes((0.855, 0.15, 0.025, 0.72))
    fig.colorbar(image, cax=cax, label="consecutive plays p → p+1 (log scale)")
    ticks = [1, *range(5, n + 1, 5)] if n > 10 else list(range(1, n + 1))
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xlabel(f"next track (position p+1), {axis_label}")
    ax.set_ylabel(f"previous track (position p), {axis_label}")
    ax.set_title(title)
    ax.set_facecolor("white")
    return fig


def _rate_panel(
    ax, x, t: pd.DataFrame, *, xlabel: str, ylabel: str, title: str, labels=None
) -> None:  # noqa: ANN001
    counts = ax.twinx()
    counts.bar(x, t["n"], color=GREY, alpha=0.45, width=0.8, zorder=0)
    counts.set_ylabel("plays (grey bars)", fontsize=8, color="#777777")
    counts.tick_params(labelsize=7, colors="#777777")
    counts.yaxis.set_major_formatter(_COUNTS)
    ax.set_zorder(counts.get_zorder() + 1)
    ax.patch.set_visible(False)
    err = np.vstack([t["rate"] - t["ci_low"], t["ci_high"] - t["rate"]])
    ax.errorbar(x, t["rate"], yerr=err, fmt="o-", ms=3.5, lw=1.2, capsize=2, color="#C44E52")
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.set_title(title, fontsize=10)
    ax.tick_params(labelsize=8)
    if labels is not None:
        ax.set_xticks(x)
        ax.set_xticklabels(labels)


def seasonality_figure(table: pd.DataFrame, skip: str, *, excluded: int) -> Figure:
    fig = Figure(figsize=(12, 8.5), layout="constrained")
    axes = fig.subplots(2, 2).ravel()
    spec = {
        "weekday": ("weekday", f"Weekday (implausible dates excluded: {excluded:,} plays)"),
        "day_of_month": ("day of month", "Day of month (implausible dates excluded)"),
        "hour": ("hour of day (h, 0-23)", "Hour of day (all plays)"),
        "position": ("position in session (1 = first play)", "Position in session (all plays)"),
    }
    ylabel = SKIP_WORDS[skip]
    for ax, (panel, (xlabel, title)) in zip(axes, spec.items(), strict=True):
        t = table[table["panel"] == panel]
        if t.empty:
            _note(ax, f"no plays for the {panel} panel")
            continue
        labels = list(t["label"]) if panel == "weekday" else None
        if labels is None:
            t = _fill_levels(t, "level")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        _rate_panel(
            ax, t["level"].to_numpy(), t, xlabel=xlabel, ylabel=ylabel, title=title, labels=labels
        )
    fig.suptitle(
        f"Skip seasonality: {skip} rate with 95 % Wilson intervals; grey bars = plays", fontsize=12
    )
    return fig


def chains_figure(
    table: pd.DataFrame,
    feature: str,
    *,
    edges: np.ndarray,
    log: bool,
    centre: float,
    min_count: int,
) -> Figure:
    b = len(edges) - 1
    rate = table.sort_values(["prev_bin", "current_bin"])["rate"].to_numpy().reshape(b, b)
    masked = table.sort_values(["prev_bin", "current_bin"])["masked"].to_numpy().reshape(b, b)
    grid = np.ma.masked_array(rate, mask=masked | np.isnan(rate))
    fig = Figure(figsize=(9, 7.5), layout="constrained")
    ax = fig.subplots()
    ax.set_facecolor("#e6e6e6")
    span = np.nanmax(np.abs(grid.compressed() - centre)) if grid.count() else 0.05
    span = max(float(span), 1e-3)
    norm = TwoSlopeNorm(vcenter=centre, vmin=centre - span, vmax=centre + span)
    image = ax.pcolormesh(
        np.arange(b + 1),
        np.arange(b + 1),
        grid,
        cmap="RdBu_r",
        norm=norm,
        edgecolors="white",
        linewidth=0.5,
    )
    fig.colorbar(image, ax=ax, label=f"skip rate (centre = overall rate {centre:.3f})")
    fmt = (lambda v: f"{v:.2g}") if log else (lambda v: f"{v:.3g}")
    step = max(1, b // 10)
    ticks = np.arange(0, b + 1, step)
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_xticklabels([fmt(edges[i]) for i in ticks], rotation=45, ha="right", fontsize=8)
    ax.set_yticklabels([fmt(edges[i]) for i in ticks], fontsize=8)
    scale = ", log-spaced bins" if log else ""
    ax.set_xlabel(f"current track's {feature_label(feature)}{scale}")
    ax.set_ylabel(f"previous track's {feature_label(feature)}{scale}")
    ax.set_title(
        f"Memory in chains: skip rate by previous × current {feature}\n(grey: cells with fewer than {min_count} plays)"
    )
    return fig


def _series_panel(ax, x, y, *, xlabel: str, ylabel: str, title: str) -> None:  # noqa: ANN001
    ax.plot(x, y, lw=1.0, color="#4C72B0")
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.set_title(title, fontsize=10)
    ax.tick_params(labelsize=8)


def _acf_panel(ax, acf: pd.DataFrame, n: int, *, unit: str, marks: tuple[int, ...]) -> None:  # noqa: ANN001
    lag = acf.iloc[:, 0].to_numpy()
    ax.vlines(lag, 0, acf["acf"], color="#4C72B0", lw=1.0)
    band = 1.96 / math.sqrt(max(n, 1))
    ax.axhspan(-band, band, color=GREY, alpha=0.4, lw=0, label="±1.96/√n (white noise)")
    ax.axhline(0, color="black", lw=0.6)
    for m in marks:
        if m <= lag.max():
            ax.axvline(m, color="#C44E52", ls=":", lw=1)
    ax.set_xlabel(f"lag ({unit}); dotted: {', '.join(str(m) for m in marks)}", fontsize=9)
    ax.set_ylabel("autocorrelation", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    ax.tick_params(labelsize=8)


def _periodogram_panel(ax, pg: pd.DataFrame, *, unit: str, marks: tuple[int, ...]) -> None:  # noqa: ANN001
    period = pg.iloc[:, 0].to_numpy()
    ax.plot(period, pg["power"], marker="o", ms=2.5, lw=0.8, color="#4C72B0")
    _plain_log_x(ax)
    candidates = (2, 3, 7, 14, 28) if unit == "days" else (2, 6, 12, 24, 48, 168, 336)
    ticks = [c for c in candidates if len(period) and period.min() <= c <= period.max()]
    if ticks:
        ax.set_xticks(ticks)
    for m in marks:
        ax.axvline(m, color="#C44E52", ls=":", lw=1)
    ax.set_xlabel(
        f"period ({unit}, log scale); dotted: {', '.join(str(m) for m in marks)}", fontsize=9
    )
    ax.set_ylabel("power (|FFT|² / n)", fontsize=9)
    ax.tick_params(labelsize=8)


def time_figure(
    *,
    skip: str,
    daily: pd.DataFrame,
    daily_spectral: tuple[pd.DataFrame, pd.DataFrame] | None,
    hour_of_week: pd.DataFrame,
    hourly_spectral: tuple[pd.DataFrame, pd.DataFrame] | None,
    n_days: int,
    min_days_daily: int,
    min_days_hourly: int,
) -> Figure:
    # a fixed grid (constrained layout doubled the drawing time of these six panels)
    fig = Figure(figsize=(15, 8.5))
    fig.subplots_adjust(left=0.05, right=0.985, bottom=0.075, top=0.905, wspace=0.24, hspace=0.42)
    axes = fig.subplots(2, 3)
    ylabel = f"{skip} rate"
    if daily_spectral is not None:
        dates = pd.to_datetime(daily["date"])
        ax = axes[0, 0]
        ax.fill_between(dates, daily["ci_low"], daily["ci_high"], color=GREY, alpha=0.6, lw=0)
        _series_panel(
            ax,
            dates,
            daily["rate"],
            xlabel="date",
            ylabel=ylabel,
            title=f"Daily {skip} rate ({n_days} days, 95 % Wilson band)",
        )
        ax.tick_params(axis="x", rotation=30)
        _acf_panel(axes[0, 1], daily_spectral[0], n_days, unit="days", marks=(7, 14))
        axes[0, 1].set_title("Autocorrelation of the daily rate", fontsize=10)
        _periodogram_panel(axes[0, 2], daily_spectral[1], unit="days", marks=(7,))
        axes[0, 2].set_title("Periodogram of the daily rate", fontsize=10)
    else:
        for ax in axes[0]:
            _note(ax, f"daily series needs ≥ {min_days_daily} days;\nthe data spans {n_days}")
    ax = axes[1, 0]
    h = hour_of_week
    ax.fill_between(h["hour_of_week"], h["ci_low"], h["ci_high"], color=GREY, alpha=0.6, lw=0)
    _series_panel(
        ax,
        h["hour_of_week"],
        h["rate"],
        xlabel="hour of week (h, Monday 00:00 = 0)",
        ylabel=ylabel,
        title="By hour across the week (168 cells, 95 % band)",
    )
    ax.set_xticks(np.arange(0, 168, 24) + 12)
    ax.set_xticklabels(WEEKDAYS)
    for d in range(1, 7):
        ax.axvline(24 * d, color="black", lw=0.4, alpha=0.5)
    if hourly_spectral is not None:
        _acf_panel(axes[1, 1], hourly_spectral[0], n_days * 24, unit="hours", marks=(24, 168))
        axes[1, 1].set_title("Autocorrelation of the hourly rate", fontsize=10)
        _periodogram_panel(axes[1, 2], hourly_spectral[1], unit="hours", marks=(24, 168))
        axes[1, 2].set_title("Periodogram of the hourly rate", fontsize=10)
    else:
        for ax in axes[1, 1:]:
            _note(
                ax,
                f"hourly autocorrelation needs ≥ {min_days_hourly} days;\nthe data spans {n_days}",
            )
    fig.suptitle(f"Time structure of the {skip} rate (implausible dates excluded)", fontsize=12)
    return fig


def previous_figure(table: pd.DataFrame, skip: str) -> Figure:
    fig = Figure(figsize=(10, 5.5), layout="constrained")
    ax = fig.subplots()
    colours = {
        "first in session": "black",
        "previous missing": "#999999",
        "previous true": "#C44E52",
        "previous false": "#4C72B0",
    }
    names = {
        "first in session": "first in session",
        "previous missing": "previous position missing",
        "previous true": f"previous play {skip} = true",
        "previous false": f"previous play {skip} = false",
    }
    for state, t in table.groupby("previous", sort=False):
        label = f"{names.get(str(state), state)} ({t['n'].sum():,} plays)"
        t = _fill_levels(t.sort_values("position"), "position")
        x = t["position"].to_numpy()
        colour = colours.get(str(state), "C0")
        if len(t) == 1:
            err = np.vstack([t["rate"] - t["ci_low"], t["ci_high"] - t["rate"]])
            ax.errorbar(x, t["rate"], yerr=err, fmt="o", ms=4, capsize=3, color=colour, label=label)
            continue
        ax.fill_between(x, t["ci_low"], t["ci_high"], color=colour, alpha=0.15, lw=0)
        ax.plot(x, t["rate"], marker="o", ms=3.5, color=colour, label=label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("position in session (1 = first play)")
    ax.set_ylabel(SKIP_WORDS[skip])
    ax.set_title(f"{skip} rate by the previous play's outcome (95 % Wilson bands)")
    ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="previous play")
    return fig
