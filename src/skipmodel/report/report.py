"""Orchestration: fitted runs in, ``OUT/index.html`` (+ figures, CSV tables, metrics.json) out.

``report(runs, out)`` walks each run through diagnostics, effects, posterior predictive checks
and held-out evaluation, then compares the runs. A run whose diagnostics fail is reported all
the same, with a red banner at the very top saying which checks failed and for which
parameters. Long steps print progress on a terminal (see :mod:`skipmodel.progress`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from skipmodel.errors import SkipmodelError
from skipmodel.progress import Progress
from skipmodel.report import figures as fig
from skipmodel.report.baselines import fit_baselines
from skipmodel.report.checks import GroupCheck, binned_surface, group_check
from skipmodel.report.compare import LooResult, compare_runs, run_loo
from skipmodel.report.diagnostics import Diagnostics, diagnose_run
from skipmodel.report.effects import (
    probability_effects,
    scale_parameters,
    slope_parameters,
    track_extremes,
)
from skipmodel.report.html import Banner, Block, Figure, Paragraph, Section, Table, write_html
from skipmodel.report.inputs import RunInputs
from skipmodel.report.metrics import (
    classification_metrics,
    reliability_curve,
    second_half_mask,
    sequential_metrics,
)
from skipmodel.store.layout import atomic_write_json, atomic_write_text

__all__ = ["ReportOptions", "ReportResult", "report"]

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


@dataclass(frozen=True)
class ReportResult:
    """Where the report went and the numbers in it."""

    index: Path
    trusted: dict[str, bool]
    metrics: dict[str, object] = field(repr=False)


# --- helpers ---------------------------------------------------------------------------------


def _fmt_n(n: float) -> str:
    return f"{int(n):,}"


def _sessions(frame: pd.DataFrame) -> int:
    return int(frame["session_id"].nunique()) if "session_id" in frame else 0


def _data_note(frame: pd.DataFrame, what: str) -> str:
    return f"{_fmt_n(len(frame))} {what} plays from {_fmt_n(_sessions(frame))} sessions"


def _session_sample(frame: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    """Whole sessions, chosen at random, until about ``max_rows`` plays."""
    if len(frame) <= max_rows:
        return frame
    ids = frame["session_id"].drop_duplicates().sample(frac=1.0, random_state=seed)
    sizes = frame.groupby("session_id").size().reindex(ids)
    keep = sizes.index[sizes.cumsum().to_numpy() <= max_rows]
    return frame[frame["session_id"].isin(keep)]


def _mean_probability(run: RunInputs, frame: pd.DataFrame) -> np.ndarray:
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
    flags = pd.Series("", index=shown.index)
    flags[shown["r_hat"] > 1.01] += "R-hat "
    flags[(shown["ess_bulk"] < 400) | (shown["ess_tail"] < 400)] += "ESS"
    shown["check"] = flags.str.strip()
    return shown.round(4).head(limit)


# --- per-run sections ------------------------------------------------------------------------


def _diagnostics_section(
    run: RunInputs, diag: Diagnostics, out: Path, opts: ReportOptions
) -> Section:
    figs = out / "figures"
    tag = f"{run.name}"
    size = f"{diag.n_chains} chains x {diag.n_draws} draws"
    table = diag.summary
    csv = out / f"summary_{run.name}.csv"
    atomic_write_text(csv, table.to_csv())
    shown = _summary_rows(table, run, opts.summary_rows)
    blocks: list[Block] = [
        Banner(diag.ok, diag.headline, tuple(c.describe() for c in diag.checks)),
        Table(
            shown,
            f"Posterior summary ({size}): mean, sd, 94 % equal-tailed interval, MCSE, bulk and "
            "tail ESS, rank-normalised R-hat of the parameters with at most "
            f"{SUMMARY_MAX_ELEMENTS} elements ('check' names a failed rule). Full table of "
            f"{len(table):,} rows, every track included: {csv.name} beside this page.",
        ),
    ]
    subs: list[Section] = []
    trace_vars = _top_level(diag, run, opts.max_trace_vars)
    if trace_vars:
        path = fig.plot_trace(run.posterior, trace_vars, figs / f"{tag}_trace.png")
        subs.append(
            Section(
                "Trace plots",
                (
                    Figure(
                        path,
                        f"Per-chain marginal densities (left) and traces (right) of the top-level "
                        f"parameters of {run.name} ({size}); chains should overlap and look like "
                        "white noise.",
                    ),
                ),
            )
        )
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


def _effects_section(run: RunInputs, out: Path, data_note: str) -> Section | None:
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
        subs.append(
            Section(
                "Most and least skipped tracks",
                (
                    Figure(
                        path,
                        "Tracks with the highest and lowest posterior mean P(skip) (other terms "
                        f"average), with 94 % intervals; thinly played tracks are shrunk to the mean. {where}.",
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


def _ppc_section(run: RunInputs, out: Path, opts: ReportOptions) -> tuple[Section | None, dict]:
    if run.train is None or run.predict_draws is None:
        return None, {}
    figs = out / "figures"
    sample = _session_sample(run.train, opts.ppc_rows, opts.seed)
    p = run.predict_draws(sample)[: opts.ppc_draws]
    y = sample[run.outcome].to_numpy(dtype=float)
    checks = _group_checks(sample, y, p, opts.seed)
    note = _data_note(sample, "training")
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


PAVA_ROWS = 5_000
PAVA_DRAWS = 100


def _pava_figure(run: RunInputs, test: pd.DataFrame, figs: Path) -> Figure:
    assert run.predict_draws is not None
    sample = _session_sample(test, PAVA_ROWS, seed=0)
    p = run.predict_draws(sample)[:PAVA_DRAWS]
    y = sample[run.outcome].to_numpy(dtype=float)
    path = fig.plot_pava(y, p, figs / f"{run.name}_pava.png", name=run.outcome)
    return Figure(
        path,
        f"{run.name}: ArviZ's PAVA calibration plot on {_data_note(sample, 'held-out')} — the "
        "isotonic (PAVA) estimate of the observed skip probability against the predicted one, "
        f"with the band expected under the model ({p.shape[0]} replicated data sets); a well "
        "calibrated model stays inside the band along the diagonal.",
    )


def _heldout(runs: Sequence[RunInputs], out: Path) -> tuple[Section | None, dict]:
    figs = out / "figures"
    rows: dict[str, dict] = {}
    seq_rows: dict[str, dict] = {}
    curves = {}
    notes: list[str] = []
    scored_baselines: set[tuple] = set()
    pava: list[Figure] = []
    seq_notes: list[str] = []
    for run in runs:
        if run.test is None or run.predict_draws is None or run.train is None:
            continue
        test = run.test.sort_values(["session_id", "session_position"], kind="mergesort")
        y = test[run.outcome].to_numpy(dtype=float)
        p = _mean_probability(run, test)
        rows[run.name] = classification_metrics(y, p).as_dict()
        curves[run.name] = reliability_curve(y, p)
        pava.append(_pava_figure(run, test, figs))
        key = (len(test), _sessions(test), float(y.sum()))
        baselines = fit_baselines(run.train, outcome=run.outcome)
        suffix = "" if not scored_baselines or key in scored_baselines else f" [{run.name}]"
        half = second_half_mask(test["session_position"], test["session_length"])
        y_half = y[half]
        halves = test.loc[half]
        if key not in scored_baselines:
            for b in baselines.predict_rows(test):
                rows[b.name + suffix] = classification_metrics(
                    y, b.p_skip, labels=b.label
                ).as_dict()
                if b.name == "per-track rate":
                    curves[b.name + suffix] = reliability_curve(y, b.p_skip)
            for b in baselines.predict_second_half(test, half):
                seq_rows[b.name + suffix] = sequential_metrics(
                    halves["session_id"], halves["session_position"], y_half, b.label
                ).as_dict()
            scored_baselines.add(key)
        notes.append(f"{run.name}: {_data_note(test, 'held-out')}")
        if run.predict_second_half is not None:
            try:
                pred = run.predict_second_half(test)
            except SkipmodelError as exc:
                seq_notes.append(f"{run.name}: no sequential prediction ({exc})")
                continue
            merged = halves[["session_id", "session_position", run.outcome]].merge(
                pred, on=["session_id", "session_position"], how="inner", validate="one_to_one"
            )
            if len(merged) != len(halves):
                raise SkipmodelError(
                    f"{run.name}: sequential prediction returned {len(merged)} of {len(halves)} "
                    "second-half plays"
                )
            seq_rows[run.name] = sequential_metrics(
                merged["session_id"],
                merged["session_position"],
                merged[run.outcome].to_numpy(float),
                merged["p_skip"].to_numpy() >= 0.5,
            ).as_dict()
    if not rows:
        return None, {}
    models = [r.name for r in runs if r.name in rows]
    rows = {k: rows[k] for k in [*models, *(k for k in rows if k not in models)]}
    seq_rows = {
        k: seq_rows[k]
        for k in [*(m for m in models if m in seq_rows), *(k for k in seq_rows if k not in models)]
    }
    table = pd.DataFrame(rows).T
    table.index.name = "predictor"
    blocks: list[Block] = [
        Paragraph(
            "Every predictor is scored on the same held-out plays (test split: whole sessions "
            "never used in fitting). Baselines are fitted on the training rows. Lower is better "
            "for log loss, Brier and ECE (10 equal-width bins); higher for AUC and accuracy "
            f"(P >= 0.5 means skip). Data: {'; '.join(notes)}."
        ),
        Table(table, "Row-wise held-out metrics, model(s) beside the baselines."),
    ]
    blocks.extend(Paragraph(note + ".") for note in seq_notes)
    if seq_rows:
        seq = pd.DataFrame(seq_rows).T
        seq.index.name = "predictor"
        blocks.append(
            Table(
                seq,
                "WSDM Cup 2019 metrics on the second halves of held-out sessions (plays with "
                "2 x position > length), predicted from the first halves only, model predictions "
                "rolled forward: mean average accuracy (mean over sessions of (1/T) sum_i A(i) "
                "L(i)) and first-prediction accuracy. 'repeat last skip' repeats the last "
                "first-half outcome.",
            )
        )
    path = fig.plot_reliability(curves, figs / "reliability.png")
    blocks.append(
        Figure(
            path,
            f"Reliability diagram on the held-out plays ({'; '.join(notes)}): observed skip rate "
            "against the mean predicted probability in 10 equal-width bins (marker area ~ plays "
            "in the bin; bins with fewer than 10 plays or 0.5 % of them are left off the curve; "
            "bars below: plays per bin).",
        )
    )
    blocks.extend(pava)
    metrics = {"rows": rows, "second_half": seq_rows}
    return Section("Held-out evaluation", tuple(blocks)), metrics


def _comparison(loos: dict[str, LooResult], out: Path) -> tuple[Section | None, dict]:
    if not loos:
        return None, {}
    figs = out / "figures"
    blocks: list[Block] = [Paragraph(f"{name}: {r.describe()}.") for name, r in loos.items()]
    table, why = compare_runs(loos)
    if table is not None:
        blocks.append(
            Table(
                table,
                "PSIS-LOO comparison (ArviZ): ELPD, its difference to the best run and standard errors, stacking weights.",
            )
        )
        path = fig.plot_compare(table, figs / "compare.png")
        blocks.append(
            Figure(
                path,
                "Expected log predictive density of each run (PSIS-LOO over the same "
                f"{next(iter(loos.values())).n_obs:,} training observations) with standard "
                "errors, as the difference to the best run (top).",
            )
        )
    elif len(loos) > 1:
        blocks.append(Paragraph(f"No comparison table: {why}."))
    subs = []
    for name, r in loos.items():
        path = fig.plot_khat(r.elpd, figs / f"{name}_khat.png", title=f"{name}: Pareto k")
        subs.append(
            Section(
                f"{name}: Pareto k",
                (
                    Figure(
                        path,
                        f"Pareto k of each of the {r.n_obs:,} training observations of {name} ({r.method}); above the dashed line the importance-sampling estimate is unreliable.",
                    ),
                ),
            )
        )
    metrics = {
        name: {
            "method": r.method,
            "elpd_loo": r.elpd_loo,
            "se": r.se,
            "p_loo": r.p_loo,
            "n_bad_k": r.n_bad_k,
        }
        for name, r in loos.items()
    }
    return Section("Model comparison", tuple(blocks), tuple(subs)), metrics


def _summary_section(
    names: Sequence[str], trusted: dict[str, bool], heldout: dict, loo: dict
) -> Section:
    """One row per run: trusted?, ELPD, held-out log loss / AUC, second-half mean accuracy."""
    rows = {}
    for name in names:
        row: dict[str, object] = {"diagnostics": "passed" if trusted[name] else "FAILED"}
        if name in loo:
            row["elpd_loo"] = loo[name]["elpd_loo"]
            row["elpd_se"] = loo[name]["se"]
        held = heldout.get("rows", {}).get(name)
        if held:
            row |= {"log_loss": held["log_loss"], "auc": held["auc"], "accuracy": held["accuracy"]}
        seq = heldout.get("second_half", {}).get(name)
        if seq:
            row["mean_average_accuracy"] = seq["mean_average_accuracy"]
        rows[name] = row
    table = pd.DataFrame(rows).T
    table.index.name = "run"
    text = (
        "The runs at a glance; details follow. Higher is better for ELPD (PSIS-LOO), AUC, "
        "accuracy and mean average accuracy (WSDM Cup 2019, second halves); lower for log loss."
    )
    return Section("Summary", (Paragraph(text), Table(table, "One row per run.")))


# --- entry point -----------------------------------------------------------------------------


def report(
    runs: Sequence[RunInputs],
    out: str | Path,
    *,
    options: ReportOptions = ReportOptions(),
    progress: bool | None = None,
) -> ReportResult:
    """Build ``out/index.html`` (figures in ``out/figures``, tables as CSV, ``metrics.json``).

    Parameters
    ----------
    runs : sequence of RunInputs
        One or more fitted runs (several: they are compared).
    out : path
        Output directory (created).
    options : ReportOptions
    progress : bool, optional
        Force the progress line on or off (default: on for a terminal).
    """
    if not runs:
        raise SkipmodelError("no runs to report on")
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise SkipmodelError(f"run names must be distinct, got {names}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sections: list[Section] = []
    banners: list[Block] = []
    run_metrics: dict[str, dict] = {}
    metrics: dict[str, object] = {"runs": run_metrics}
    loos: dict[str, LooResult] = {}
    steps = 5 * len(runs) + 2
    with Progress("report", unit="steps", total=steps, enabled=progress, interval=0.0) as bar:
        for run in runs:
            bar.advance(0, note=f"{run.name}: diagnostics")
            diag = diagnose_run(run.posterior, method=run.method)
            failed = tuple(c.describe(grouped=True) for c in diag.checks if not c.passed)
            banners.append(Banner(diag.ok, f"{run.name}: {diag.headline}", failed))
            data_note = (
                _data_note(run.train, "training")
                if run.train is not None
                else "its training sample"
            )
            overview = [
                f"Model: {run.description or run.name}; outcome {run.outcome}; fitted on {data_note}."
            ]
            overview += [f"{k}: {v}." for k, v in run.facts]
            sections.append(Section(f"{run.name}: overview", tuple(Paragraph(t) for t in overview)))
            bar.advance(1, note=f"{run.name}: trace plots")
            sections.append(_diagnostics_section(run, diag, out, options))
            bar.advance(1, note=f"{run.name}: effects")
            effects = _effects_section(run, out, data_note)
            if effects is not None:
                sections.append(effects)
            bar.advance(1, note=f"{run.name}: predictive checks")
            ppc, ppc_summary = _ppc_section(run, out, options)
            if ppc is not None:
                sections.append(ppc)
            bar.advance(1, note=f"{run.name}: LOO")
            loo = run_loo(run.posterior, run.name, seed=options.seed)
            if loo is not None:
                loos[run.name] = loo
            bar.advance(1)
            run_metrics[run.name] = {
                "diagnostics": diag.as_dict(),
                "ppc": ppc_summary,
            }
        bar.advance(0, note="held-out evaluation")
        heldout, heldout_metrics = _heldout(runs, out)
        if heldout is not None:
            sections.append(heldout)
        metrics["heldout"] = heldout_metrics
        bar.advance(1, note="model comparison")
        comparison, loo_metrics = _comparison(loos, out)
        if comparison is not None:
            sections.append(comparison)
        metrics["loo"] = loo_metrics
        bar.advance(1)
    trusted = {name: bool(run_metrics[name]["diagnostics"]["ok"]) for name in names}
    sections.insert(0, _summary_section(names, trusted, heldout_metrics, loo_metrics))
    index = write_html(
        out / "index.html",
        options.title,
        sections,
        preamble=tuple(banners),
        footer="Generated by skipmodel report; intervals are central 94 % posterior intervals.",
    )
    plain = _finite(json.loads(json.dumps(metrics, default=_json_default)))
    atomic_write_json(out / "metrics.json", plain)
    _readable([index, out / "metrics.json", *out.glob("summary_*.csv")])
    return ReportResult(index, trusted, metrics)


def _readable(paths: Sequence[Path]) -> None:
    """Atomic writes create 0600 temp files; a report is for sharing: apply the umask instead."""
    umask = os.umask(0)
    os.umask(umask)
    for path in paths:
        path.chmod(0o666 & ~umask)


def _finite(value: object) -> object:
    """NaN and infinities become null: metrics.json stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
