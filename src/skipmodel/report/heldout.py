"""The report's sections across runs: held-out evaluation, the comparison by LOO, and the summary
at the top."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from skipmodel.errors import SkipmodelError
from skipmodel.report import figures as fig
from skipmodel.report.baselines import fit_baselines
from skipmodel.report.compare import LooResult, compare_runs
from skipmodel.report.html import Block, Figure, Paragraph, Section, Table
from skipmodel.report.inputs import RunInputs
from skipmodel.report.metrics import (
    classification_metrics,
    reliability_curve,
    second_half_mask,
    sequential_metrics,
)
from skipmodel.report.sections import (
    count_sessions,
    data_note,
    mean_probability,
    session_sample,
)

PAVA_ROWS = 5_000
#: Sequential predictions scored per run: what the challenge revealed of a second half (its
#: tracks, positions and length), and that with the second half's own context columns (which
#: the challenge never revealed: the gap between the two is the optimism of revealing them).
SEQUENTIAL_REVEALS: tuple[tuple[str, str], ...] = (
    ("wsdm", ""),
    ("context", " [second-half context revealed]"),
)
PAVA_DRAWS = 100


def _pava_figure(run: RunInputs, test: pd.DataFrame, figs: Path) -> Figure:
    assert run.predict_draws is not None
    sample = session_sample(test, PAVA_ROWS, seed=0)
    p = run.predict_draws(sample)[:PAVA_DRAWS]
    y = sample[run.outcome].to_numpy(dtype=float)
    path = fig.plot_pava(y, p, figs / f"{run.name}_pava.png", name=run.outcome)
    return Figure(
        path,
        f"{run.name}: ArviZ's PAVA calibration plot on {data_note(sample, 'held-out')} — the "
        "isotonic (PAVA) estimate of the observed skip probability against the predicted one, "
        f"with the band expected under the model ({p.shape[0]} replicated data sets); a well "
        "calibrated model stays inside the band along the diagonal.",
    )


def heldout_section(runs: Sequence[RunInputs], out: Path) -> tuple[Section | None, dict]:
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
        p = mean_probability(run, test)
        rows[run.name] = classification_metrics(y, p).as_dict()
        curves[run.name] = reliability_curve(y, p)
        pava.append(_pava_figure(run, test, figs))
        key = (len(test), count_sessions(test), float(y.sum()))
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
        notes.append(f"{run.name}: {data_note(test, 'held-out')}")
        if run.predict_second_half is not None:
            for reveal, label in SEQUENTIAL_REVEALS:
                try:
                    pred = run.predict_second_half(test, reveal=reveal)
                except SkipmodelError as exc:
                    seq_notes.append(f"{run.name}: no sequential prediction ({exc})")
                    break
                merged = halves[["session_id", "session_position", run.outcome]].merge(
                    pred, on=["session_id", "session_position"], how="inner", validate="one_to_one"
                )
                if len(merged) != len(halves):
                    raise SkipmodelError(
                        f"{run.name}: sequential prediction returned {len(merged)} of "
                        f"{len(halves)} second-half plays"
                    )
                seq_rows[run.name + label] = sequential_metrics(
                    merged["session_id"],
                    merged["session_position"],
                    merged[run.outcome].to_numpy(float),
                    merged["p_skip"].to_numpy() >= 0.5,
                ).as_dict()
    if not rows:
        return None, {}
    models = [r.name for r in runs if r.name in rows]
    rows = {k: rows[k] for k in [*models, *(k for k in rows if k not in models)]}
    # each model's honest row and its revealed-context row together, the baselines after
    ours = [m + label for m in models for _, label in SEQUENTIAL_REVEALS if m + label in seq_rows]
    seq_rows = {k: seq_rows[k] for k in [*ours, *(k for k in seq_rows if k not in ours)]}
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
                "L(i)) and first-prediction accuracy. A model's own row sees of a second-half "
                "play only what the challenge revealed — its track (and features), position "
                "and the session's length; every other column (hour, date, premium, context "
                "type, shuffle, pauses) is integrated over the session's first half (a value "
                "constant there is carried forward). '[second-half context revealed]' lets the "
                "model see those columns of the second half too, which the challenge never "
                "revealed: its lead is the optimism of doing so. 'repeat last skip' repeats the "
                "last first-half outcome.",
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


def comparison_section(
    loos: dict[str, LooResult], out: Path, no_loo: Mapping[str, str] | None = None
) -> tuple[Section | None, dict]:
    no_loo = no_loo or {}
    if not loos and not no_loo:
        return None, {}
    figs = out / "figures"
    blocks: list[Block] = [Paragraph(f"{name}: {r.describe()}.") for name, r in loos.items()]
    blocks += [Paragraph(f"{name}: {why}.") for name, why in no_loo.items()]
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


def summary_section(
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
