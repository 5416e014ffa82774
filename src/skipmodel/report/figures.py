"""Every figure of the report, each written to a PNG and returned as its path.

Sampler diagnostics (trace, rank, energy, model comparison, Pareto k) use ``arviz_plots`` with
the matplotlib backend; effect, check and calibration plots are plain matplotlib on the arrays
prepared by :mod:`skipmodel.report.effects`, :mod:`skipmodel.report.checks` and
:mod:`skipmodel.report.metrics`. Intervals are central 94 %, except in the recovery plots
(truth against the posterior, :mod:`skipmodel.report.recovery`): 50 % and 90 %.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import (  # noqa: E402
    FuncFormatter,
    LogLocator,
    MaxNLocator,
    NullFormatter,
)

from skipmodel.report.checks import GroupCheck, Surface  # noqa: E402
from skipmodel.report.effects import Effect, interval  # noqa: E402
from skipmodel.report.metrics import ReliabilityCurve  # noqa: E402

__all__ = [
    "plot_categorical_effects",
    "plot_compare",
    "plot_curve_effect",
    "plot_energy",
    "plot_group_checks",
    "plot_khat",
    "plot_pava",
    "plot_rank",
    "plot_recovery_curves",
    "plot_recovery_intervals",
    "plot_recovery_tracks",
    "plot_reliability",
    "plot_scales",
    "plot_surfaces",
    "plot_trace",
]

DPI = 90
BAND = "#4c72b0"
OBS = "#c44e52"
MIN_BIN_PLAYS = 10
WEEKDAY_ORDER = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def _save_pc(pc: object, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pc.savefig(path, dpi=DPI, bbox_inches="tight")  # type: ignore[attr-defined]
    plt.close("all")
    return path


# --- sampler diagnostics (arviz_plots) ------------------------------------------------------


def _n_panels(dt: xr.DataTree, var_names: Sequence[str]) -> int:
    post = dt["posterior"]
    return sum(
        math.prod(post[v].sizes[d] for d in post[v].dims if d not in ("chain", "draw"))
        for v in var_names
    )


def plot_trace(dt: xr.DataTree, var_names: Sequence[str], path: Path) -> Path:
    """Per-chain marginal histograms (left) and traces (right), one row per variable.

    Plain matplotlib: ``arviz_plots.plot_trace_dist`` draws the same but spends seconds per
    panel on kernel densities and text layout, too slow for a report with many runs. A vector
    variable (e.g. the seven weekday effects) shares its row, one colour per element.
    """
    post = dt["posterior"]
    rows = len(var_names)
    fig, axes = plt.subplots(
        rows,
        2,
        figsize=(11, 1.7 * rows + 0.4),
        layout="constrained",
        squeeze=False,
        gridspec_kw={"width_ratios": [1, 2]},
    )
    styles = ("-", "--", ":", "-.")
    for (dens, trace), var in zip(axes, var_names, strict=True):
        da = post[var]
        extra = [d for d in da.dims if d not in ("chain", "draw")]
        flat = da.stack(element=extra) if extra else da.expand_dims(element=[var])
        flat = flat.transpose("element", "chain", "draw")
        values = flat.values
        edges = (
            np.histogram_bin_edges(values[np.isfinite(values)], bins=30)
            if np.isfinite(values).any()
            else 10
        )
        scalar = values.shape[0] == 1
        for e in range(values.shape[0]):
            for c in range(values.shape[1]):
                # a scalar: one colour per chain; a vector: one colour per element
                color = f"C{c % 10}" if scalar else f"C{e % 10}"
                ls = "-" if scalar else styles[c % len(styles)]
                dens.hist(
                    values[e, c],
                    bins=edges,
                    density=True,
                    histtype="step",
                    color=color,
                    ls=ls,
                    lw=1,
                )
                trace.plot(values[e, c], color=color, ls="-", lw=0.5, alpha=0.7)
        label = var if not extra else f"{var} ({values.shape[0]} {'/'.join(map(str, extra))})"
        dens.set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center")
        dens.set_yticks([])
        trace.tick_params(labelsize=7)
        dens.tick_params(labelsize=7)
    axes[-1, 1].set_xlabel("draw (chains overlaid: scalars coloured by chain, vectors by element)")
    return _save(fig, path)


def plot_rank(dt: xr.DataTree, var_names: Sequence[str], path: Path) -> Path:
    """Fractional-rank ECDF difference per chain with its simultaneous envelope."""
    import arviz_plots as azp

    panels = _n_panels(dt, var_names)
    cols = min(4, panels)
    rows = math.ceil(panels / cols)
    pc = azp.plot_rank(
        dt,
        var_names=list(var_names),
        backend="matplotlib",
        col_wrap=cols,
        figure_kwargs={"layout": "constrained", "figsize": (11, 2.2 * rows + 0.4)},
    )
    return _save_pc(pc, path)


def plot_energy(dt: xr.DataTree, path: Path) -> Path:
    """Marginal energy vs energy transition distributions, with per-chain E-BFMI."""
    import arviz_plots as azp

    pc = azp.plot_energy(
        dt, backend="matplotlib", figure_kwargs={"layout": "constrained", "figsize": (11, 3)}
    )
    return _save_pc(pc, path)


def plot_compare(cmp_df: pd.DataFrame, path: Path) -> Path:
    """ELPD (PSIS-LOO) per model with standard errors, best model on top."""
    import arviz_plots as azp

    pc = azp.plot_compare(
        cmp_df,
        backend="matplotlib",
        figure_kwargs={"layout": "constrained", "figsize": (9, 1.0 + 0.6 * len(cmp_df))},
    )
    return _save_pc(pc, path)


def plot_khat(elpd: object, path: Path, *, title: str = "") -> Path:
    """Pareto k per observation with the 0.7 reliability threshold."""
    fig, ax = plt.subplots(figsize=(9, 3), layout="constrained")
    k = np.asarray(elpd.pareto_k).ravel()  # type: ignore[attr-defined]
    k_finite = np.where(np.isfinite(k), k, np.nan)
    ax.scatter(np.arange(k.size), k_finite, s=4, alpha=0.5, color=BAND)
    threshold = float(getattr(elpd, "good_k", 0.7) or 0.7)
    ax.axhline(threshold, color=OBS, ls="--", lw=1, label=f"k = {threshold:.2f}")
    ax.set_xlabel("observation")
    ax.set_ylabel("Pareto k")
    bad = int(np.nansum(k_finite > threshold))
    ax.set_title(title or f"Pareto k: {bad} of {k.size} above {threshold:.2f}")
    ax.legend(loc="upper right")
    return _save(fig, path)


# --- effects on the probability scale -------------------------------------------------------


def _ordered(effect: Effect) -> tuple[list[str], Effect]:
    labels = [str(v) for v in effect.labels]
    if set(labels) <= set(WEEKDAY_ORDER):
        order = [labels.index(d) for d in WEEKDAY_ORDER if d in labels]
        return [labels[i] for i in order], Effect(
            effect.variable,
            effect.dim,
            effect.kind,
            tuple(labels[i] for i in order),
            effect.probability[:, order],
        )
    return labels, effect


def plot_categorical_effects(
    effects: Sequence[Effect],
    path: Path,
    *,
    title: str = "",
    reference: float | None = None,
    xlabel: str = "P(skip)",
) -> Path:
    """One forest panel per effect: posterior mean and 94 % interval of P(skip) per level."""
    n = len(effects)
    cols = 1 if n == 1 else 2
    rows = math.ceil(n / cols)
    heights = [max(len(e.labels) for e in effects[r * cols : (r + 1) * cols]) for r in range(rows)]
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(11 if cols == 2 else 7, sum(0.32 * h + 0.9 for h in heights)),
        layout="constrained",
        squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )
    for ax, effect in zip(axes.flat, effects, strict=False):
        labels, effect = _ordered(effect)
        s = effect.summary()
        y = np.arange(len(labels))[::-1]
        ax.hlines(y, s.lower, s.upper, color=BAND, lw=2.5)
        ax.plot(s.mean, y, "o", color="black", ms=4)
        ax.set_yticks(y, [lbl[:28] for lbl in labels])
        if reference is not None:
            ax.axvline(reference, color="grey", ls=":", lw=1)
        ax.set_title(effect.title)
        ax.set_xlabel(xlabel)
        ax.margins(y=0.08)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_curve_effect(effect: Effect, path: Path, *, xlabel: str | None = None) -> Path:
    """Mean and 94 % band of P(skip) along a grid; a cyclic effect is closed so 23 h meets 0 h."""
    x = np.asarray(effect.labels, dtype=float)
    prob = effect.probability
    if effect.kind == "cyclic":
        period = x[-1] - x[0] + (x[1] - x[0])
        x = np.r_[x, x[0] + period]
        prob = np.concatenate([prob, prob[:, :1]], axis=1)
    s = interval(prob)
    fig, ax = plt.subplots(figsize=(8, 3.2), layout="constrained")
    ax.fill_between(x, s.lower, s.upper, color=BAND, alpha=0.3, lw=0, label="94 % interval")
    ax.plot(x, s.mean, color=BAND, lw=2, label="posterior mean")
    if effect.kind == "cyclic":
        ticks = np.arange(0, 25, 3)
        ax.set_xticks(ticks, [f"{t % 24}" for t in ticks])
        ax.set_xlim(x[0], x[-1])
        ax.axvline(x[-1], color="grey", ls=":", lw=1)
    elif effect.dim in ("position", "day_of_month"):
        ax.plot(x, s.mean, "o", color=BAND, ms=3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # plays and days: whole numbers
    ax.set_xlabel(xlabel or effect.axis_label)
    ax.set_ylabel("P(skip)")
    ax.set_title(effect.title)
    ax.legend(loc="best", fontsize=8)
    return _save(fig, path)


def plot_scales(scales: Mapping[str, np.ndarray], path: Path) -> Path:
    """Pooling scales and smooth amplitudes (logit scale): how much each term varies."""
    names = list(scales)
    draws = np.column_stack([scales[n] for n in names])
    s = interval(draws)
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(names) + 1.2), layout="constrained")
    y = np.arange(len(names))[::-1]
    ax.hlines(y, s.lower, s.upper, color=BAND, lw=2.5)
    ax.plot(s.mean, y, "o", color="black", ms=4)
    ax.set_yticks(y, names)
    ax.set_xlabel("standard deviation (logit scale)")
    ax.set_xlim(left=0)
    ax.set_title("Pooling scales and smooth amplitudes")
    return _save(fig, path)


# --- predictive checks and calibration ------------------------------------------------------


def plot_group_checks(checks: Sequence[GroupCheck], path: Path) -> Path:
    """Observed skip rate per level (red) against the 94 % interval of replicated rates (blue)."""
    n = len(checks)
    cols = 1 if n == 1 else 2
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(11 if cols == 2 else 7, 3.0 * rows),
        layout="constrained",
        squeeze=False,
    )
    for ax, check in zip(axes.flat, checks, strict=False):
        s = check.summary()
        x = np.arange(len(check.labels))
        ax.vlines(x, s.lower, s.upper, color=BAND, lw=4, alpha=0.6, label="replicated 94 %")
        ax.plot(x, check.observed, "o", color=OBS, ms=4, label="observed")
        labels = [str(v)[:20] for v in check.labels]
        step = max(1, len(labels) // 12)
        ax.set_xticks(
            x[::step],
            labels[::step],
            rotation=30 if len(labels) > 4 else 0,
            ha="right" if len(labels) > 4 else "center",
        )
        ax.set_ylabel("skip rate")
        ax.set_title(f"by {check.name} (observed inside: {check.coverage:.0%})")
        ax.legend(fontsize=7, loc="best")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return _save(fig, path)


def plot_reliability(curves: Mapping[str, ReliabilityCurve], path: Path) -> Path:
    """Observed skip rate vs mean predicted probability per bin; marker area ~ plays in bin."""
    fig, (ax, hist) = plt.subplots(
        2,
        1,
        figsize=(6.5, 6.5),
        layout="constrained",
        sharex=True,
        gridspec_kw={"height_ratios": [3, 1]},
    )
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1, label="perfect calibration")
    for i, (name, c) in enumerate(curves.items()):
        # bins holding a handful of plays give wild rates; leave them out of the curve
        used = c.count >= max(MIN_BIN_PLAYS, 0.005 * c.n)
        size = 10 + 200 * c.count[used] / max(c.count.max(), 1)
        color = f"C{i}"
        ax.plot(c.mean_predicted[used], c.observed_rate[used], "-", color=color, lw=1.5, label=name)
        ax.scatter(c.mean_predicted[used], c.observed_rate[used], s=size, color=color, alpha=0.6)
        centers = (c.edges[:-1] + c.edges[1:]) / 2
        hist.bar(centers + (i - (len(curves) - 1) / 2) * 0.02, c.count, width=0.02, color=color)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("observed skip rate")
    ax.legend(fontsize=8, loc="upper left")
    hist.set_xlabel("predicted P(skip)")
    hist.set_ylabel("plays")
    return _save(fig, path)


def plot_pava(y: np.ndarray, p_draws: np.ndarray, path: Path, *, name: str = "skip") -> Path:
    """ArviZ's PAVA calibration plot: isotonic conditional event probability vs prediction,
    with the band expected from data replicated from the posterior."""
    import arviz_base as azb
    import arviz_plots as azp

    rng = np.random.default_rng(0)
    y_rep = (rng.random(p_draws.shape) < p_draws).astype(np.int8)
    dt = azb.from_dict(
        {
            "posterior_predictive": {name: y_rep[None]},
            "observed_data": {name: np.asarray(y, np.int8)},
        },
        dims={name: ["play"]},
    )
    pc = azp.plot_ppc_pava(
        dt, backend="matplotlib", figure_kwargs={"layout": "constrained", "figsize": (6, 5)}
    )
    return _save_pc(pc, path)


def plot_surfaces(surfaces: Sequence[Surface], path: Path) -> Path:
    """Per feature: model-predicted (left) and empirical (right) skip rate over before x now bins."""
    n = len(surfaces)
    fig, axes = plt.subplots(n, 2, figsize=(10, 4.0 * n), layout="constrained", squeeze=False)
    for row, surf in zip(axes, surfaces, strict=True):
        values = np.concatenate(
            [
                surf.predicted[np.isfinite(surf.predicted)],
                surf.empirical[np.isfinite(surf.empirical)],
            ]
        )
        vmin, vmax = (np.nanmin(values), np.nanmax(values)) if values.size else (0.0, 1.0)
        for ax, grid, label in zip(
            row,
            (surf.predicted, surf.empirical),
            ("predicted (posterior mean)", "empirical"),
            strict=True,
        ):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                image = ax.imshow(
                    grid, origin="lower", cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto"
                )
            for (i, j), v in np.ndenumerate(grid):
                if np.isfinite(v):
                    ax.text(
                        j,
                        i,
                        f"{v:.2f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if v < (vmin + vmax) / 2 else "black",
                    )
            cur_mid = (surf.cur_edges[:-1] + surf.cur_edges[1:]) / 2
            prev_mid = (surf.prev_edges[:-1] + surf.prev_edges[1:]) / 2
            ax.set_xticks(np.arange(cur_mid.size), [f"{v:.2g}" for v in cur_mid], fontsize=7)
            ax.set_yticks(np.arange(prev_mid.size), [f"{v:.2g}" for v in prev_mid], fontsize=7)
            ax.set_xlabel(f"{surf.feature} now (bin centre)")
            ax.set_ylabel(f"{surf.feature} before")
            ax.set_title(f"{surf.feature}: {label}")
        fig.colorbar(image, ax=row.tolist(), label="skip rate", shrink=0.85)
    return _save(fig, path)


# --- recovery of a known truth (skipmodel report --truth) -------------------------------------
#
# Plain data from :mod:`skipmodel.report.recovery`: per quantity ``truth``, ``mean``, the central
# intervals ``lo90 <= lo50 <= hi50 <= hi90`` and ``estimated`` (False: only the truth is drawn).

#: A titled panel of quantities; a curve panel also names its x axis and whether it is a log one.
RecoveryPanel = tuple[str, pd.DataFrame]
RecoveryCurve = tuple[str, pd.DataFrame, str, bool]


def _recovery_legend(fig: plt.Figure) -> None:
    """One legend above the panels (never over the data or a title)."""
    handles = [
        Line2D([], [], color=BAND, lw=4, label="50 % interval"),
        Line2D([], [], color=BAND, lw=1.2, label="90 % interval"),
        Line2D([], [], color="black", marker="o", ls="", ms=4, label="posterior mean"),
        Line2D([], [], color=OBS, marker="x", ls="", ms=7, mew=1.8, label="truth"),
        Line2D([], [], color="grey", marker="x", ls="", ms=7, label="truth, not estimated"),
    ]
    fig.legend(handles=handles, fontsize=8, loc="outside upper center", ncols=len(handles))


def _truth_marks(ax: plt.Axes, pos: np.ndarray, rows: pd.DataFrame, *, vertical: bool) -> None:
    """Thick 50 % and thin 90 % bars, the mean as a dot, the truth as a cross (grey: the model
    has no term for it)."""
    est = rows["estimated"].to_numpy()
    at = pos[est]
    lines = ax.vlines if vertical else ax.hlines
    lines(at, rows["lo90"][est], rows["hi90"][est], color=BAND, lw=1.2)
    lines(at, rows["lo50"][est], rows["hi50"][est], color=BAND, lw=4)
    mean, truth = rows["mean"][est], rows["truth"][est]
    ax.plot(*((at, mean) if vertical else (mean, at)), "o", color="black", ms=3.5)
    ax.plot(*((at, truth) if vertical else (truth, at)), "x", color=OBS, ms=7, mew=1.8)
    if (~est).any():
        xy = (pos[~est], rows["truth"][~est])
        ax.plot(*(xy if vertical else xy[::-1]), "x", color="grey", ms=7)


def plot_recovery_intervals(
    panels: Sequence[RecoveryPanel], path: Path, *, vertical: bool, xlabel: str = ""
) -> Path:
    """Truth against the posterior, one panel per term: levels along x (``vertical`` bars, for
    seasonal levels) or one labelled row per quantity (slopes, contrasts, scales)."""
    sizes = [len(rows) for _, rows in panels]
    heights = [2.6] * len(panels) if vertical else [0.3 * s + 0.8 for s in sizes]
    fig, axes = plt.subplots(
        len(panels),
        1,
        figsize=(9 if vertical else 8, sum(heights) + 0.4),
        layout="constrained",
        squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )
    for ax, (title, rows) in zip(axes[:, 0], panels, strict=True):
        pos = np.arange(len(rows)) if vertical else np.arange(len(rows))[::-1]
        (ax.axhline if vertical else ax.axvline)(0.0, color="grey", ls=":", lw=1)
        _truth_marks(ax, pos, rows, vertical=vertical)
        if vertical:
            labels = rows["level"].tolist()
            long = max(len(str(lab)) for lab in labels) > 4
            ax.set_xticks(pos, labels, rotation=30 if long else 0, fontsize=8)
            ax.set_ylabel("effect (logit)")
        else:
            ax.set_yticks(pos, [str(n)[:40] for n in rows["quantity"]], fontsize=8)
            ax.margins(y=0.15)
        ax.set_title(title, fontsize=10)
    if xlabel:
        axes[-1, 0].set_xlabel(xlabel)
    _recovery_legend(fig)
    return _save(fig, path)


def plot_recovery_curves(panels: Sequence[RecoveryCurve], path: Path) -> Path:
    """Smooth effects along their grid (``x``): 50 % and 90 % bands, mean, the true curve."""
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(8, 3.0 * len(panels) + 0.3), layout="constrained", squeeze=False
    )
    for ax, (title, rows, xlabel, log) in zip(axes[:, 0], panels, strict=True):
        x, est = rows["x"].to_numpy(dtype=float), rows["estimated"].to_numpy()
        if est.any():
            ax.fill_between(x, rows["lo90"], rows["hi90"], color=BAND, alpha=0.2, lw=0)
            ax.fill_between(x, rows["lo50"], rows["hi50"], color=BAND, alpha=0.4, lw=0)
            ax.plot(x, rows["mean"], color="black", lw=1.2)
        ax.plot(x, rows["truth"], color=OBS if est.any() else "grey", ls="--", lw=1.8)
        if log:
            ax.set_xscale("log")  # plain numbers at 1, 2, 3, 5 x 10^k: seconds, not powers
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 3.0, 5.0)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(xlabel)
        ax.set_ylabel("effect (logit, centred)")
        ax.set_title(title, fontsize=10)
    handles = [
        Patch(color=BAND, alpha=0.4, label="50 % interval"),
        Patch(color=BAND, alpha=0.2, label="90 % interval"),
        Line2D([], [], color="black", lw=1.2, label="posterior mean"),
        Line2D([], [], color=OBS, ls="--", lw=1.8, label="truth"),
        Line2D([], [], color="grey", ls="--", lw=1.8, label="truth, not estimated"),
    ]
    fig.legend(handles=handles, fontsize=8, loc="outside upper center", ncols=len(handles))
    return _save(fig, path)


def plot_recovery_tracks(rows: pd.DataFrame, path: Path, *, title: str) -> Path:
    """Posterior mean against true track effect (1:1 line, misses of the 90 % interval in red),
    and the share covered in quantile bins of how often the tracks played (``plays``)."""
    fig, (ax, by) = plt.subplots(
        1, 2, figsize=(11, 4.6), layout="constrained", gridspec_kw={"width_ratios": [3, 2]}
    )
    hit = rows["in90"].to_numpy(dtype=float) == 1.0
    ax.scatter(rows["truth"][hit], rows["mean"][hit], s=6, color=BAND, alpha=0.5, lw=0)
    ax.scatter(rows["truth"][~hit], rows["mean"][~hit], s=9, color=OBS, alpha=0.8, lw=0)
    lo = float(min(rows["truth"].min(), rows["mean"].min()))
    hi = float(max(rows["truth"].max(), rows["mean"].max()))
    ax.plot([lo, hi], [lo, hi], color="grey", ls=":", lw=1)
    ax.set_xlabel("true track effect (deviation from the modelled tracks' mean, logit)")
    ax.set_ylabel("posterior mean")
    ax.set_title(title, fontsize=10)
    ax.legend(
        handles=[
            Line2D([], [], color=BAND, marker="o", ls="", label="truth inside 90 %"),
            Line2D([], [], color=OBS, marker="o", ls="", label="truth outside 90 %"),
            Line2D([], [], color="grey", ls=":", label="1:1"),
        ],
        fontsize=7,
        loc="upper left",
    )
    plays = rows["plays"].to_numpy(dtype=float)
    edges = np.unique(np.quantile(plays, np.linspace(0, 1, 6)))
    if edges.size < 2:
        edges = np.array([plays.min(), plays.max() + 1])
    bins = np.clip(np.searchsorted(edges, plays, side="right") - 1, 0, edges.size - 2)
    centre = np.arange(edges.size - 1)
    for prob, style in ((0.5, "s--"), (0.9, "o-")):
        inside = rows[f"in{round(100 * prob)}"].to_numpy(dtype=float)
        share = [inside[bins == b].mean() if (bins == b).any() else np.nan for b in centre]
        by.plot(centre, share, style, color=BAND, label=f"in {round(100 * prob)} % interval")
        by.axhline(prob, color="grey", ls=":", lw=1)
    counts = np.bincount(bins, minlength=centre.size)
    # bins hold [edge, next edge) plays, the last one its upper edge too
    lows, tops = np.ceil(edges[:-1]), [*(np.ceil(edges[1:-1]) - 1), edges[-1]]
    by.set_xticks(
        centre,
        [f"{lows[b]:.0f}-{tops[b]:.0f}\n({counts[b]} tracks)" for b in centre],
        fontsize=7,
    )
    by.set_ylim(0, 1.02)
    by.set_xlabel("plays of the track in the simulated data")
    by.set_ylabel("share of tracks covered")
    by.set_title("coverage by how often a track played", fontsize=10)
    by.legend(fontsize=7, loc="lower right")
    return _save(fig, path)
