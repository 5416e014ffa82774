"""Orchestration: fitted runs in, ``OUT/index.html`` (+ figures, CSV tables, metrics.json) out.

``report(runs, out)`` walks each run through diagnostics, effects, posterior predictive checks
and held-out evaluation, then compares the runs (and, given the truth of simulated data, checks
how often their intervals cover it: :mod:`.recovery`). A run whose diagnostics fail is reported
all the same, with a red banner at the very top saying which checks failed and for which
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

from skipmodel.errors import SkipmodelError
from skipmodel.progress import Progress
from skipmodel.report.compare import NO_LOO_SESSION, LooResult, has_session_term, run_loo
from skipmodel.report.diagnostics import diagnose_run
from skipmodel.report.heldout import comparison_section, heldout_section, summary_section
from skipmodel.report.html import Banner, Block, Paragraph, Section, write_html
from skipmodel.report.inputs import RunInputs
from skipmodel.report.recovery import RecoveryInputs, recovery_section
from skipmodel.report.sections import (
    DEFAULT_OPTIONS,
    ReportOptions,
    data_note,
    diagnostics_section,
    effects_section,
    ppc_section,
)
from skipmodel.store.layout import atomic_write_json

__all__ = ["ReportOptions", "ReportResult", "report"]


@dataclass(frozen=True)
class ReportResult:
    """Where the report went and the numbers in it."""

    index: Path
    trusted: dict[str, bool]
    metrics: dict[str, object] = field(repr=False)


def report(
    runs: Sequence[RunInputs],
    out: str | Path,
    *,
    options: ReportOptions = DEFAULT_OPTIONS,
    progress: bool | None = None,
    truth: RecoveryInputs | None = None,
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
    truth : RecoveryInputs, optional
        The truth of simulated data (``--truth``): adds a section on how well each run's
        posterior intervals cover the true effects (:mod:`skipmodel.report.recovery`).
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
    no_loo: dict[str, str] = {}  # runs left out of PSIS-LOO, and why
    steps = 5 * len(runs) + 2 + (truth is not None)
    with Progress("report", unit="steps", total=steps, enabled=progress, interval=0.0) as bar:
        for run in runs:
            bar.advance(0, note=f"{run.name}: diagnostics")
            diag = diagnose_run(
                run.posterior,
                method=run.method,
                fit=run.fit_diagnostics,
                approximation=run.approximation,
            )
            failed = tuple(c.describe(grouped=True) for c in diag.checks if not c.passed)
            banners.append(Banner(diag.ok, f"{run.name}: {diag.headline}", failed))
            fitted_on = (
                data_note(run.train, "training") if run.train is not None else "its training sample"
            )
            overview = [
                f"Model: {run.description or run.name}; outcome {run.outcome}; fitted on {fitted_on}."
            ]
            overview += [f"{k}: {v}." for k, v in run.facts]
            sections.append(Section(f"{run.name}: overview", tuple(Paragraph(t) for t in overview)))
            bar.advance(1, note=f"{run.name}: trace plots")
            sections.append(diagnostics_section(run, diag, out, options))
            bar.advance(1, note=f"{run.name}: effects")
            effects = effects_section(run, out, fitted_on)
            if effects is not None:
                sections.append(effects)
            bar.advance(1, note=f"{run.name}: predictive checks")
            ppc, ppc_summary = ppc_section(run, out, options)
            if ppc is not None:
                sections.append(ppc)
            bar.advance(1, note=f"{run.name}: LOO")
            if has_session_term(run.posterior):
                no_loo[run.name] = NO_LOO_SESSION
            else:
                loo = run_loo(run.posterior, run.name, seed=options.seed)
                if loo is not None:
                    loos[run.name] = loo
            bar.advance(1)
            run_metrics[run.name] = {
                "diagnostics": diag.as_dict(),
                "ppc": ppc_summary,
            }
            if run.method == "laplace":  # how the mode was reached, as the fit recorded it
                run_metrics[run.name]["fit"] = dict(run.fit_diagnostics)
        bar.advance(0, note="held-out evaluation")
        heldout, heldout_metrics = heldout_section(runs, out)
        if heldout is not None:
            sections.append(heldout)
        metrics["heldout"] = heldout_metrics
        bar.advance(1, note="model comparison")
        comparison, loo_metrics = comparison_section(loos, out, no_loo)
        if comparison is not None:
            sections.append(comparison)
        metrics["loo"] = loo_metrics
        bar.advance(1)
        if truth is not None:
            bar.advance(0, note="recovery of the truth")
            recovery, metrics["recovery"] = recovery_section(runs, truth, out)
            sections.append(recovery)
            bar.advance(1)
    trusted = {name: bool(run_metrics[name]["diagnostics"]["ok"]) for name in names}
    sections.insert(0, summary_section(names, trusted, heldout_metrics, loo_metrics))
    index = write_html(
        out / "index.html",
        options.title,
        sections,
        preamble=tuple(banners),
        footer="Generated by skipmodel report; intervals are central 94 % posterior intervals"
        + (" (50 % and 90 % in the recovery section)." if truth is not None else "."),
    )
    plain = _finite(json.loads(json.dumps(metrics, default=_json_default)))
    atomic_write_json(out / "metrics.json", plain)
    _readable(
        [index, out / "metrics.json", *out.glob("summary_*.csv"), *out.glob("recovery_*.csv")]
    )
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
