"""One run's sections of the report: diagnostics, effects, and posterior predictive checks.

Each builder takes a run (:class:`~skipmodel.report.inputs.RunInputs`) and the output folder,
writes its figures and CSV tables there, and returns the :class:`~skipmodel.report.html.Section`
(None when the run has nothing to show). :mod:`.heldout` builds the sections across runs;
:mod:`.report` puts them in order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from skipmodel.report import figures as fig
from skipmodel.report.checks import GroupCheck, binned_surface, group_check
from skipmodel.report.diagnostics import Diagnostics
from skipmodel.report.effects import (
    memory_effects,
    probability_effects,
    scale_parameters,
    slope_parameters,
    track_extremes,
)
from skipmodel.report.html import Banner, Block, Figure, Paragraph, Section, Table
from skipmodel.report.inputs import RunInputs
from skipmodel.report.laplace import mode_section
from skipmodel.store.layout import atomic_write_text

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
PPC_GROUPS = (
    ("position", "session_position"),
    ("hour of day", "hour_of_day"),
    ("weekday", "weekday"),
    ("context", "context_type"),
)
PREDICT_CHUNK = 20_000


@dataclass(frozen=True)
class ReportOptions:
    """Knobs for the report's sizes; defaults keep a report to a minute or two."""

    title: str = "skipmodel report"
    ppc_rows: int = 20_000
    ppc_draws: int = 200
    max_trace_vars: int = 14
    max_rank_panels: int = 12
    summary_rows: int = 60
    seed: int = 0


#: The knobs of :func:`skipmodel.report.report` by default.
DEFAULT_OPTIONS = ReportOptions()


def fmt_count(n: float) -> str:
    return f"{int(n):,}"


def count_sessions(frame: pd.DataFrame) -> int:
    return int(frame["session_id"].nunique()) if "session_id" in frame else 0


def data_note(frame: pd.DataFrame, what: str) -> str:
    return f"{fmt_count(len(frame))} {what} plays from {fmt_count(count_sessions(frame))} sessions"


def session_sample(frame: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    """Whole sessions, chosen at random, until about ``max_rows`` plays."""
    if len(frame) <= max_rows:
        return frame
    ids = frame["session_id"].drop_duplicates().sample(frac=1.0, random_state=seed)
    sizes = frame.groupby("session_id").size().reindex(ids)
    keep = sizes.index[sizes.cumsum().to_numpy() <= max_rows]
    return frame[frame["session_id"].isin(keep)]


def mean_probability(run: RunInputs, frame: pd.DataFrame) -> np.ndarray:
    assert run.predict_draws is not None
    parts = [
        run.predict_draws(frame.iloc[i : i + PREDICT_CHUNK]).mean(axis=0)
        for i in range(0, len(frame), PREDICT_CHUNK)
    ]
    return np.concatenate(parts) if parts else np.empty(0)


def _top_level(diag: Diagnostics, run: RunInputs, limit: int) -> list[str]:
    """Variables worth a trace: scalars (intercept first), then short vectors that failed a
    check, then other short effect vectors. Raw ``*_z`` vectors only when failing and without an
    ``*_effect`` counterpart."""
    posterior = run.posterior["posterior"]
    checked = set(diag.summary.index.str.split("[").str[0])
    offenders = {o.split("[")[0] for c in diag.checks for o in c.offenders}

    def size(v: str) -> int:
        da = posterior[v]
        return math.prod(da.sizes[d] for d in da.dims if d not in ("chain", "draw"))

    names = [str(v) for v in posterior.data_vars if str(v) in checked]
    scalars = sorted((v for v in names if size(v) == 1), key=lambda v: (v != "intercept", v))

    def readable(v: str) -> str:
        twin = v.removesuffix("_z") + "_effect"
        return twin if v.endswith("_z") and twin in names else v

    failing = [readable(v) for v in names if v in offenders and 1 < size(v) <= 10]
    small = [v for v in names if 1 < size(v) <= 7 and not v.endswith("_z")]
    chosen: list[str] = []
    for v in [*scalars, *failing, *small]:
        if v not in chosen:
            chosen.append(v)
    return chosen[:limit]


def _rank_vars(run: RunInputs, names: Sequence[str], limit: int) -> list[str]:
    posterior = run.posterior["posterior"]
    scalars = [v for v in names if all(d in ("chain", "draw") for d in posterior[v].dims)]
    return (scalars or list(names[:1]))[:limit]


SUMMARY_MAX_ELEMENTS = 30


def _summary_rows(table: pd.DataFrame, run: RunInputs, limit: int) -> pd.DataFrame:
    """Rows of short variables (not raw ``*_z`` twins of an ``*_effect``), flagged, capped."""
    var = table.index.str.split("[").str[0]
    sizes = var.value_counts()
    names = set(var)
    twin = var.str.endswith("_z") & var.str.removesuffix("_z").map(lambda v: f"{v}_effect" in names)
    keep = (var.map(sizes) <= SUMMARY_MAX_ELEMENTS) & ~twin
    shown = table.loc[np.asarray(keep)].copy()
    if {"r_hat", "ess_bulk", "ess_tail"} <= set(shown.columns):  # MCMC columns: flag failures
        flags = pd.Series("", index=shown.index)
        flags[shown["r_hat"] > 1.01] += "R-hat "
        flags[(shown["ess_bulk"] < 400) | (shown["ess_tail"] < 400)] += "ESS"
        shown["check"] = flags.str.strip()
    return shown.round(4).head(limit)


# --- per-run sections ------------------------------------------------------------------------


def _summary_caption(diag: Diagnostics, run: RunInputs, rows: int, csv: Path) -> str:
    """What the summary table holds: MCMC columns for a sampler, plain moments otherwise."""
    if diag.method == "laplace":
        levels = run.fit_diagnostics.get("n_levels")
        kept = (
            f" The {levels:,} levels of the largest pool (tracks) are kept as a per-level mean "
            "and sd (the run's levels group), not in this table."
            if isinstance(levels, int) and levels
            else ""
        )
        return (
            f"Posterior summary ({diag.n_draws} independent draws from the nested Laplace "
            "approximation): mean, sd and 94 % equal-tailed interval of the parameters with at "
            f"most {SUMMARY_MAX_ELEMENTS} elements; no ESS or R-hat, which measure MCMC mixing. "
            f"Full table of {rows:,} rows: {csv.name} beside this page.{kept}"
        )
    size = f"{diag.n_chains} chains x {diag.n_draws} draws"
    return (
        f"Posterior summary ({size}): mean, sd, 94 % equal-tailed interval, MCSE, bulk and "
        "tail ESS, rank-normalised R-hat of the parameters with at most "
        f"{SUMMARY_MAX_ELEMENTS} elements ('check' names a failed rule). Full table of "
        f"{rows:,} rows, every track included: {csv.name} beside this page."
    )


def _trace_caption(diag: Diagnostics, run: RunInputs) -> str:
    """Chains to compare (MCMC), or a single chain of an approximation's draws."""
    size = f"{diag.n_chains} chains x {diag.n_draws} draws"
    if diag.n_chains >= 2:
        return (
            f"Per-chain marginal densities (left) and traces (right) of the top-level "
            f"parameters of {run.name} ({size}); chains should overlap and look like white noise."
        )
    return (
        f"Marginal densities (left) and draws in order (right) of the top-level parameters of "
        f"{run.name} (one chain of {diag.n_draws} draws from the {diag.method} approximation): "
        "with no second chain to compare, they show the shape of the posterior, not its "
        "convergence."
    )


def diagnostics_section(
    run: RunInputs, diag: Diagnostics, out: Path, opts: ReportOptions
) -> Section:
    """The banner, the summary table (full CSV beside the page) and the convergence figures:
    traces, rank plots and energy for MCMC; the passes and the hyperparameters for a
    nested-Laplace fit, whose independent draws leave traces and rank plots nothing to say."""
    figs = out / "figures"
    tag = f"{run.name}"
    size = f"{diag.n_chains} chains x {diag.n_draws} draws"
    table = diag.summary
    csv = out / f"summary_{run.name}.csv"
    atomic_write_text(csv, table.to_csv())
    shown = _summary_rows(table, run, opts.summary_rows)
    blocks: list[Block] = [
        Banner(diag.ok, diag.headline, tuple(c.describe() for c in diag.checks)),
        Table(shown, _summary_caption(diag, run, len(table), csv)),
    ]
    subs: list[Section] = []
    if diag.method == "laplace":
        mode = mode_section(run.name, run.fit_diagnostics)
        return Section(f"{run.name}: diagnostics", tuple(blocks), (mode,) if mode else ())
    trace_vars = _top_level(diag, run, opts.max_trace_vars)
    if trace_vars:
        path = fig.plot_trace(run.posterior, trace_vars, figs / f"{tag}_trace.png")
        subs.append(Section("Trace plots", (Figure(path, _trace_caption(diag, run)),)))
    if trace_vars and diag.n_chains >= 2:  # rank plots compare chains: they need two
        rank_vars = _rank_vars(run, trace_vars, opts.max_rank_panels)
        path = fig.plot_rank(run.posterior, rank_vars, figs / f"{tag}_rank.png")
        subs.append(
            Section(
                "Rank plots",
                (
                    Figure(
                        path,
                        "Fractional-rank ECDF differences per chain for the scalar parameters "
                        f"of {run.name} ({size}); lines should stay inside the envelope.",
                    ),
                ),
            )
        )
    if "sample_stats" in run.posterior.children and "energy" in run.posterior["sample_stats"]:
        path = fig.plot_energy(run.posterior, figs / f"{tag}_energy.png")
        subs.append(
            Section(
                "Energy",
                (
                    Figure(
                        path,
                        "Marginal energy vs energy-transition distributions with per-chain "
                        f"E-BFMI (dashed line at 0.3), {run.name}, {size}.",
                    ),
                ),
            )
        )
    return Section(f"{run.name}: diagnostics", tuple(blocks), tuple(subs))


def effects_section(run: RunInputs, out: Path, data_note: str) -> Section | None:
    figs = out / "figures"
    effects = probability_effects(run.posterior)
    subs: list[Section] = []
    where = f"Posterior of {run.name}, fitted on {data_note}"
    cats = [e for e in effects if e.kind == "categorical"]
    if cats:
        path = fig.plot_categorical_effects(cats, figs / f"{run.name}_categorical.png")
        names = ", ".join(e.name for e in cats)
        subs.append(
            Section(
                "Categorical effects",
                (
                    Figure(
                        path,
                        f"P(skip) by level ({names}): posterior mean and 94 % interval, every "
                        f"other term at its average. {where}.",
                    ),
                ),
            )
        )
    for effect in (e for e in effects if e.kind != "categorical"):
        path = fig.plot_curve_effect(effect, figs / f"{run.name}_{effect.variable}.png")
        extra = (
            " The curve is closed: 23 h is drawn next to 0 h." if effect.kind == "cyclic" else ""
        )
        subs.append(
            Section(
                f"{effect.name} effect",
                (
                    Figure(
                        path,
                        f"P(skip) along {effect.axis_label}: "
                        f"posterior mean and 94 % band, other terms at their average.{extra} "
                        f"{where}.",
                    ),
                ),
            )
        )
    slopes = slope_parameters(run.posterior)
    if slopes:
        path = fig.plot_categorical_effects(
            slopes, figs / f"{run.name}_slopes.png", reference=0.0, xlabel="log-odds per SD"
        )
        names = ", ".join(e.variable for e in slopes)
        subs.append(
            Section(
                "Slopes",
                (
                    Figure(
                        path,
                        f"Slopes on the logit scale ({names}): change in log-odds of a skip per "
                        "standard deviation of the input (0/1 inputs: from false to true, "
                        f"centred); the Markov slopes carry the memory-in-chains effect. {where}.",
                    ),
                ),
            )
        )
    memory = memory_effects(run.posterior)
    if memory is not None:
        path = fig.plot_categorical_effects(
            [memory], figs / f"{run.name}_mood.png", reference=0.0, xlabel="log-odds"
        )
        subs.append(
            Section(
                "Memory: the session's mood and the previous play",
                (
                    Figure(
                        path,
                        "How much of a session's memory is mood and how much the previous play, "
                        "on the logit scale: the sd of the sessions' propensities (a session one "
                        "sd above the average has that much higher log-odds of a skip on every "
                        "play) beside the Markov contrasts (a skip of the previous play, and of "
                        "the one two plays back, against a play that was not skipped); mean and "
                        "94 % interval. At prediction a session's propensity is learnt from its "
                        f"earlier plays only. {where}.",
                    ),
                ),
            )
        )
    scales = scale_parameters(run.posterior)
    if scales:
        path = fig.plot_scales(scales, figs / f"{run.name}_scales.png")
        subs.append(
            Section(
                "Pooling scales",
                (
                    Figure(
                        path,
                        "Standard deviations of the pooled and smooth terms on the logit scale "
                        f"(how far levels may depart from the average): mean and 94 % interval. {where}.",
                    ),
                ),
            )
        )
    extremes = track_extremes(run.posterior)
    if extremes is not None:
        path = fig.plot_categorical_effects(list(extremes), figs / f"{run.name}_tracks.png")
        how = (
            " Tracks are kept as a per-level mean and sd in this nested Laplace fit: they are "
            "ranked by the probit approximation of their mean P(skip), and only the tracks "
            "shown are drawn."
            if run.method == "laplace"
            else ""
        )
        subs.append(
            Section(
                "Most and least skipped tracks",
                (
                    Figure(
                        path,
                        "Tracks with the highest and lowest posterior mean P(skip) (other terms "
                        "average), with 94 % intervals; thinly played tracks are shrunk to the "
                        f"mean.{how} {where}.",
                    ),
                ),
            )
        )
    if not subs:
        return None
    return Section(
        f"{run.name}: effects",
        (Paragraph("Effects on the probability scale: P(skip) = logistic(intercept + effect)."),),
        tuple(subs),
    )


def _group_checks(train: pd.DataFrame, y: np.ndarray, p: np.ndarray, seed: int) -> list[GroupCheck]:
    checks = []
    for label, column in PPC_GROUPS:
        if column not in train:
            continue
        values = train[column].to_numpy()
        order: list[object] | None = None
        if column == "weekday":
            values = np.asarray([WEEKDAYS[int(v)] for v in values])
            order = list(WEEKDAYS)
        checks.append(
            group_check(
                label,
                values.astype(str) if column == "context_type" else values,
                y,
                p,
                seed=seed,
                order=order,
            )
        )
    checks.append(group_check("overall", np.full(y.size, "all plays"), y, p, seed=seed))
    return checks


def ppc_section(run: RunInputs, out: Path, opts: ReportOptions) -> tuple[Section | None, dict]:
    if run.train is None or run.predict_draws is None:
        return None, {}
    figs = out / "figures"
    sample = session_sample(run.train, opts.ppc_rows, opts.seed)
    p = run.predict_draws(sample)[: opts.ppc_draws]
    y = sample[run.outcome].to_numpy(dtype=float)
    checks = _group_checks(sample, y, p, opts.seed)
    note = data_note(sample, "training")
    path = fig.plot_group_checks(checks, figs / f"{run.name}_ppc.png")
    subs = [
        Section(
            "Skip rates by group",
            (
                Figure(
                    path,
                    "Observed skip rate (red) against the 94 % interval of skip rates in data "
                    f"replicated from the posterior ({p.shape[0]} draws, blue), on {note}.",
                ),
            ),
        )
    ]
    surfaces = []
    for feature in run_surface_features(run, sample):
        try:
            surfaces.append(
                binned_surface(
                    feature, sample[f"prev_{feature}"], sample[feature], y, p.mean(axis=0)
                )
            )
        except ValueError:
            continue
    if surfaces:
        path = fig.plot_surfaces(surfaces, figs / f"{run.name}_memory.png")
        subs.append(
            Section(
                "Memory in chains",
                (
                    Figure(
                        path,
                        "Skip rate over the previous track's feature (rows) x the current "
                        "track's (columns), in quantile bins: the model's mean predicted "
                        "probability (left) next to the empirical rate (right), same plays "
                        f"({note}); cells with fewer than 10 plays are blank.",
                    ),
                ),
            )
        )
    summary = {c.name: {"coverage": c.coverage, "levels": len(c.labels)} for c in checks}
    return Section(f"{run.name}: posterior predictive checks", (), tuple(subs)), summary


def run_surface_features(run: RunInputs, frame: pd.DataFrame) -> list[str]:
    """Features with a lag column present: the model's Markov features when it names them."""
    named = [v for k, v in run.facts if k == "markov features"]
    candidates = named[0].split(", ") if named and named[0] else ["danceability"]
    return [f for f in candidates if f in frame and f"prev_{f}" in frame][:3]


# --- held-out evaluation ---------------------------------------------------------------------
