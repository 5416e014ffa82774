"""The recovery section (``report --truth truth.json``): do the intervals mean what they say?

On data from ``skipmodel simulate`` every true effect is known. Each one a run's model can
express is lined up with the posterior the run implies for it — seasonal levels, context types,
fixed effects, the Markov outcome contrasts and slopes, smooth curves and the track pool's sd
(:mod:`skipmodel.simulate.recovery`), and each track's own effect (``truth_tracks.parquet``
beside ``truth.json``) — and checked against the central 50 % and 90 % posterior intervals. Per
term, the share of quantities covered is set against the 95 % binomial band for that many
quantities: intervals that mean what they say cover about half and nine in ten of them. The
binomial band treats the quantities as independent, but those of one term err together (tracks
share the pool's sd, the points of a curve its smoothness), so the table adds the posterior band:
the 95 % range of the share if the truth were a draw from the posterior, which keeps that
dependence. On ``skipmodel simulate`` data the ``full`` model fitted by NUTS covers 87.6 % of
2,753 tracks with its 90 % intervals: outside the binomial band (88.8-91.1 %), inside the
posterior band (86.7-93.3 %) — its estimate of the pool's sd was 1.1 posterior sds low, and every
thinly played track's interval with it (tests/test_coverage_slow.py).

Where only differences are identified, differences are compared: positions 2..20 and smooth
curves centred over the points compared, each track's effect as its deviation from the mean of
the tracks the model has a level for. A track effect the model has no term for (a smooth of
duration, the current track's danceability) is part of each track's own effect then, and is
added to the track's true intercept (the features read from the run's training plays). A
nested-Laplace run's tracks are a Gaussian mean and sd per level (its ``levels`` group): their
intervals are the Gaussian ones. Quantities a model does not express are listed as not
estimated, never counted as misses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from skipmodel.errors import SkipmodelError
from skipmodel.report import figures as fig
from skipmodel.report.effects import AXIS_LABELS, _level_summary, _level_table
from skipmodel.report.html import Block, Figure, Paragraph, Section, Table
from skipmodel.report.inputs import RunInputs
from skipmodel.simulate.recovery import (
    implied_effects,
    null_effects,
    smooth_effects,
    smooth_truth,
)
from skipmodel.store.layout import atomic_write_text

__all__ = [
    "RecoveryInputs",
    "Truth",
    "binomial_band",
    "coverage_table",
    "load_truth",
    "recovery_inputs",
    "recovery_quantities",
    "recovery_section",
]

#: Central posterior intervals checked, and the probability of the binomial band around each.
PROBS = (0.5, 0.9)
BAND_LEVEL = 0.95
TRACK_LABEL = "track"
OTHER_LEVEL = "__other__"
MAX_DRAWS = 1000
TRACK_TERM = "track effects"
LEVEL_TERMS = ("weekday", "hour", "position", "context type")
FOREST_TERMS = ("Markov outcome", "Markov slopes", "fixed effects", "pooling scales")


# --- inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Truth:
    """``truth.json`` (``data``) and the per-track truth beside it (index ``track_id``:
    ``intercept``, ``plays``), None when ``truth_tracks.parquet`` is not there."""

    path: Path
    data: dict[str, Any]
    tracks: pd.DataFrame | None = None


def load_truth(path: str | Path) -> Truth:
    """``truth.json`` written by ``skipmodel simulate``, and ``truth_tracks.parquet`` beside it."""
    path = Path(path)
    hint = "give the truth.json that 'skipmodel simulate' wrote beside the data"
    if not path.is_file():
        raise SkipmodelError(f"--truth {path} does not exist; {hint}")
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SkipmodelError(f"--truth {path} is not JSON ({exc}); {hint}") from None
    if not isinstance(data, dict) or not isinstance(data.get("skip_model"), dict):
        raise SkipmodelError(f"--truth {path} holds no 'skip_model'; {hint}")
    tracks_path = path.with_name("truth_tracks.parquet")
    tracks = None
    if tracks_path.is_file():
        tracks = pd.read_parquet(tracks_path).set_index("track_id")
        tracks.index = tracks.index.astype(str)
    return Truth(path, data, tracks)


@dataclass(frozen=True)
class RecoveryInputs:
    """The truth, and each run's fitted encoders by run name: the standardisation its slopes are
    on (a run missing here is compared on the truth's standardisation, which the section says)."""

    truth: Truth
    encoders: Mapping[str, Any] = field(default_factory=dict)


def recovery_inputs(truth: Truth | str | Path, runs: Mapping[str, str | Path]) -> RecoveryInputs:
    """The truth (or the ``truth.json`` at that path) and the encoders of each run folder in
    ``runs`` (report name -> folder), read from the run's data manifest without loading its
    posterior again."""
    from skipmodel.model.encoders import Encoders
    from skipmodel.model.fitting import DATA_FILE

    loaded = truth if isinstance(truth, Truth) else load_truth(truth)
    encoders = {
        name: Encoders.from_json(json.loads((Path(run) / DATA_FILE).read_text())["encoders"])
        for name, run in runs.items()
    }
    return RecoveryInputs(loaded, encoders)


# --- quantities and coverage -------------------------------------------------------------------


class _Fitted(NamedTuple):
    """What :mod:`skipmodel.simulate.recovery` reads of a fit."""

    posterior: Any
    encoders: Any


def _term(name: str, smooths: set[str]) -> str:
    head = re.split(r"[\[ ]", name, maxsplit=1)[0]
    if head in ("weekday", "hour", "position"):
        return head
    if head == "context_type":
        return "context type"
    if head in smooths:
        return f"smooth: {head}"
    if head.startswith(("prev_", "prev2_")):
        return "Markov outcome"
    if name == "track sd":
        return "pooling scales"
    if name.startswith("|") or name.endswith((" now", " before")):
        return "Markov slopes"
    return "fixed effects"


def _level(name: str) -> str:
    found = re.search(r"\[(.*?)\]", name)
    return found.group(1) if found else name


def _frame(
    term: str | Sequence[str],
    names: Sequence[str],
    truth: np.ndarray,
    mean: np.ndarray,
    sd: np.ndarray,
    quantiles: np.ndarray,
    estimated: np.ndarray,
) -> pd.DataFrame:
    """Rows of quantities; ``quantiles`` (4, K) are the 5, 25, 75 and 95 % points."""
    nan = np.where(estimated, 1.0, np.nan)
    frame = pd.DataFrame(
        {
            "term": term,
            "quantity": list(names),
            "level": [_level(n) for n in names],
            "truth": np.asarray(truth, float),
            "mean": mean * nan,
            "sd": sd * nan,
            "lo90": quantiles[0] * nan,
            "lo50": quantiles[1] * nan,
            "hi50": quantiles[2] * nan,
            "hi90": quantiles[3] * nan,
            "estimated": np.asarray(estimated, bool),
        }
    )
    for prob in PROBS:
        pct = round(100 * prob)
        t = frame["truth"]
        inside = (frame[f"lo{pct}"] <= t) & (t <= frame[f"hi{pct}"])
        frame[f"in{pct}"] = inside.astype(float).where(frame["estimated"])  # NaN: not estimated
    return frame


def _posterior_bands(rows: pd.DataFrame, draws: np.ndarray | None) -> pd.DataFrame:
    """``rows`` (one term) with its posterior bands: the central ``BAND_LEVEL`` range of the
    share of its quantities inside their intervals if the truth were a posterior draw (``draws``
    (S, K), a column per row: every quantity from the same draw, so what they share — a pool's
    sd, a curve's smoothness — is kept). Independent levels (no draws): the binomial band."""
    est = rows["estimated"].to_numpy()
    tail = (1 - BAND_LEVEL) / 2
    for prob in PROBS:
        pct = round(100 * prob)
        if not est.any():
            lo = hi = float("nan")
        elif draws is None:
            lo, hi = binomial_band(int(est.sum()), prob)
        else:
            d = draws[:, est]
            inside = (d >= rows[f"lo{pct}"].to_numpy()[est]) & (
                d <= rows[f"hi{pct}"].to_numpy()[est]
            )
            lo, hi = np.quantile(inside.mean(axis=1), [tail, 1 - tail])
        rows[f"posterior lo{pct}"], rows[f"posterior hi{pct}"] = lo, hi
    return rows


def _draw_rows(
    terms: Sequence[str], effects: Mapping[str, tuple[float, np.ndarray]]
) -> pd.DataFrame:
    names = list(effects)
    truth = np.array([effects[n][0] for n in names], dtype=float)
    draws = np.stack([np.asarray(effects[n][1], float).reshape(-1) for n in names])
    estimated = np.ptp(draws, axis=1) > 0  # a constant: the model has no term for it
    q = np.quantile(draws, [0.05, 0.25, 0.75, 0.95], axis=1)
    rows = _frame(terms, names, truth, draws.mean(axis=1), draws.std(axis=1), q, estimated)
    parts = [
        _posterior_bands(group.copy(), draws[group.index.to_numpy()].T)
        for _, group in rows.groupby("term", sort=False)
    ]
    return pd.concat(parts).sort_index()


def _absorbed(run: RunInputs, data: dict[str, Any]) -> dict[str, str]:
    """Track-level effects of the truth the run's model has no term for, by the column each is
    a function of: they are part of each track's own effect in that model."""
    post = run.posterior["posterior"].to_dataset()
    sm = data["skip_model"]
    out = {
        column: f"smooth of {column}"
        for column, smooth in sm.get("smooth_effects", {}).items()
        if f"{column}_effect" not in post.data_vars and np.any(smooth["effect"])
    }
    features = (
        {str(f) for f in post["markov_feature"].values}
        if "markov_current_beta" in post.data_vars
        else set()
    )
    if sm["danceability"]["main_effect"] != 0 and "danceability" not in features:
        out["danceability"] = "current danceability slope"
    return out


def _absorbed_truth(
    run: RunInputs, data: dict[str, Any], absorbed: Mapping[str, str], labels: np.ndarray
) -> np.ndarray | None:
    """The absorbed effects per track (``labels``), from the run's training plays; None when
    the plays are not there to read the tracks' features from."""
    train = run.train
    if not absorbed:
        return np.zeros(labels.size)
    if train is None or not {"track_id_clean", *absorbed} <= set(train.columns):
        return None
    features = train.groupby(train["track_id_clean"].astype(str), observed=True)[list(absorbed)]
    table = features.first().reindex(labels)
    sm = data["skip_model"]
    total = np.zeros(labels.size)
    for column in absorbed:
        x = table[column].to_numpy(dtype=float)
        if column == "danceability":
            d = sm["danceability"]
            part = d["main_effect"] * (x - d["standardise_mean"]) / d["standardise_sd"]
        else:
            part = smooth_truth(data, column, x)
        total += np.nan_to_num(part)  # a missing feature: the model's average, 0
    return total


def _track_rows(
    run: RunInputs, truth: Truth, notes: list[str]
) -> tuple[pd.DataFrame | None, float | None]:
    """Per-track rows (deviations from the mean of the modelled tracks) and the pool's true sd
    when the tracks' own effects carry absorbed effects (else None: the truth's sd stands)."""
    if truth.tracks is None:
        notes.append(
            f"Track effects not compared: no truth_tracks.parquet beside {truth.path.name}."
        )
        return None, None
    dt = run.posterior
    table = _level_table(dt, TRACK_LABEL, MAX_DRAWS)
    summary = _level_summary(dt, TRACK_LABEL) if table is None else None
    if table is None and summary is None:
        played = truth.tracks.index[truth.tracks["plays"].to_numpy() > 0]
        empty = np.full(played.size, np.nan)
        rows = _frame(
            TRACK_TERM,
            [f"track[{t}]" for t in played],
            truth.tracks.loc[played, "intercept"].to_numpy(),
            empty,
            empty,
            np.full((4, played.size), np.nan),
            np.zeros(played.size, bool),
        )
        rows = _posterior_bands(rows, None)
        return rows.assign(plays=truth.tracks.loc[played, "plays"].to_numpy()), None
    if table is not None:
        dim = next(str(d) for d in table.dims if d != "sample")
        labels = np.asarray(table[dim].values).astype(str)
    else:
        assert summary is not None
        labels = np.asarray(summary[TRACK_LABEL].values).astype(str)
    keep = np.flatnonzero((labels != OTHER_LEVEL) & np.isin(labels, truth.tracks.index))
    unknown = int((labels != OTHER_LEVEL).sum()) - keep.size
    if unknown:
        notes.append(f"{unknown} track levels of the run are not in the truth: left out.")
    labels = labels[keep]
    absorbed = _absorbed(run, truth.data)
    extra = _absorbed_truth(run, truth.data, absorbed, labels)
    if extra is None:
        notes.append(
            "Track effects not compared: the model has no "
            f"{', '.join(absorbed.values())}, which is part of each track's own effect then, "
            "and the run carries no training plays to read the tracks' features from."
        )
        return None, None
    true = truth.tracks.loc[labels, "intercept"].to_numpy(dtype=float) + extra
    true = true - true.mean()
    if table is not None:
        draws = table.values[:, keep]
        draws = draws - draws.mean(axis=1, keepdims=True)
        mean, sd = draws.mean(axis=0), draws.std(axis=0)
        q = np.quantile(draws, [0.05, 0.25, 0.75, 0.95], axis=0)
    else:
        assert summary is not None
        mean = np.asarray(summary[f"{TRACK_LABEL}_effect_mean"].values, float)[keep]
        sd = np.asarray(summary[f"{TRACK_LABEL}_effect_sd"].values, float)[keep]
        mean = mean - mean.mean()
        q = mean + sd * stats.norm.ppf([0.05, 0.25, 0.75, 0.95])[:, None]
        draws = None  # independent Gaussian levels: the binomial band is their posterior band
        notes.append(
            "Track intervals are Gaussian, from the run's per-level mean and sd (levels group)."
        )
    rows = _frame(TRACK_TERM, [f"track[{t}]" for t in labels], true, mean, sd, q, sd > 0)
    rows = _posterior_bands(rows, draws)
    rows["plays"] = truth.tracks.loc[labels, "plays"].to_numpy()
    if not absorbed:
        return rows, None
    notes.append(
        f"The model has no {', '.join(absorbed.values())}: each track's true effect is its "
        "intercept plus that effect at the track's features, and the pool's true sd is "
        "sqrt(sd^2 + their variance over the modelled tracks)."
    )
    sd_true = float(truth.data["skip_model"]["track_effect"]["sd"])
    return rows, float(np.sqrt(sd_true**2 + extra.var()))


def recovery_quantities(
    run: RunInputs, truth: Truth, encoders: Any = None
) -> tuple[pd.DataFrame, list[str]]:
    """One row per true quantity of ``run`` (and notes on how some were compared).

    Columns: ``term``, ``quantity``, ``level``, ``truth``, posterior ``mean`` and ``sd``, the
    central intervals ``lo90 <= lo50 <= hi50 <= hi90``, ``estimated`` (False: the model has no
    term for it; its interval columns are NaN), ``in50`` / ``in90`` (truth inside; NaN when not
    estimated), ``posterior lo50`` ... ``posterior hi90`` (its term's posterior bands, see
    :func:`coverage_table`) and, for tracks, ``plays`` (in the simulated data).
    """
    from skipmodel.model.encoders import Encoders

    notes: list[str] = []
    if encoders is None:
        encoders = Encoders()
        notes.append(
            "The run's encoders were not given: slopes are compared on the truth's "
            "standardisation of danceability, not the run's."
        )
    fitted = _Fitted(run.posterior, encoders)
    data = truth.data
    effects = {
        **implied_effects(fitted, data),
        **null_effects(fitted, data),
        **smooth_effects(fitted, data),
    }
    tracks, track_sd = _track_rows(run, truth, notes)
    if track_sd is not None:
        effects["track sd"] = (track_sd, effects["track sd"][1])
    smooths = list(data["skip_model"].get("smooth_effects", {}))
    terms = [_term(n, set(smooths)) for n in effects]
    rows = _draw_rows(terms, effects)
    order = [*LEVEL_TERMS, *FOREST_TERMS[:3], *(f"smooth: {s}" for s in smooths)]
    order += [FOREST_TERMS[3], TRACK_TERM]
    rows["rank"] = rows["term"].map({t: i for i, t in enumerate(order)})
    rows = rows.sort_values("rank", kind="stable").drop(columns="rank")
    frame = pd.concat([rows, tracks], ignore_index=True) if tracks is not None else rows
    return frame.reset_index(drop=True), notes


def binomial_band(n: int, prob: float, level: float = BAND_LEVEL) -> tuple[float, float]:
    """The central ``level`` range of the share covered among ``n`` independent quantities each
    covered with probability ``prob`` (NaN for n = 0)."""
    if n <= 0:
        return float("nan"), float("nan")
    lo, hi = stats.binom.interval(level, n, prob)
    return float(lo) / n, float(hi) / n


def _flag(share: float, lo: float, hi: float, pct: int) -> str:
    if np.isnan(share) or lo <= share <= hi:
        return ""
    return f"{pct} % {'low' if share < lo else 'high'}"


def coverage_table(quantities: pd.DataFrame) -> pd.DataFrame:
    """Per term: estimated and not-estimated counts, the share covered by the 50 % and 90 %
    intervals with its binomial band (``flag`` names a share outside it) and its posterior band
    (``posterior flag``; NaN when the quantities carry none)."""
    rows = []
    for term, group in quantities.groupby("term", sort=False):
        est = group[group["estimated"]]
        n = len(est)
        row: dict[str, Any] = {"term": term, "quantities": n, "not estimated": len(group) - n}
        flags, posterior_flags = [], []
        for prob in PROBS:
            pct = round(100 * prob)
            share = float(est[f"in{pct}"].astype(float).mean()) if n else float("nan")
            lo, hi = binomial_band(n, prob)
            row |= {f"covered {pct}": share, f"band {pct} low": lo, f"band {pct} high": hi}
            flags.append(_flag(share, lo, hi, pct))
            bands = [est.get(f"posterior {k}{pct}", pd.Series(dtype=float)) for k in ("lo", "hi")]
            p_lo, p_hi = (float(b.iloc[0]) if len(b) else float("nan") for b in bands)
            row |= {f"posterior band {pct} low": p_lo, f"posterior band {pct} high": p_hi}
            posterior_flags.append(_flag(share, p_lo, p_hi, pct) if not np.isnan(p_lo) else "")
        row["flag"] = ", ".join(f for f in flags if f)
        row["posterior flag"] = ", ".join(f for f in posterior_flags if f)
        rows.append(row)
    return pd.DataFrame(rows)


def _shown(coverage: pd.DataFrame) -> pd.DataFrame:
    """The coverage table as the page shows it: percentages, bands as ranges, one column naming
    the bands a share is outside of."""

    def ranges(kind: str, p: int) -> list[str]:
        pairs = zip(coverage[f"{kind} {p} low"], coverage[f"{kind} {p} high"], strict=True)
        return ["" if np.isnan(lo) else f"{100 * lo:.0f}-{100 * hi:.0f} %" for lo, hi in pairs]

    shown = coverage[["term", "quantities", "not estimated"]].copy()
    if "run" in coverage:
        shown.insert(0, "run", coverage["run"])
    for prob in PROBS:
        p = round(100 * prob)
        shown[f"in {p} %"] = [
            "" if np.isnan(v) else f"{100 * v:.0f} %" for v in coverage[f"covered {p}"]
        ]
        shown[f"band {p} %"] = ranges("band", p)
        shown[f"posterior band {p} %"] = ranges("posterior band", p)
    shown["outside"] = [
        "; ".join(f"{kind} {flag}" for kind, flag in (("band", b), ("posterior band", q)) if flag)
        for b, q in zip(coverage["flag"], coverage["posterior flag"], strict=True)
    ]
    return shown.set_index(shown.columns[0])


# --- figures ---------------------------------------------------------------------------------


def _count(rows: pd.DataFrame) -> str:
    est = rows[rows["estimated"]]
    if est.empty:
        return "not estimated"
    n = len(est)
    return f"{int(est['in50'].sum())}/{n} in 50 %, {int(est['in90'].sum())}/{n} in 90 %"


def _panels(q: pd.DataFrame, terms: Sequence[str]) -> list[fig.RecoveryPanel]:
    """``(title, rows)`` of each term present, the title counting what is covered."""
    panels = []
    for term in terms:
        rows = q[q["term"] == term]
        if not rows.empty:
            what = " (centred over 2..20)" if term == "position" else ""
            panels.append((f"{term}{what}: {_count(rows)}", rows))
    return panels


def _curves(q: pd.DataFrame, data: dict[str, Any]) -> list[fig.RecoveryCurve]:
    """A panel per smooth of the truth, its points in order along the column's raw values."""
    curves = []
    for column, smooth in data["skip_model"].get("smooth_effects", {}).items():
        rows = q[q["term"] == f"smooth: {column}"]
        if rows.empty:
            continue
        rows = rows.assign(x=rows["level"].astype(float)).sort_values("x")
        title = f"smooth of {column}: {_count(rows)}"
        xlabel = AXIS_LABELS.get(column, column.replace("_", " "))
        curves.append((title, rows, xlabel, smooth.get("scale") == "log"))
    return curves


def _figures(q: pd.DataFrame, data: dict[str, Any], figs: Path, name: str) -> list[Figure]:
    """The run's recovery figures, each with its caption."""
    out = []
    levels = _panels(q, LEVEL_TERMS)
    if levels:
        path = fig.plot_recovery_intervals(
            levels, figs / f"{name}_recovery_levels.png", vertical=True
        )
        out.append((path, "Seasonal effects and context types (logit scale, zero-sum levels)"))
    forest = _panels(q, FOREST_TERMS)
    if forest:
        path = fig.plot_recovery_intervals(
            forest,
            figs / f"{name}_recovery_effects.png",
            vertical=False,
            xlabel="logit scale (slopes per unit of their input; scales: sd)",
        )
        out.append(
            (
                path,
                "Markov outcome contrasts, Markov slopes (per sd of the run's standardisation), "
                "fixed effects and the pool's sd",
            )
        )
    curves = _curves(q, data)
    if curves:
        path = fig.plot_recovery_curves(curves, figs / f"{name}_recovery_smooths.png")
        out.append(
            (
                path,
                "Smooth effects on the model's grid inside the truth's range, both centred there",
            )
        )
    tracks = q[(q["term"] == TRACK_TERM) & q["estimated"]]
    if not tracks.empty:
        title = f"{len(tracks):,} tracks: {_count(tracks)}"
        path = fig.plot_recovery_tracks(tracks, figs / f"{name}_recovery_tracks.png", title=title)
        out.append(
            (
                path,
                "Track effects: posterior mean against truth (left; misses of the 90 % interval "
                "in red; thinly played tracks are shrunk towards 0, as they should be) and the "
                "share covered by play count (right)",
            )
        )
    return [Figure(p, f"{what}: truth against the posterior of {name}.") for p, what in out]


# --- the section ------------------------------------------------------------------------------


def _not_estimated(q: pd.DataFrame) -> str:
    missing = q[~q["estimated"]]
    if missing.empty:
        return ""
    parts = [
        f"{term} ({len(group)})" if len(group) > 1 else f"{group['quantity'].iloc[0]}"
        for term, group in missing.groupby("term", sort=False)
    ]
    return "Not estimated (the model has no term for them): " + "; ".join(parts) + "."


def _run_metrics(coverage: pd.DataFrame) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for row in coverage.to_dict("records"):
        term: dict[str, object] = {
            "quantities": int(row["quantities"]),
            "not_estimated": int(row["not estimated"]),
        }
        for p in (round(100 * prob) for prob in PROBS):
            term[f"covered_{p}"] = row[f"covered {p}"]
            term[f"band_{p}"] = [row[f"band {p} low"], row[f"band {p} high"]]
            term[f"posterior_band_{p}"] = [
                row[f"posterior band {p} low"],
                row[f"posterior band {p} high"],
            ]
        term["flag"], term["posterior_flag"] = row["flag"], row["posterior flag"]
        out[str(row["term"])] = term
    return out


INTRO = (
    "Every true effect of {truth} that a run's model can express, against the run's posterior: "
    "central 50 % (thick) and 90 % (thin) intervals, posterior mean (dot), truth (red cross). "
    "Intervals that mean what they say cover about half and nine in ten of a term's "
    "quantities. The band is the 95 % range of that share for as many independent quantities "
    "(binomial); a share outside it is flagged. But the quantities of one term err together "
    "(neighbouring hours, the points of a smooth, tracks sharing the pool's sd), so their share "
    "spreads wider: the posterior band is the 95 % range of the share if the truth were a draw "
    "from the posterior, which keeps that dependence (for independent quantities it is the "
    "binomial band). A share outside the posterior band is the stronger sign of a wrong model. "
    "Where only differences are identified, differences are compared: positions 2..20 and "
    "smooths centred over the points compared, tracks as deviations from the mean of the tracks "
    "the model has a level for (tracks pooled into __other__ are not compared). Quantities a "
    "model does not express are listed as not estimated, not counted as misses."
)


def recovery_section(
    runs: Sequence[RunInputs], inputs: RecoveryInputs, out: Path
) -> tuple[Section, dict[str, object]]:
    """The section, with ``recovery_<run>.csv`` (every quantity) and the figures written under
    ``out``; and the coverage per run and term for ``metrics.json``."""
    figs = out / "figures"
    truth = inputs.truth
    subs: list[Section] = []
    tables: list[pd.DataFrame] = []
    metrics: dict[str, object] = {"truth": str(truth.path)}
    for run in runs:
        q, notes = recovery_quantities(run, truth, inputs.encoders.get(run.name))
        csv = out / f"recovery_{run.name}.csv"
        atomic_write_text(csv, q.to_csv(index=False))
        coverage = coverage_table(q)
        metrics[run.name] = _run_metrics(coverage)
        tables.append(coverage.assign(run=run.name))
        blocks: list[Block] = [Paragraph(" ".join([*notes, _not_estimated(q)]).strip())]
        blocks.append(
            Table(
                _shown(coverage),
                f"Coverage of the true effects per term, {run.name}; every quantity with its "
                f"interval: {csv.name} beside this page.",
            )
        )
        blocks.extend(_figures(q, truth.data, figs, run.name))
        subs.append(Section(f"{run.name}: recovery", tuple(blocks)))
    combined = pd.concat(tables, ignore_index=True)

    def outside(column: str) -> str:
        hits = [r for r in combined.to_dict("records") if r[column]]
        return "; ".join(f"{r['run']} {r['term']} ({r[column]})" for r in hits) or "none"

    verdict = (
        f"Outside the binomial band: {outside('flag')}. "
        f"Outside the posterior band: {outside('posterior flag')}."
    )
    lead: list[Block] = [Paragraph(INTRO.format(truth=truth.path.name)), Paragraph(verdict)]
    if len(runs) > 1:
        lead.append(Table(_shown(combined), "Coverage per run and term."))
    return Section("Recovery of the true effects", tuple(lead), tuple(subs)), metrics
